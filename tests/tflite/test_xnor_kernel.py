import numpy as np
import pytest

import layer_contract
from keras_layers.binary import QuantConv2D, bwn_conv2d, xnor_conv2d
from keras_layers.keras_api import keras
from tflite.xnor_kernel import PackedBinaryConv2D, benchmark, float_conv2d, pack_signs


@pytest.fixture(autouse=True)
def seeded():
    keras.utils.set_random_seed(5)


def signs(x):
    return np.where(x >= 0, 1.0, -1.0).astype(np.float32)


def test_pack_signs_stores_one_bit_per_channel_in_64_bit_words():
    x = np.random.default_rng(0).standard_normal((2, 3, 130)).astype(np.float32)
    packed = pack_signs(x)
    assert packed.dtype == np.uint64 and packed.shape == (2, 3, 3)
    bits = (packed[..., :, None] >> np.arange(64, dtype=np.uint64)) & np.uint64(1)
    np.testing.assert_array_equal(bits.reshape(2, 3, 192)[..., :130], x >= 0)
    assert not bits.reshape(2, 3, 192)[..., 130:].any()  # padding bits are 0 and count nothing


@pytest.mark.parametrize("channels, kernel_size, strides, padding", [
    (70, 3, 1, "same"), (64, 3, 2, "same"), (3, 1, 1, "valid"), (130, 5, 2, "valid"), (130, 3, 2, "same")])
def test_binary_dot_equals_the_float_convolution_of_the_signs(channels, kernel_size, strides, padding):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 7, 9, channels)).astype(np.float32)
    kernel = rng.standard_normal((kernel_size, kernel_size, channels, 5)).astype(np.float32)
    conv = PackedBinaryConv2D(kernel, (strides, strides), padding)
    expected = float_conv2d(signs(x), signs(kernel), (strides, strides), padding)
    np.testing.assert_array_equal(conv.binary_dot(pack_signs(x)), expected)


@pytest.mark.parametrize("strides, padding, scale", [(1, "same", None), (2, "same", "bwn"), (2, "valid", None)])
def test_packed_kernel_equals_the_simulated_binary_layer_exactly(strides, padding, scale):
    layer = QuantConv2D(6, 3, strides=strides, padding=padding, input_quantizer="ste_sign", scale=scale)
    x = layer_contract.random_inputs((7, 8, 70), count=2)
    expected = np.asarray(layer(x))
    np.testing.assert_array_equal(PackedBinaryConv2D.from_layer(layer)(x), expected)


@pytest.mark.parametrize("make", [
    lambda: xnor_conv2d(6, 3, strides=2, use_bias=True, bias_initializer="random_normal"),
    lambda: QuantConv2D(6, 3, input_quantizer="approx_sign", kernel_quantizer="magnitude_aware_sign", scale="bwn")])
def test_packed_kernel_with_float_scales_matches_the_layer(make):
    layer = make()
    x = layer_contract.random_inputs((7, 8, 70), count=2)
    expected = np.asarray(layer(x))
    np.testing.assert_allclose(PackedBinaryConv2D.from_layer(layer)(x), expected, rtol=1e-5, atol=1e-6)


def test_only_binary_convolutions_are_accepted():
    layer = bwn_conv2d(4, 3)
    layer_contract.wrap(layer, (5, 5, 3))
    with pytest.raises(ValueError, match="sign input and kernel quantizers"):
        PackedBinaryConv2D.from_layer(layer)
    with pytest.raises(ValueError, match="packed inputs must have 2 words"):
        PackedBinaryConv2D(np.ones((3, 3, 100, 4))).binary_dot(pack_signs(np.ones((1, 4, 4, 10))))


def test_benchmark_checks_and_reports_both_kernels():
    result = benchmark((6, 6, 64), 8, runs=2, rounds=1)
    assert result["macs"] == 36 * 9 * 64 * 8
    assert result["speedup"] == pytest.approx(result["float_ms"] / result["xnor_ms"])
    assert result["speedup_with_packing"] == pytest.approx(result["float_ms"] / result["xnor_with_packing_ms"])
