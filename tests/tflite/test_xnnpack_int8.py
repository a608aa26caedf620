"""int8 hard-swish rewritten into ops XNNPACK runs, checked exhaustively against the curve itself,
against TFLite's own HARD_SWISH kernel, and on a whole MobileNetV3 against the converter's file; its factor 6
carried to the next layers' weights; 3-channel convolutions, the input's pixel scaling and softmax computed
in float, checked against the int8 ops, Keras and the exact softmax."""
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter
from ai_edge_litert.tools import flatbuffer_utils

from demo_app.runtime import TFLiteModel
from keras_layers.activations import HardSwish
from keras_layers.keras_api import keras
from models.batch_statistics import calibrate_batch_norm
from models.mobilenet_v3 import mobilenet_v3_small
from plain_converter import tf_converter_int8
from tflite.op_profile import xnnpack_coverage
from tflite.xnnpack_int8 import (for_xnnpack, hard_swish_as_xnnpack_ops, input_scaling_in_float,
                                narrow_convolutions_in_float, softmax_in_float)


def operators(model_bytes):
    return [op for op, _ in xnnpack_coverage(model_bytes)]


# Ranges as trained activations span them, one near zero (a constant gate), and ones where the gate's
# 8 bits would cost more than half an output step (the op stays).
@pytest.mark.parametrize("low, high, rewritten", [(-10.0, 10.0, 1), (-1.0, 8.0, 1), (-60.0, 40.0, 1),
                                                  (-0.002, 0.003, 1), (-4.0, -0.5, 0), (-7.0, 0.3, 0)])
def test_rewritten_hard_swish_is_within_one_step_of_the_curve_for_every_int8_input(low, high, rewritten):
    model = keras.Sequential([keras.Input((16, 16, 1)), HardSwish()])
    data = np.linspace(low, high, 8 * 256, dtype=np.float32).reshape(8, 16, 16, 1)
    original = tf_converter_int8(model, data)
    rewritten_bytes, count = hard_swish_as_xnnpack_ops(original)
    assert operators(original) == ["HARD_SWISH"] and count == rewritten
    if not rewritten:
        assert rewritten_bytes == original
        return
    assert "HARD_SWISH" not in operators(rewritten_bytes)
    assert all(on_xnnpack for _, on_xnnpack in xnnpack_coverage(rewritten_bytes))
    results = {}
    for name, model_bytes in (("original", original), ("rewritten", rewritten_bytes)):
        interpreter = Interpreter(model_content=model_bytes)
        interpreter.allocate_tensors()
        source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
        x = np.arange(-128, 128, dtype=np.int8).reshape(source["shape"])
        interpreter.set_tensor(source["index"], x)
        interpreter.invoke()
        results[name] = interpreter.get_tensor(target["index"]).astype(np.int32).ravel()
    (x_scale, x_zero), (y_scale, y_zero) = source["quantization"], target["quantization"]
    real = (np.arange(-128, 128) - x_zero) * x_scale
    exact = np.clip(np.round(real * np.clip(real + 3, 0, 6) / 6 / y_scale) + y_zero, -128, 127)
    assert np.abs(results["original"] - exact).max() <= 1
    assert np.abs(results["rewritten"] - exact).max() <= 1, (results["rewritten"] - exact)
    assert np.ptp(results["rewritten"]) > 20  # the check sees a curve, not a constant


def test_mobilenet_v3_int8_runs_hard_swish_on_xnnpack_and_is_as_close_to_keras_as_the_converters_file():
    keras.utils.set_random_seed(0)
    model = mobilenet_v3_small(input_shape=(64, 64, 3), classes=10, classifier_activation=None)
    images = np.random.default_rng(0).uniform(-1, 1, (24, 64, 64, 3)).astype(np.float32)
    calibrate_batch_norm(model, images)  # activations of real ranges, as a trained network's
    original = tf_converter_int8(model, images[:16], io_dtype=tf.float32)
    rewritten, count = hard_swish_as_xnnpack_ops(original)
    assert operators(original).count("HARD_SWISH") == count == 19
    coverage = xnnpack_coverage(rewritten)
    assert [op for op, on_xnnpack in coverage if not on_xnnpack] == []
    expected = model.predict(images[16:], verbose=0)
    assert expected.std() > 0.1  # logits that differ: the comparison can fail
    errors = {name: np.abs(np.concatenate([TFLiteModel.from_bytes(b).run(x)[0] for x in images[16:]]) - expected)
              for name, b in (("original", original), ("rewritten", rewritten))}
    assert errors["rewritten"].mean() <= 1.25 * errors["original"].mean()
    assert errors["rewritten"].max() <= 1.25 * errors["original"].max()


