import numpy as np
import pytest
import tensorflow as tf

import layer_contract
from demo_app.runtime import TFLiteModel
from keras_layers.binary import (QuantConv2D, QuantDense, QuantDepthwiseConv2D, bwn_conv2d, bwn_dense,
                                 bwn_depthwise_conv2d, xnor_conv2d, xnor_dense, xnor_depthwise_conv2d)
from keras_layers.keras_api import keras
from tflite import convert, custom_operators

SHAPE = (6, 6, 5)


@pytest.fixture(autouse=True)
def seeded():
    keras.utils.set_random_seed(3)


def reference_conv(x, kernel, stride, padding, depthwise=False):
    """Direct sum over taps with zero padding (TensorFlow's 'same' split), in float64."""
    kh, kw = kernel.shape[:2]
    n, h, w, c = x.shape
    if padding == "same":
        out_h, out_w = -(-h // stride), -(-w // stride)
        pad_h, pad_w = max((out_h - 1) * stride + kh - h, 0), max((out_w - 1) * stride + kw - w, 0)
        x = np.pad(x, ((0, 0), (pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0)))
    else:
        out_h, out_w = (h - kh) // stride + 1, (w - kw) // stride + 1
    out = 0.0
    for i in range(kh):
        for j in range(kw):
            patch = x[:, i:i + stride * out_h:stride, j:j + stride * out_w:stride, :]
            if depthwise:
                out = out + (patch[..., :, None] * kernel[i, j]).reshape(n, out_h, out_w, -1)
            else:
                out = out + patch @ kernel[i, j]
    return out


def away_from_zero(shape, count, seed=4):
    """Inputs whose signs survive int8 input quantization (|x| >= 0.25)."""
    rng = np.random.default_rng(seed)
    return (layer_contract.sign(rng.standard_normal((count, *shape))) * rng.uniform(0.25, 1.0, (count, *shape))).astype(np.float32)


@pytest.mark.parametrize("strides, padding", [(1, "same"), (2, "same"), (2, "valid")])
def test_xnor_conv_is_alpha_times_sign_conv_times_input_scale_k(strides, padding):
    layer = xnor_conv2d(4, 3, strides=strides, padding=padding)
    x = layer_contract.random_inputs(SHAPE, count=2)
    y = layer(x).numpy()
    w = layer.kernel.numpy().astype(np.float64)
    alpha = np.abs(w).mean(axis=(0, 1, 2))
    binary = reference_conv(layer_contract.sign(x), layer_contract.sign(w), strides, padding)
    box = reference_conv(np.abs(x).mean(axis=-1, keepdims=True), np.full((3, 3, 1, 1), 1 / 9), strides, padding)
    np.testing.assert_allclose(y, binary * alpha * box, rtol=1e-5, atol=1e-6)


def test_xnor_depthwise_scales_each_channel_by_its_own_k_and_alpha():
    layer = xnor_depthwise_conv2d(3, depth_multiplier=2)
    x = layer_contract.random_inputs(SHAPE, count=2)
    y = layer(x).numpy()
    w = layer.kernel.numpy().astype(np.float64)
    binary = reference_conv(layer_contract.sign(x), layer_contract.sign(w) * np.abs(w).mean(axis=(0, 1)), 1, "same", depthwise=True)
    box = reference_conv(np.abs(x), np.full((3, 3, 5, 1), 1 / 9), 1, "same", depthwise=True)
    np.testing.assert_allclose(y, binary * np.repeat(box, 2, axis=-1), rtol=1e-5, atol=1e-6)


def test_xnor_and_bwn_dense():
    x = layer_contract.random_inputs((7,), count=3)
    xnor, bwn = xnor_dense(4, use_bias=True, bias_initializer="ones"), bwn_dense(4)
    y_xnor, y_bwn = xnor(x).numpy(), bwn(x).numpy()
    w = xnor.kernel.numpy().astype(np.float64)
    expected = layer_contract.sign(x) @ (layer_contract.sign(w) * np.abs(w).mean(axis=0)) * np.abs(x).mean(axis=-1, keepdims=True) + 1
    np.testing.assert_allclose(y_xnor, expected, rtol=1e-5)
    w = bwn.kernel.numpy().astype(np.float64)
    np.testing.assert_allclose(y_bwn, x @ (layer_contract.sign(w) * np.abs(w).mean(axis=0)), rtol=1e-5, atol=1e-6)


def test_kernel_gradient_is_the_straight_through_estimate():
    """y = conv(x, layer_contract.sign(W)): dL/dW = dL/dsign(W) where |W| <= clip, else 0."""
    layer = QuantConv2D(4, 3, kernel_clip=None)
    x = tf.constant(layer_contract.random_inputs(SHAPE, count=2))
    layer(x)
    w = layer.kernel.numpy()
    w[0, 0] = 1.5  # some latent weights outside the clip range of the estimator
    layer.kernel.assign(w)
    binary = tf.constant(layer_contract.sign(w).astype(np.float32))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(binary)
        loss = tf.reduce_sum(tf.square(layer(x)))
        reference = tf.reduce_sum(tf.square(tf.nn.conv2d(x, binary, 1, "SAME")))
    expected = tape.gradient(reference, binary).numpy() * (np.abs(w) <= 1)
    np.testing.assert_allclose(tape.gradient(loss, layer.kernel).numpy(), expected, rtol=1e-5, atol=1e-5)
    assert np.all(tape.gradient(loss, layer.kernel).numpy()[0, 0] == 0)


def test_input_gradient_is_the_straight_through_estimate():
    """y = conv(layer_contract.sign(x), W): dL/dx = dL/dsign(x) where |x| <= 1, else 0."""
    layer = QuantConv2D(4, 3, input_quantizer="ste_sign", kernel_quantizer=None)
    x = tf.constant(layer_contract.random_inputs(SHAPE, count=2))
    binary = tf.constant(layer_contract.sign(x.numpy()).astype(np.float32))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x, binary])
        loss = tf.reduce_sum(tf.square(layer(x)))
        reference = tf.reduce_sum(tf.square(tf.nn.conv2d(binary, layer.kernel, 1, "SAME")))
    expected = tape.gradient(reference, binary).numpy() * (np.abs(x.numpy()) <= 1)
    np.testing.assert_allclose(tape.gradient(loss, x).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_weight_clip_constrains_latent_weights_after_an_update():
    """One SGD step: the kernel becomes clip(W - lr * dL/dW, -0.05, 0.05), the gradient taken by hand."""
    layer = bwn_conv2d(4, 3, kernel_clip=0.05)
    model = layer_contract.wrap(layer, SHAPE)
    model.compile(optimizer=keras.optimizers.SGD(10.0), loss="mse")
    x, y = layer_contract.random_inputs(SHAPE, count=4), np.ones((4, 6, 6, 4), np.float32) * 5
    before = layer.kernel.numpy()
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model(x, training=True) - y))
    expected = np.clip(before - 10.0 * tape.gradient(loss, layer.kernel).numpy(), -0.05, 0.05)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    np.testing.assert_allclose(layer.kernel.numpy(), expected, atol=1e-6)
    assert np.mean(np.abs(expected) == np.float32(0.05)) > 0.5  # the step pushed most entries past the clip


