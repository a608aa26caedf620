import json

import numpy as np
import pytest

import layer_contract
from demo_app.runtime import TFLiteModel
from keras_layers.binary import (QuantConv2D, QuantDense, bwn_conv2d, bwn_dense, bwn_depthwise_conv2d,
                                 xnor_depthwise_conv2d)
from keras_layers.keras_api import keras
from tflite import bitpack, convert, custom_operators, operator_names
from tflite.binary_export import binary_channel_scales, int8_binary_kernels

SHAPE = (8, 8, 8)


@pytest.fixture(autouse=True)
def seeded():
    keras.utils.set_random_seed(7)


def binary_model():
    inputs = keras.Input(SHAPE)
    x = keras.layers.Conv2D(16, 3, padding="same")(inputs)                     # float: stored as float32
    x = keras.layers.BatchNormalization()(x)
    x = QuantConv2D(32, 3, input_quantizer="ste_sign", scale="xnor")(x)          # 4608 kernel bits
    x = xnor_depthwise_conv2d(3, depth_multiplier=2)(x)                          # 576
    x = QuantConv2D(16, 1, input_quantizer="ste_sign", use_bias=True)(x)         # 1024, no scale
    x = QuantConv2D(16, 1, input_quantizer="ste_sign", kernel_quantizer="magnitude_aware_sign")(x)  # 256
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = QuantDense(10, input_quantizer="uniform_2bit", kernel_quantizer="dorefa_2bit")(x)  # not a sign
    return keras.Model(inputs, outputs)


def test_packed_file_loads_back_to_the_same_outputs(tmp_path):
    model = binary_model()
    layer_contract.randomize_batch_norm(model)
    x = layer_contract.random_inputs(SHAPE, count=3)
    expected = np.asarray(model(x, training=False))
    size = bitpack.save(model, str(tmp_path / "weights.bits"))
    assert size == (tmp_path / "weights.bits").stat().st_size
    restored = keras.models.clone_model(model)  # fresh random weights
    assert not np.allclose(np.asarray(restored(x, training=False)), expected)
    bitpack.load(restored, str(tmp_path / "weights.bits"))
    np.testing.assert_allclose(np.asarray(restored(x, training=False)), expected, rtol=1e-5, atol=1e-6)
    for original, loaded in zip(model.layers, restored.layers):
        if bitpack.is_packable(original):
            np.testing.assert_array_equal(np.asarray(loaded.kernel) >= 0, np.asarray(original.kernel) >= 0)


def test_binary_kernels_are_32x_smaller_than_float32():
    model = binary_model()
    sizes = bitpack.binary_kernel_sizes(model)
    kernel_entries = 4608 + 576 + 1024 + 256
    assert sizes["float32_bytes"] == 4 * kernel_entries and sizes["packed_bytes"] == kernel_entries // 8
    assert sizes["ratio"] == 32.0
    assert sizes["scale_bytes"] == 4 * (32 + 64 + 16)  # alpha of the xnor layers, Bi-Real's magnitudes
    other_bytes = 4 * sum(int(np.prod(w.shape)) for w in model.weights) - sizes["float32_bytes"]
    data = bitpack.pack(model)
    header = len(data) - sizes["packed_bytes"] - sizes["scale_bytes"] - other_bytes
    # what is left is the magic, the 4-byte length and the JSON index of every weight
    index_length = int.from_bytes(data[len(bitpack.MAGIC):len(bitpack.MAGIC) + 4], "little")
    assert header == len(bitpack.MAGIC) + 4 + index_length
    index = json.loads(data[len(bitpack.MAGIC) + 4:header])
    assert len(index["weights"]) == len(model.weights)


def test_a_binary_weight_network_of_binary_layers_packs_close_to_32x():
    inputs = keras.Input((16, 16, 64))
    x = bwn_conv2d(128, 3)(inputs)
    outputs = bwn_conv2d(128, 3)(x)
    data = bitpack.pack(keras.Model(inputs, outputs))
    float_bytes = 4 * (3 * 3 * 64 * 128 + 3 * 3 * 128 * 128)
    assert float_bytes / len(data) > 28  # header and the 256 channel scales included


@pytest.mark.parametrize("corrupt, message", [
    (lambda data: b"not a weight file", "not a bit-packed weight file"),
    (lambda data: data[:-10], "truncated"),
])
def test_bad_files_get_one_line_errors(tmp_path, corrupt, message):
    model = binary_model()
    path = tmp_path / "bad.bits"
    path.write_bytes(corrupt(bitpack.pack(model)))
    with pytest.raises(ValueError, match=message) as error:
        bitpack.load(model, str(path))
    assert "\n" not in str(error.value)


