"""``tflite.inspect``'s report, checked against what LiteRT's interpreter and TFLite's C++ model
analyzer read from the same files, and against the Keras weights the files were made from."""
import collections
import io
import re
import zipfile

import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter
from tensorflow.lite.python import _pywrap_analyzer_wrapper as analyzer
from tensorflow.lite.python import schema_py_generated as schema

from keras_layers.keras_api import keras
from tflite.converter import convert
from tflite.inspect import _tensor_info, inspect_model, inspect_text, operator_names


def small_net(batch_size=1, same_biases=False):
    """Conv -> depthwise conv -> flatten -> dense, with random biases (a zero one may be dropped);
    ``same_biases``: the conv's and the depthwise conv's biases are equal (the converter then
    stores them once)."""
    keras.utils.set_random_seed(0)
    bias = keras.initializers.RandomNormal(seed=1) if same_biases else "random_normal"
    inputs = keras.Input((8, 8, 3), batch_size=batch_size)
    x = keras.layers.Conv2D(4, 3, activation="relu", bias_initializer=bias, name="conv")(inputs)
    x = keras.layers.DepthwiseConv2D(3, bias_initializer=bias, name="depthwise")(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(5, bias_initializer=bias, name="dense")(x))


@pytest.fixture(scope="module")
def model():
    return small_net()


@pytest.fixture(scope="module")
def files(model):
    """``{"fp32": bytes, "int8": bytes}``; int8 has uint8 input/output (``convert``'s default)."""
    samples = np.random.default_rng(0).uniform(-1, 1, (16, 8, 8, 3)).astype(np.float32)
    return {"fp32": convert(model, "fp32"), "int8": convert(model, "int8", representative_data=samples)}


@pytest.fixture(scope="module")
def while_loop_file():
    """A file with three subgraphs: main, and a WHILE's condition and body."""
    @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32)])
    def repeat(x):
        def body(i, x):
            return i + 1, x * 2.0 + 1.0
        return tf.while_loop(lambda i, x: i < 3, body, [tf.constant(0), x])[1]
    return tf.lite.TFLiteConverter.from_concrete_functions([repeat.get_concrete_function()], repeat).convert()


def with_labels_zip(model_bytes):
    """The file with an associated-files zip appended, as TFLite Model Metadata writers do."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("labels.txt", "zero\none\ntwo\nthree\nfour\n")
        z.writestr("vocab/extra.txt", "x" * 300)
    return model_bytes + archive.getvalue(), len(archive.getvalue())


def analyzed(model_bytes):
    """TFLite's C++ model analyzer: op names per subgraph, and the bytes of all data buffers."""
    text = analyzer.ModelAnalyzer(model_bytes, False, False)
    ops = collections.defaultdict(collections.Counter)
    subgraph = None
    for line in text.splitlines():
        if match := re.match(r"Subgraph#(\d+) ", line):
            subgraph = int(match[1])
        elif match := re.match(r"\s+Op#\d+ (\w+)\(", line):
            ops[subgraph][match[1]] += 1
    assert int(re.search(r"Model size:\s+(\d+) bytes", text)[1]) == len(model_bytes)
    return ops, int(re.search(r"Total data buffer size:\s+(\d+) bytes", text)[1])


def plain(name):
    return name.removeprefix("CUSTOM:")


@pytest.mark.parametrize("quantization", ["fp32", "int8"])
def test_operator_counts_are_the_interpreters(files, quantization):
    report = inspect_model(files[quantization])
    interpreter = Interpreter(model_content=files[quantization])
    names = [op["op_name"] for op in interpreter._get_ops_details()]  # before allocation: no DELEGATE nodes
    expected = collections.Counter(name for name in names if name != "DELEGATE")
    assert {plain(op["name"]): op["count"] for op in report["operators"]} == expected
    assert report["operators"] == report["subgraphs"][0]["operators"] and len(report["subgraphs"]) == 1
    assert all(op["builtin"] for op in report["operators"])
    assert sorted(op["name"] for op in report["operators"]) == operator_names(files[quantization])