def test_float_files_and_files_without_hard_swish_are_returned_as_they_are():
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3), HardSwish()])
    float_bytes = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    assert hard_swish_as_xnnpack_ops(float_bytes) == (float_bytes, 0)
    relu = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, activation="relu")])
    relu_bytes = tf_converter_int8(relu, np.random.default_rng(0).normal(size=(8, 8, 8, 3)).astype(np.float32))
    assert hard_swish_as_xnnpack_ops(relu_bytes) == (relu_bytes, 0)


def run_int8(model_bytes, x):
    interpreter = Interpreter(model_content=model_bytes)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).astype(np.int32)


def test_a_three_channel_convolution_runs_in_float_within_one_step_of_the_int8_one():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(8, 3, strides=2, padding="same",
                                                                           activation="relu6"),
                              keras.layers.Conv2D(8, 1)])
    data = np.random.default_rng(0).normal(size=(16, 32, 32, 3)).astype(np.float32)
    original = tf_converter_int8(model, data)
    rewritten, count = narrow_convolutions_in_float(original)
    assert count == 1  # the stem; the 1x1 convolution reads 8 channels and stays int8
    assert xnnpack_coverage(rewritten) == [("DEQUANTIZE", True), ("CONV_2D", True), ("QUANTIZE", True),
                                           ("CONV_2D", True)]
    stem_only = keras.Sequential([keras.Input((32, 32, 3)), model.layers[0]])
    stem_original = tf_converter_int8(stem_only, data)
    stem_rewritten, _ = narrow_convolutions_in_float(stem_original)
    x = np.random.default_rng(1).integers(-128, 128, (1, 32, 32, 3)).astype(np.int8)
    expected, actual = run_int8(stem_original, x), run_int8(stem_rewritten, x)
    assert np.ptp(expected) > 100 and np.abs(actual - expected).max() <= 1 and (actual == expected).mean() > 0.9
    assert np.abs(run_int8(rewritten, x) - run_int8(original, x)).max() <= 2


def test_for_xnnpack_applies_every_rewrite_and_leaves_no_op_to_tflite():
    keras.utils.set_random_seed(0)
    model = mobilenet_v3_small(input_shape=(32, 32, 3), classes=4)
    images = np.random.default_rng(0).uniform(0, 255, (8, 32, 32, 3)).astype(np.float32)
    calibrate_batch_norm(model, images)
    rewritten, counts = for_xnnpack(tf_converter_int8(model, images, io_dtype=tf.uint8))
    assert counts == {"hard_swish_as_xnnpack_ops": 19, "narrow_convolutions_in_float": 1,
                      "input_scaling_in_float": 1, "softmax_in_float": 1}
    assert [op for op, on_xnnpack in xnnpack_coverage(rewritten) if not on_xnnpack] == []


def squeeze_excite_block(hard_swish_into_addition):
    """Convolution, hard-swish, squeeze-excite, projection, as in a MobileNetV3 block; optionally the
    hard-swish's output also added to the projection (a path that cannot carry the factor 6)."""
    inputs = keras.Input((16, 16, 8))
    x = HardSwish()(keras.layers.Conv2D(16, 1)(inputs))
    gate = keras.layers.GlobalAveragePooling2D(keepdims=True)(x)
    gate = keras.layers.Conv2D(4, 1, activation="relu", bias_initializer="ones")(gate)
    gate = keras.layers.Conv2D(16, 1, activation="hard_sigmoid")(gate)
    y = keras.layers.Conv2D(16, 1)(keras.layers.Multiply()([x, gate]))
    outputs = keras.layers.Add()([x, y]) if hard_swish_into_addition else y
    return keras.Model(inputs, outputs)


def weight_scales(model_bytes):
    """The per-channel scales of each convolution's int8 weights, in execution order."""
    graph = flatbuffer_utils.convert_bytearray_to_object(bytearray(model_bytes)).subgraphs[0]
    weights = [graph.tensors[op.inputs[1]] for op in graph.operators if len(op.inputs) == 3]
    return [np.asarray(tensor.quantization.scale) for tensor in weights if tensor.type == schema.TensorType.INT8]


