"""``tflite.op_profile`` and ``mobilekit bench --profile``: which operators XNNPACK takes, single-op
models that compute what the operator computes inside the whole model, per-op times that add up
to about the whole model's, custom ops, bad files, and the CLI's table, JSON, PNG and report."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from keras_layers.keras_api import keras
from mobilekit.cli import main
from plain_converter import tf_converter_int8
from small_detector import detector_file
from tflite import op_profile
from tflite.converter import convert
from tflite.detection_export import POSTPROCESS_OP
from tflite.op_profile import profile_ops, read_model, single_op_model

QUICK = {"runs": 30, "rounds": 3, "warmup": 3, "progress": lambda message: None}
NO_DELEGATES = {"experimental_op_resolver_type": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES}


def _net(size=64):
    """Conv + hard-swish + depthwise + softmax: int8 hard-swish and softmax fall back off XNNPACK; a
    subtraction of two activations has two inputs whose order matters."""
    layers = keras.layers
    inputs = keras.Input((size, size, 3))
    x = layers.Activation("hard_swish")(layers.Conv2D(32, 3, strides=2, padding="same")(inputs))
    x = layers.Subtract()([layers.Activation("hard_swish")(layers.DepthwiseConv2D(3, padding="same")(x)), x])
    x = layers.Conv2D(64, 3, padding="same", activation="relu")(layers.Conv2D(64, 1)(x))
    outputs = layers.Dense(10, activation="softmax")(layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, outputs)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    keras.utils.set_random_seed(0)
    model, folder = _net(), tmp_path_factory.mktemp("op_profile")
    images = np.random.default_rng(0).uniform(-1, 1, (8, 64, 64, 3)).astype(np.float32)
    paths = {}
    for quantization in ("fp32", "int8"):
        paths[quantization] = str(folder / f"small_{quantization}.tflite")
        with open(paths[quantization], "wb") as f:
            # int8 as TensorFlow's converter writes it: the kit's own rewrites its hard-swish (tflite.xnnpack_int8)
            f.write(convert(model, "fp32") if quantization == "fp32" else
                    tf_converter_int8(model, images, io_dtype=tf.uint8))
    return paths


@pytest.fixture(scope="module")
def profiles(files):
    return {quantization: profile_ops(path, threads=2, **QUICK) for quantization, path in files.items()}


def _types(profile):
    return {entry["op"]: entry for entry in profile["op_types"]}


def test_xnnpack_takes_convolutions_and_float_hard_swish_but_not_int8_hard_swish(profiles):
    int8, fp32 = _types(profiles["int8"]), _types(profiles["fp32"])
    assert int8["HARD_SWISH"]["count"] == 2 and int8["HARD_SWISH"]["xnnpack"] == 0
    assert int8["SOFTMAX"]["xnnpack"] == 0 and int8["QUANTIZE"]["xnnpack"] == 0
    assert fp32["HARD_SWISH"]["xnnpack"] == 2 and fp32["SOFTMAX"]["xnnpack"] == 1
    for types in (int8, fp32):
        assert types["CONV_2D"]["xnnpack"] == types["CONV_2D"]["count"] == 3
    assert profiles["int8"]["xnnpack_partitions"] > profiles["fp32"]["xnnpack_partitions"] == 1


@pytest.mark.parametrize("quantization", ["fp32", "int8"])
def test_each_single_op_model_computes_what_its_op_computes_in_the_whole_model(files, quantization):
    """The whole model keeps every tensor (built-in kernels, so each is materialized); each cut
    model, fed the op's inputs from that run, gives the op's outputs bit for bit, and carries
    only the op's own constants."""
    data, model = read_model(files[quantization])
    full = Interpreter(model_content=data, experimental_preserve_all_tensors=True, **NO_DELEGATES)
    full.allocate_tensors()
    details, rng = full.get_input_details()[0], np.random.default_rng(1)
    pixels = rng.integers(0, 256, details["shape"]) if quantization == "int8" else rng.uniform(-1, 1, details["shape"])
    full.set_tensor(details["index"], pixels.astype(details["dtype"]))
    full.invoke()
    graph = model.subgraphs[0]
    for index, op in enumerate(graph.operators):
        model_bytes, inputs = single_op_model(model, index)
        constants = sum(len(model.buffers[graph.tensors[t].buffer].data) for t in op.inputs
                        if t >= 0 and t not in inputs)
        assert len(model_bytes) < constants + 4096 < len(data)
        single = Interpreter(model_content=model_bytes, **NO_DELEGATES)
        single.allocate_tensors()
        assert len(single.get_input_details()) == len(inputs) >= 1
        for detail, tensor in zip(single.get_input_details(), inputs):
            single.set_tensor(detail["index"], full.get_tensor(tensor))
        single.invoke()
        for detail, tensor in zip(single.get_output_details(), op.outputs, strict=True):
            np.testing.assert_array_equal(single.get_tensor(detail["index"]), full.get_tensor(tensor),
                                          err_msg=f"operator {index}")