def test_a_file_for_another_model_is_refused():
    inputs = keras.Input(SHAPE)
    other = keras.Model(inputs, QuantConv2D(4, 3)(inputs))
    with pytest.raises(ValueError, match="weights, the model has"):
        bitpack.unpack(binary_model(), bitpack.pack(other))


@pytest.mark.parametrize("make, input_shape, kernel_shape, channel_axis", [
    (lambda: bwn_conv2d(16, 3), (6, 6, 16), (16, 3, 3, 16), 0),
    (lambda: bwn_depthwise_conv2d(3, depth_multiplier=4), (6, 6, 64), (1, 3, 3, 256), 3),
    (lambda: bwn_dense(64), (64,), (64, 64), 0)])
def test_int8_tflite_stores_a_binary_kernel_as_plus_minus_127_per_channel(make, input_shape, kernel_shape,
                                                                           channel_axis):
    """Full-int8 conversion keeps a BWN kernel binary: a constant of int8 values +-127 with scale
    alpha / 127 per output channel. Kernels of over 1024 entries check that the converter folds
    the sign of the frozen kernel (a select of scalars is left unfolded at that size)."""
    layer = make()
    model = layer_contract.wrap(layer, input_shape)
    data = layer_contract.random_inputs(input_shape, count=8)
    runtime = TFLiteModel.from_bytes(convert(model, "int8", representative_data=data))
    interpreter = runtime.interpreter
    kernels = [t for t in interpreter.get_tensor_details() if tuple(t["shape"]) == kernel_shape]
    assert len(kernels) == 1 and kernels[0]["dtype"] == np.int8
    channels = kernel_shape[channel_axis]
    kernel = np.moveaxis(interpreter.get_tensor(kernels[0]["index"]), channel_axis, -1).reshape(-1, channels)
    w = np.asarray(layer.kernel).reshape(-1, channels)  # Keras keeps the output channels last
    assert set(np.unique(kernel)) == {-127, 127}
    np.testing.assert_array_equal(kernel == 127, w >= 0)
    scales = kernels[0]["quantization_parameters"]["scales"]
    np.testing.assert_allclose(scales * 127, np.abs(w).mean(axis=0), rtol=1e-6)


def test_int8_binary_kernels_keep_the_fp32_outputs_bit_for_bit_at_a_quarter_of_the_bytes():
    """The fp32 file with its binary kernels as int8 signs behind DEQUANTIZE computes exactly what
    the fp32 file computes (the faithful TFLite path for XNOR-style networks; its agreement with
    Keras on trained networks is the binary report's)."""
    model = binary_model()
    layer_contract.randomize_batch_norm(model)
    fp32 = convert(model, "fp32")
    binary, count = int8_binary_kernels(fp32)
    assert convert(model, "binary") == binary
    # the four sign kernels plus the XNOR box filters of K (conv and depthwise), constant +c per channel
    assert count == 6 and "DEQUANTIZE" in operator_names(binary) and not custom_operators(binary)
    # 1 byte per kernel entry instead of 4, less a float scale and an int64 zero point per channel
    # and the new tensors and ops (the XNOR box filters of K are constant, so they count too)
    assert len(fp32) - len(binary) > 3 * (4608 + 576 + 1024 + 256) - 12 * (32 + 64 + 16 + 16) - 400 * count
    x = layer_contract.off_zero_inputs(SHAPE, count=4)
    expected = [TFLiteModel.from_bytes(data).run(x)[0] for data in (fp32, binary)]
    np.testing.assert_array_equal(expected[1], expected[0])
    signs = [t for t in TFLiteModel.from_bytes(binary).interpreter.get_tensor_details() if t["dtype"] == np.int8]
    assert len(signs) == count


def test_binary_channel_scales_needs_two_opposite_values_per_channel():
    kernel = np.array([[0.5, -0.5, 0.5], [-2.0, -2.0, 2.0]], np.float32)  # channels on axis 0
    np.testing.assert_array_equal(binary_channel_scales(kernel, 0), [0.5, 2.0])
    assert binary_channel_scales(kernel.T, 0) is None
    kernel[0, 0] = 0.25
    assert binary_channel_scales(kernel, 0) is None
    assert binary_channel_scales(np.zeros((2, 3), np.float32), 0) is None