@pytest.mark.parametrize("hard_swish_into_addition", [False, True])
def test_hard_swish_leaves_its_factor_6_to_the_layers_it_feeds_with_the_same_integers(hard_swish_into_addition):
    keras.utils.set_random_seed(0)
    model = squeeze_excite_block(hard_swish_into_addition)
    data = np.random.default_rng(0).normal(size=(16, 16, 16, 8)).astype(np.float32) * 2
    original = tf_converter_int8(model, data)
    rewritten, count = hard_swish_as_xnnpack_ops(original)
    assert count == 1 and "HARD_SWISH" not in operators(rewritten)
    # sixth = MUL(x, 1/6) goes where every path from the hard-swish ends in a weighted layer: pooling, the
    # squeeze-excite product and the 1x1 convolutions carry the factor; an addition cannot. The other two
    # MULs: the hard-sigmoid's 1/6 and the squeeze-excite product
    assert operators(rewritten).count("MUL") == (4 if hard_swish_into_addition else 3)
    before, after = weight_scales(original), weight_scales(rewritten)
    divided = [b / a for b, a in zip(before, after)]
    # the squeeze convolution and the projection take the factor; the first and the excite one do not
    expected = [1, 1, 1, 1] if hard_swish_into_addition else [1, 6, 1, 6]
    for ratio, factor in zip(divided, expected):
        np.testing.assert_allclose(ratio, factor, rtol=1e-6)
    x = np.random.default_rng(1).integers(-128, 128, (4, 16, 16, 8)).astype(np.int8)
    reference, actual = (np.concatenate([run_int8(b, image[None]) for image in x]) for b in (original, rewritten))
    assert np.ptp(reference) > 100  # outputs that vary: the comparison can fail
    # TFLite's own HARD_SWISH kernel rounds once; the rewrite rounds the gate too: within a step, mostly equal
    assert np.abs(actual - reference).max() <= 2 and (actual == reference).mean() > 0.9


def test_a_uint8_input_scaled_in_the_model_is_scaled_in_float_from_the_pixels():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Rescaling(1 / 127.5, offset=-1),
                              keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu6"),
                              keras.layers.Conv2D(8, 1)])
    data = np.random.default_rng(0).uniform(0, 255, (16, 32, 32, 3)).astype(np.float32)
    original = narrow_convolutions_in_float(tf_converter_int8(model, data, io_dtype=tf.uint8))[0]
    # XNNPACK has no QUANTIZE between uint8 and int8: the input's and the output's run on TFLite's kernel
    assert [op for op, on_xnnpack in xnnpack_coverage(original) if not on_xnnpack] == ["QUANTIZE", "QUANTIZE"]
    rewritten, count = input_scaling_in_float(original)
    assert count == 1
    assert xnnpack_coverage(rewritten)[:4] == [("DEQUANTIZE", True), ("MUL", True), ("ADD", True), ("CONV_2D", True)]
    assert [op for op, on_xnnpack in xnnpack_coverage(rewritten) if not on_xnnpack] == ["QUANTIZE"]
    pixels = np.random.default_rng(1).integers(0, 256, (4, 32, 32, 3)).astype(np.uint8)
    expected = model.predict(pixels.astype(np.float32), verbose=0)
    outputs = {name: np.concatenate([run_int8(b, image[None]) for image in pixels]) for name, b in
               (("original", original), ("rewritten", rewritten))}
    scale, zero = Interpreter(model_content=rewritten).get_output_details()[0]["quantization"]
    errors = {name: np.abs((output - zero) * scale - expected) for name, output in outputs.items()}
    assert np.ptp(outputs["original"]) > 100
    assert np.abs(outputs["rewritten"] - outputs["original"]).max() <= 2
    assert errors["rewritten"].mean() <= errors["original"].mean()  # the pixels are not rounded to int8 first
    assert input_scaling_in_float(narrow_convolutions_in_float(tf_converter_int8(model, data))[0])[1] == 0  # int8 input


def test_a_per_pixel_softmax_runs_in_float_into_the_uint8_output_as_close_to_keras():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((16, 16, 8)), keras.layers.Conv2D(5, 1), keras.layers.Softmax()])
    data = np.random.default_rng(0).normal(size=(16, 16, 16, 8)).astype(np.float32) * 2
    original = tf_converter_int8(model, data, io_dtype=tf.uint8)
    rewritten, count = softmax_in_float(original)
    assert count == 1
    # the requantizing QUANTIZE of the uint8 output is folded in; only the uint8 input's stays
    assert xnnpack_coverage(rewritten) == [("QUANTIZE", False), ("CONV_2D", True), ("DEQUANTIZE", True),
                                           ("SOFTMAX", True), ("QUANTIZE", True)]
    images = np.random.default_rng(1).normal(size=(4, 16, 16, 8)).astype(np.float32) * 2
    expected = model.predict(images, verbose=0)
    outputs = {}
    for name, model_bytes in (("original", original), ("rewritten", rewritten)):
        scale, zero = Interpreter(model_content=model_bytes).get_input_details()[0]["quantization"]
        pixels = np.clip(np.round(images / scale + zero), 0, 255).astype(np.uint8)
        outputs[name] = np.concatenate([run_int8(model_bytes, x[None]) for x in pixels]) / 255.0  # probabilities
    errors = {name: np.abs(probabilities - expected) for name, probabilities in outputs.items()}
    assert np.abs(outputs["rewritten"] - outputs["original"]).max() <= 1 / 255 + 1e-9
    assert errors["rewritten"].max() <= errors["original"].max()
    assert errors["rewritten"].mean() <= errors["original"].mean()