def test_times_are_positive_and_add_up_to_about_the_whole_model(profiles):
    for profile in profiles.values():
        rows = profile["ops"]
        assert all(row["ms"] is not None and row["ms"] >= 0 and not row["note"] for row in rows)
        assert all(row["ms"] > 0 for row in rows if row["op"] in ("CONV_2D", "HARD_SWISH"))
        assert 0 < profile["overhead_ms"] < 0.1
        assert profile["sum_of_ops_ms"] == pytest.approx(sum(row["ms"] for row in rows))
        assert 0.3 < profile["sum_of_ops_ms"] / profile["whole_model_ms"] < 3.0
        assert sum(entry["share"] for entry in profile["op_types"]) == pytest.approx(1.0)
        segments = profile["segments"]
        assert sum(segment["ops"] for segment in segments) == len(rows)
        assert all(a["xnnpack"] != b["xnnpack"] and a["last"] + 1 == b["first"] for a, b in zip(segments, segments[1:]))
        assert sum(segment["ms"] for segment in segments) == pytest.approx(profile["sum_of_ops_ms"])
    hard_swish = [row for row in profiles["int8"]["ops"] if row["op"] == "HARD_SWISH"][0]
    assert hard_swish["inputs"] == [{"shape": [1, 32, 32, 32], "dtype": "int8", "constant": False}]
    json.dumps(profiles)


def test_detector_with_the_custom_postprocess_op_is_profiled(tmp_path):
    path = tmp_path / "detector.tflite"
    path.write_bytes(detector_file("fp32"))  # SSDLite, MobileNetV2 0.35 at 64x64, max_detections 5 (shared)
    profile = profile_ops(str(path), **QUICK)
    [row] = [row for row in profile["ops"] if row["op"] == POSTPROCESS_OP]
    assert not row["xnnpack"] and row["ms"] is not None and not row["note"]
    assert [output["shape"] for output in row["outputs"]] == [[1, 5, 4], [1, 5], [1, 5], [1]]


def test_an_op_whose_single_op_model_fails_is_reported_not_timed(files, monkeypatch):
    cut = op_profile.single_op_model

    def failing(model, index):
        if index == 1:
            raise RuntimeError("Encountered unresolved custom op: Made_Up")
        return cut(model, index)

    monkeypatch.setattr(op_profile, "single_op_model", failing)
    profile = profile_ops(files["fp32"], **QUICK)
    row = profile["ops"][1]
    assert row["ms"] is None and row["note"] == "not separately timeable: Encountered unresolved custom op: Made_Up"
    assert _types(profile)[row["op"]]["untimed"] == 1
    assert all(other["ms"] is not None for other in profile["ops"] if other is not row)


def test_a_file_that_is_not_a_model_is_a_one_line_error(files, tmp_path):
    text = tmp_path / "notes.tflite"
    text.write_text("not a model\nsecond line\n")
    truncated = tmp_path / "truncated.tflite"
    truncated.write_bytes(open(files["int8"], "rb").read()[:400])
    for path in (text, truncated):
        with pytest.raises(ValueError) as error:
            profile_ops(str(path), **QUICK)
        message = str(error.value)
        assert "\n" not in message and str(path) in message and "expected" in message
    with pytest.raises(FileNotFoundError, match="model file not found"):
        profile_ops(str(tmp_path / "missing.tflite"), **QUICK)


def test_cli_prints_the_table_and_writes_the_png_and_report(files, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "--profile", files["int8"], "--runs", "10", "--rounds", "2", "--name", "p"]) == 0
    out = capsys.readouterr().out
    for fragment in ("HARD_SWISH", "0/2", "slowest operators:", "segments on XNNPACK:", "segments on built-in",
                     "sum of ops", "wrote runs/p/report.md"):
        assert fragment in out
    with open("runs/p/op_profile.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with open("runs/p/report.json") as f:
        report = json.load(f)
    assert {"op_profile", "op_types", "slowest_ops", "segments", "ops", "figures"} <= set(report)
    assert "![op_profile](op_profile.png)" in open("runs/p/report.md").read()


def test_cli_json_is_one_object_and_the_run_is_named_after_the_file(files, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "--profile", files["fp32"], "--json", "--runs", "5", "--rounds", "1"]) == 0
    profile = json.loads(capsys.readouterr().out)
    assert profile["threads"] == 2 and len(profile["ops"]) == len(read_model(files["fp32"])[1].subgraphs[0].operators)
    assert os.path.isfile("runs/profile_small_fp32/op_profile.png")


@pytest.mark.parametrize("extra, fragment", [(["--arch", "mobilenet_v2"], "--arch does not apply with --profile"),
                                             (["--quantization", "int8"], "--quantization does not apply"),
                                             (["other.tflite"], "other.tflite given besides it")])
def test_cli_refuses_what_does_not_apply_to_a_profile(files, extra, fragment, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "--profile", files["int8"], *extra]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0]
