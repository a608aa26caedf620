import numpy as np
import pytest
import tensorflow as tf

from keras_layers import quantizers
from keras_layers.quantizers import (ApproxSign, MagnitudeAwareSign, SteSign, UniformQuantizer, approx_sign,
                                     magnitude_aware_sign, ste_sign)

X = np.array([-2.0, -1.0, -0.75, -0.3, 0.0, 0.2, 0.5, 1.0, 1.5], np.float32)


def value_and_gradient(function, x):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = function(x)
    return y.numpy(), tape.gradient(y, x).numpy()


@pytest.mark.parametrize("clip", [1.0, 0.4])
def test_ste_sign_is_sign_with_a_clipped_identity_gradient(clip):
    y, grad = value_and_gradient(lambda x: ste_sign(x, clip), X)
    np.testing.assert_array_equal(y, np.where(X >= 0, 1.0, -1.0))
    np.testing.assert_array_equal(grad, (np.abs(X) <= clip).astype(np.float32))


def test_approx_sign_gradient_is_the_derivative_of_the_quadratic_approximation():
    y, grad = value_and_gradient(approx_sign, X)
    np.testing.assert_array_equal(y, np.where(X >= 0, 1.0, -1.0))
    expected = np.where(np.abs(X) <= 1, 2 - 2 * np.abs(X), 0.0)
    np.testing.assert_allclose(grad, expected, atol=1e-7)


def test_magnitude_aware_sign_scales_each_output_channel_by_its_mean_magnitude():
    w = np.random.default_rng(0).uniform(-1.5, 1.5, (3, 3, 2, 4)).astype(np.float32)
    scale = np.abs(w).reshape(-1, 4).mean(axis=0)
    y, grad = value_and_gradient(magnitude_aware_sign, w)
    np.testing.assert_allclose(y, np.where(w >= 0, 1.0, -1.0) * scale, rtol=1e-6)
    np.testing.assert_allclose(grad, (np.abs(w) <= 1) * scale, rtol=1e-6)  # the scale is held constant


@pytest.mark.parametrize("bits", [1, 2, 4])
def test_uniform_activation_quantizer_rounds_clipped_inputs_to_2_to_the_k_levels(bits):
    x = np.linspace(-0.5, 1.5, 41).astype(np.float32)
    y, grad = value_and_gradient(UniformQuantizer(bits), x)
    levels = 2 ** bits - 1
    np.testing.assert_allclose(y, np.round(np.clip(x, 0, 1) * levels) / levels, atol=1e-7)
    assert len(np.unique(y)) == 2 ** bits
    np.testing.assert_array_equal(grad, ((x >= 0) & (x <= 1)).astype(np.float32))


def test_dorefa_weights_are_k_bit_levels_of_normalized_tanh():
    w = np.random.default_rng(1).normal(0, 1, (5, 6)).astype(np.float32)
    y, grad = value_and_gradient(UniformQuantizer(2, mode="weights"), w)
    t = np.tanh(w.astype(np.float64))
    expected = 2 * np.round((t / (2 * np.abs(t).max()) + 0.5) * 3) / 3 - 1
    np.testing.assert_allclose(y, expected, atol=1e-6)
    assert set(np.round(np.unique(y) * 3).astype(int)) <= {-3, -1, 1, 3}
    # Straight through the rounding, sum(y) is sum(t) / M with M = max |t| (not held constant):
    # d/dw_j = (1 - t_j^2) / M, and the entry k holding the maximum also moves M.
    magnitude, k, total = np.abs(t).max(), np.abs(t).argmax(), t.sum()
    expected_grad = (1 - t ** 2) / magnitude
    expected_grad.flat[k] -= np.sign(t.flat[k]) * (1 - t.flat[k] ** 2) * total / magnitude ** 2
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name, cls, bits", [
    ("ste_sign", SteSign, 1), ("approx_sign", ApproxSign, 1), ("magnitude_aware_sign", MagnitudeAwareSign, 1),
    ("uniform_3bit", UniformQuantizer, 3), ("dorefa_2bit", UniformQuantizer, 2)])
def test_registry_names_configs_and_bits(name, cls, bits):
    quantizer = quantizers.get(name)
    assert type(quantizer) is cls and quantizers.bits(name) == quantizers.bits(quantizer) == bits
    config = quantizers.serialize(quantizer)
    assert quantizers.get(config) == quantizer and quantizers.serialize(quantizers.get(config)) == config
    np.testing.assert_array_equal(quantizers.get(config)(X).numpy(), quantizer(X).numpy())


def test_none_functions_and_callables_pass_through():
    assert quantizers.get(None) is None and quantizers.bits(None) == 32 and quantizers.serialize(None) is None
    assert quantizers.get(ste_sign) == SteSign() and quantizers.serialize(ste_sign) == "ste_sign"
    assert quantizers.bits(approx_sign) == 1 and quantizers.is_sign(approx_sign) and quantizers.is_sign("ste_sign")
    assert not quantizers.is_sign("dorefa_1bit") and not quantizers.is_sign(None)
    custom = lambda x: x  # noqa: E731
    assert quantizers.get(custom) is custom and quantizers.bits(custom) == 32
    assert quantizers.get(SteSign(0.5)).clip_value == 0.5


@pytest.mark.parametrize("identifier, message", [
    ("sign", "unknown quantizer"), ("uniform_9bit", "bits"), ({"class_name": "Nope"}, "bad quantizer config"),
    (3, "bad quantizer")])
def test_bad_identifiers_get_one_line_errors(identifier, message):
    with pytest.raises(ValueError, match=message) as error:
        quantizers.get(identifier)
    assert "\n" not in str(error.value)