def test_costs_and_operand_bits():
    conv = QuantConv2D(8, 3, strides=2, input_quantizer="uniform_2bit", kernel_quantizer="dorefa_2bit")
    layer_contract.wrap(conv, SHAPE)
    assert (conv.input_bits, conv.kernel_bits) == (2, 2)
    assert conv.count_macs() == 3 * 3 * 3 * 3 * 5 * 8 and conv.count_weight_bits() == 2 * 3 * 3 * 5 * 8
    depthwise = bwn_depthwise_conv2d(3, depth_multiplier=2, use_bias=True)
    layer_contract.wrap(depthwise, SHAPE)
    assert (depthwise.input_bits, depthwise.kernel_bits) == (32, 1)
    assert depthwise.count_macs() == 36 * 9 * 10 and depthwise.count_weight_bits() == 90 + 2 * 32 * 10


MAKERS = {
    "bwn_conv": lambda dtype=None: bwn_conv2d(4, 3, strides=2, use_bias=True, dtype=dtype, name="bwn_conv"),
    "bwn_depthwise": lambda dtype=None: bwn_depthwise_conv2d(3, depth_multiplier=2, dtype=dtype, name="bwn_dw"),
    "bwn_dense": lambda dtype=None: bwn_dense(3, dtype=dtype, name="bwn_dense"),
    "xnor_conv": lambda dtype=None: xnor_conv2d(4, 3, dtype=dtype, name="xnor_conv"),
    "xnor_depthwise": lambda dtype=None: xnor_depthwise_conv2d(3, input_quantizer="approx_sign", dtype=dtype,
                                                               name="xnor_dw"),
    "magnitude_aware_dense": lambda dtype=None: QuantDense(3, input_quantizer="ste_sign",
                                                           kernel_quantizer="magnitude_aware_sign", dtype=dtype,
                                                           name="mag_dense"),
}