@pytest.mark.parametrize("quantization", ["fp32", "int8"])
def test_inputs_and_outputs_are_the_interpreters(files, quantization):
    report = inspect_model(files[quantization])
    interpreter = Interpreter(model_content=files[quantization])
    for ours, theirs in [*zip(report["inputs"], interpreter.get_input_details(), strict=True),
                         *zip(report["outputs"], interpreter.get_output_details(), strict=True)]:
        assert ours["name"] == theirs["name"] and ours["index"] == theirs["index"]
        assert ours["shape"] == theirs["shape"].tolist()
        assert ours["shape_signature"] == theirs["shape_signature"].tolist()
        assert ours["dtype"] == np.dtype(theirs["dtype"]).name == ("uint8" if quantization == "int8" else "float32")
        if quantization == "fp32":
            assert ours["quantization"] is None and theirs["quantization"] == (0.0, 0)
        else:
            assert (ours["quantization"]["scale"], ours["quantization"]["zero_point"]) == theirs["quantization"]
            assert ours["quantization"]["per_axis"] is None


def test_per_axis_quantization_reports_the_count_of_scales_and_the_axis(files):
    """Inputs and outputs are quantized per tensor; the int8 kernels are per channel."""
    subgraph = schema.Model.GetRootAsModel(files["int8"], 0).Subgraphs(0)
    per_axis = 0
    for theirs in Interpreter(model_content=files["int8"]).get_tensor_details():
        ours = _tensor_info(subgraph, theirs["index"])["quantization"]
        scales = theirs["quantization_parameters"]["scales"]
        if len(scales) == 0:
            assert ours is None
        elif len(scales) == 1:
            assert (ours["scale"], ours["zero_point"]) == theirs["quantization"] and ours["per_axis"] is None
        else:
            per_axis += 1
            axis = theirs["quantization_parameters"]["quantized_dimension"]
            assert ours["per_axis"] == {"count": len(scales), "axis": axis,
                                        "scale_min": float(scales.min()), "scale_max": float(scales.max())}
    assert per_axis >= 3  # the conv, depthwise and dense kernels (and their int32 biases)


@pytest.mark.parametrize("quantization", ["fp32", "int8"])
def test_weight_bytes_of_each_layer_are_its_keras_weights(model, files, quantization):
    report = inspect_model(files[quantization])
    layers = {"CONV_2D": "conv", "DEPTHWISE_CONV_2D": "depthwise", "FULLY_CONNECTED": "dense"}
    # int8 kernels and int32 biases; the 3-channel conv is computed in float in the kit's int8 files
    # (tflite.xnnpack_int8), so it keeps float32 weights there
    float_layers = set(layers) if quantization == "fp32" else {"CONV_2D"}
    weights = {op["name"]: op["weight_bytes"] for op in report["operators"]}
    for op_type, layer_name in layers.items():
        layer = model.get_layer(layer_name)
        kernel_bytes = 4 if op_type in float_layers else 1
        expected = layer.kernel.numpy().size * kernel_bytes + layer.bias.numpy().size * 4
        assert weights[op_type] == report["size"]["weights_by_op"][op_type] == expected, op_type
    float_weights = sum(w.numpy().size for name, layer in layers.items() if name in float_layers
                        for w in model.get_layer(layer).weights)
    assert report["size"]["weights_by_dtype"]["float32"] == 4 * float_weights
    if quantization == "int8":
        assert report["size"]["weights_by_dtype"]["int8"] == sum(
            model.get_layer(layer).kernel.numpy().size for name, layer in layers.items() if name not in float_layers)
    assert weights["RESHAPE"] == 8  # the flatten's int32 target shape
    size = report["size"]
    assert sum(weights.values()) == sum(size["weights_by_dtype"].values()) == size["parts"]["weights"]