@pytest.mark.parametrize("kind", ["bwn_conv", "bwn_depthwise", "bwn_dense"])
def test_input_gradients_of_binary_weight_layers_match_finite_differences(kind):
    layer_contract.assert_gradients_match_finite_differences(MAKERS[kind], (4, 4, 3))


@pytest.mark.parametrize("kind", MAKERS)
def test_serialization_round_trip(kind, tmp_path):
    layer = MAKERS[kind]()
    layer_contract.wrap(layer, SHAPE)
    layer_contract.assert_serialization_round_trip(layer, SHAPE, tmp_path)


def test_bwn_layers_convert_to_builtins_and_match_keras():
    inputs = keras.Input(SHAPE)
    x = MAKERS["bwn_conv"]()(inputs)
    x = MAKERS["bwn_depthwise"]()(x)
    outputs = MAKERS["bwn_dense"]()(x)
    layer_contract.assert_tflite_matches_keras(keras.Model(inputs, outputs), SHAPE, samples=16)


def test_xnor_layers_convert_to_builtins_and_match_keras():
    """Sign inputs become GREATER_EQUAL + SELECT_V2 and run in int8. The signed tensors are kept
    off zero: int8 rounding flips the sign of values within half a quantization step of 0."""
    inputs = keras.Input(SHAPE)
    branches = [MAKERS["xnor_conv"]()(inputs), MAKERS["xnor_depthwise"]()(inputs),
                MAKERS["magnitude_aware_dense"]()(inputs)]
    model = keras.Model(inputs, keras.layers.Concatenate()(branches))
    data = away_from_zero(SHAPE, 16)
    expected = model.predict(data, verbose=0)
    for quantization, tolerance in (("fp32", 1e-5), ("int8", 0.05)):
        model_bytes = convert(model, quantization, representative_data=data, io_dtype="float32")
        assert custom_operators(model_bytes) == []
        runtime = TFLiteModel.from_bytes(model_bytes)
        actual = np.stack([runtime.run(x)[0][0] for x in data])
        assert np.max(np.abs(actual - expected)) <= tolerance * np.ptp(expected), quantization


@pytest.mark.parametrize("make, message", [
    (lambda: QuantConv2D(4, 3, scale="alpha"), "scale"),
    (lambda: QuantConv2D(4, 3, scale="xnor"), "input_quantizer"),
    (lambda: QuantConv2D(4, 3, padding="causal"), "padding"),
    (lambda: QuantConv2D(0, 3), "filters"),
    (lambda: QuantDepthwiseConv2D((3, 3, 3)), "kernel_size"),
    (lambda: QuantDense(4, kernel_quantizer="sign"), "unknown quantizer"),
    (lambda: QuantDense(4, kernel_clip=0), "kernel_clip")])
def test_bad_arguments_get_one_line_errors(make, message):
    with pytest.raises(ValueError, match=message) as error:
        make()
    assert "\n" not in str(error.value)