def test_a_buffer_read_by_two_ops_is_counted_once_for_the_first():
    model = small_net(same_biases=True)
    assert np.array_equal(model.get_layer("conv").bias.numpy(), model.get_layer("depthwise").bias.numpy())
    report = inspect_model(convert(model, "fp32"))
    weights = report["size"]["weights_by_op"]
    conv, depthwise = model.get_layer("conv"), model.get_layer("depthwise")
    assert weights["CONV_2D"] == 4 * (conv.kernel.numpy().size + conv.bias.numpy().size)
    assert weights["DEPTHWISE_CONV_2D"] == 4 * depthwise.kernel.numpy().size
    shared = 4 * depthwise.bias.numpy().size
    assert report["size"]["weights_by_dtype"]["float32"] == 4 * sum(w.numpy().size for w in model.weights) - shared


def test_size_parts_add_up_to_the_file_and_the_buffers_to_the_analyzers(files, while_loop_file):
    for model_bytes in [files["fp32"], files["int8"], while_loop_file]:
        parts = inspect_model(model_bytes)["size"]["parts"]
        assert sum(parts.values()) == len(model_bytes) and parts["graph"] > 0 and parts["associated_files"] == 0
        assert parts["weights"] + parts["metadata"] + parts["unused_buffers"] == analyzed(model_bytes)[1]
        assert parts["weights"] > 0


def test_the_graph_detail_counts_quantization_parameters_and_tensor_names(files):
    for quantization, model_bytes in files.items():
        size = inspect_model(model_bytes)["size"]
        tensors = Interpreter(model_content=model_bytes).get_tensor_details()
        quantized = [t["quantization_parameters"] for t in tensors]
        params = sum(4 * len(q["scales"]) + 8 * len(q["zero_points"]) for q in quantized)
        assert size["graph_detail"] == {"quantization_parameters": params,
                                        "tensor_names": sum(len(t["name"].encode()) for t in tensors)}
        assert (params > 0) == (quantization == "int8")
        assert sum(size["graph_detail"].values()) < size["parts"]["graph"]


def test_metadata_entries_are_listed_with_their_sizes(files):
    for model_bytes in files.values():
        report = inspect_model(model_bytes)
        flat = schema.ModelT.InitFromPackedBuf(model_bytes, 0)  # the schema's object API, read whole
        assert [(m["name"], m["bytes"]) for m in report["metadata"]] == [
            (m.name.decode(), len(flat.buffers[m.buffer].data)) for m in flat.metadata]
        entries = {m["name"]: m for m in report["metadata"]}
        assert {"min_runtime_version", "CONVERSION_METADATA"} <= set(entries)
        assert re.fullmatch(r"\d+\.\d+(\.\d+)?", entries["min_runtime_version"]["text"])
        assert report["size"]["parts"]["metadata"] == sum(m["bytes"] for m in report["metadata"])
        assert report["associated_files"] is None


def test_an_appended_associated_files_zip_is_listed_and_counted(files):
    model_bytes, zip_bytes = with_labels_zip(files["int8"])
    report = inspect_model(model_bytes)
    assert report["associated_files"] == {"offset": len(files["int8"]), "bytes": zip_bytes,
                                          "names": ["labels.txt", "vocab/extra.txt"]}
    parts = report["size"]["parts"]
    assert parts["associated_files"] == zip_bytes and sum(parts.values()) == len(model_bytes)
    assert {k: v for k, v in parts.items() if k != "associated_files"} == {
        k: v for k, v in inspect_model(files["int8"])["size"]["parts"].items() if k != "associated_files"}
    assert "labels.txt, vocab/extra.txt" in inspect_text(report)


def test_a_dynamic_batch_shows_as_minus_one_in_the_shape_signature():
    report = inspect_model(convert(small_net(batch_size=None), "fp32"))
    (tensor,) = report["inputs"]
    assert tensor["shape"] == [1, 8, 8, 3] and tensor["shape_signature"] == [-1, 8, 8, 3]
    assert report["outputs"][0]["shape_signature"] == [-1, 5]
    assert "float32[1,8,8,3] (signature [-1,8,8,3])" in inspect_text(report)


def test_every_subgraph_is_listed_with_the_analyzers_op_counts(while_loop_file):
    report = inspect_model(while_loop_file)
    ops, _ = analyzed(while_loop_file)
    assert len(report["subgraphs"]) == len(ops) == 3
    for subgraph in report["subgraphs"]:
        assert {op["name"]: op["count"] for op in subgraph["operators"]} == ops[subgraph["index"]]
    assert [op["name"] for op in report["operators"]] == ["WHILE"]
    names = {op["name"] for subgraph in report["subgraphs"] for op in subgraph["operators"]}
    assert sorted(names) == operator_names(while_loop_file)
    assert "subgraph 2" in inspect_text(report)


def test_custom_ops_are_named_and_marked():
    inputs = keras.Input((4, 4), batch_size=1)
    outputs = keras.layers.Lambda(lambda t: tf.linalg.inv(t + 4.0 * tf.eye(4)))(inputs)
    converter = tf.lite.TFLiteConverter.from_keras_model(keras.Model(inputs, outputs))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    operators = {op["name"]: op for op in inspect_model(converter.convert())["operators"]}
    assert operators["CUSTOM:FlexMatrixInverse"]["builtin"] is False and operators["ADD"]["builtin"] is True


def test_a_file_that_is_not_tflite_is_a_one_line_value_error(files, tmp_path):
    path = tmp_path / "labels.tflite"
    path.write_text("zero\none\n")
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))} is not a TFLite model: .*TFL3") as error:
        inspect_model(path)
    assert "\n" not in str(error.value)
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("model.tflite", files["int8"])
    for data in [b"", b"\x89PNG\r\n\x1a\n" + bytes(64), zipped.getvalue(), files["int8"][:300]]:
        with pytest.raises(ValueError, match=r"^m\.tflite is not a TFLite model: [^\n]+$"):
            inspect_model(data, name="m.tflite")


def test_damaged_files_give_a_value_error_or_a_consistent_report(files):
    rng = np.random.default_rng(0)
    for trial in range(300):
        data = bytearray(files["int8"])
        if trial % 2:
            data = data[:rng.integers(8, len(data))]
        else:
            for _ in range(rng.integers(1, 8)):
                data[rng.integers(8, len(data))] = rng.integers(256)
        try:
            report = inspect_model(bytes(data))
        except ValueError as error:
            assert str(error).startswith("the data is not a TFLite model: ") and "\n" not in str(error)
        else:
            assert sum(report["size"]["parts"].values()) == len(data)
            inspect_text(report)


def test_the_text_has_operators_inputs_outputs_metadata_and_sizes(files):
    report = inspect_model(files["int8"])
    text = inspect_text(report)
    for section in ["Operators, main subgraph", "Inputs", "Outputs", "Metadata", "Size"]:
        assert re.search(rf"^{section}", text, re.M), section
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines() if line.startswith("  ")}
    for op in report["operators"]:
        assert rows[op["name"]][0] == str(op["count"])
    assert rows["FULLY_CONNECTED"][1:3] == [str(report["size"]["weights_by_op"]["FULLY_CONNECTED"]), "B"]
    assert "scale" in rows[report["inputs"][0]["name"]][1:] and "min_runtime_version" in rows
    assert re.search(rf"^  total\s+{len(files['int8']):,} B\s+100\.0%$", text, re.M)
    percents = [float(p) for p in re.findall(r"B\s+([\d.]+)%", text.split("\nSize\n")[1])]
    assert sum(percents[:-1]) == pytest.approx(100.0, abs=0.1 * len(percents))


def test_model_metadata_is_read_and_shown(files):
    from tflite.metadata import add_metadata

    described = add_metadata(files["fp32"], name="net", description="d", version="7", task="classify",
                             labels=[f"class{i}" for i in range(5)], input_mean=(127.5,), input_std=(127.5,))
    report = inspect_model(described)
    assert inspect_model(files["fp32"])["model_metadata"] is None
    found = report["model_metadata"]
    assert found["labels"] == [f"class{i}" for i in range(5)] and found["input_mean"] == [127.5]
    assert "model metadata: 'net' version '7', task classify" in inspect_text(report)
    assert "5 labels (class0, class1, class2, class3, class4)" in inspect_text(report)
