import numpy as np
import pytest
import tensorflow as tf

import layer_contract
from keras_layers.binary import QuantConv2D
from keras_layers.keras_api import keras
from keras_layers.repbnn import RepConv
from models import profile

SHAPE = (5, 5, 4)


@pytest.fixture(autouse=True)
def seeded():
    keras.utils.set_random_seed(4)


@pytest.mark.parametrize("input_replicas, output_replicas", [(1, 4), (2, 1), (2, 2)])
def test_rep_conv_is_the_binary_conv_of_the_replicated_input_replicated(input_replicas, output_replicas):
    layer = RepConv(8, 3, strides=2, input_replicas=input_replicas, output_replicas=output_replicas,
                    input_quantizer="ste_sign", kernel_quantizer="ste_sign")
    x = layer_contract.random_inputs(SHAPE, count=2)
    y = layer(x).numpy()
    assert layer.kernel.shape == (3, 3, 4 * input_replicas, 8 // output_replicas)
    maps = tf.nn.conv2d(layer_contract.sign(np.concatenate([x] * input_replicas, -1)), layer_contract.sign(layer.kernel.numpy()), 2, "SAME").numpy()
    np.testing.assert_allclose(y, np.concatenate([maps] * output_replicas, -1), rtol=1e-6)


def test_rep_tran_keeps_the_plain_convolutions_parameters_and_macs():
    """beta = 2: a 2*C_in -> 2*C_out RepConv (C_out / 2 maps, replicated 4 times) has the kernel
    and the binary multiply-adds of the plain C_in -> C_out binary convolution."""
    plain = layer_contract.wrap(QuantConv2D(8, 3, input_quantizer="ste_sign"), SHAPE)
    rep = layer_contract.wrap(RepConv(16, 3, output_replicas=4, input_quantizer="ste_sign"), (5, 5, 8))
    assert plain.count_params() == rep.count_params() == 3 * 3 * 4 * 8
    plain_cost, rep_cost = profile(plain), profile(rep)
    assert rep_cost["binary_macs"] == plain_cost["binary_macs"] == 25 * 9 * 4 * 8
    assert rep_cost["weight_bits"] == plain_cost["weight_bits"]
    assert tuple(rep.output.shape) == (None, 5, 5, 16)


def test_float_rep_conv_gradients_match_finite_differences():
    make = lambda dtype=None: RepConv(6, 3, input_replicas=2, output_replicas=3, kernel_quantizer=None,  # noqa: E731
                                      kernel_clip=None, use_bias=True, dtype=dtype, name="rep_float")
    layer_contract.assert_gradients_match_finite_differences(make, (3, 3, 2))


def test_binary_rep_conv_kernel_gradient_sums_over_the_replicas():
    """STE: d/dW of sum(y * r) is the gradient of the sign kernel (each replica's share added), masked
    by |W| <= 1."""
    layer = RepConv(6, 1, output_replicas=3, kernel_quantizer="ste_sign")
    x = layer_contract.random_inputs((2, 2, 3), count=1)
    layer(x)
    r = layer_contract.random_inputs((2, 2, 6), count=1, seed=5)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x) * r)
    shares = r.reshape(1, 2, 2, 3, 2).sum(axis=3)  # output channel j of the conv appears at j, j+2, j+4
    expected = np.einsum("bhwi,bhwo->io", x, shares)[None, None] * (np.abs(layer.kernel.numpy()) <= 1)
    np.testing.assert_allclose(tape.gradient(loss, layer.kernel).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_serialization_round_trip(tmp_path):
    layer = RepConv(8, 3, strides=2, input_replicas=2, output_replicas=2, input_quantizer="ste_sign", scale="xnor",
                    name="rep")
    layer_contract.assert_serialization_round_trip(layer, SHAPE, tmp_path)
    assert layer.get_config()["filters"] == 8


def test_tflite_fp32_and_int8_match_keras():
    """The signed input is kept off zero: int8 rounding flips signs within half a step of 0."""
    inputs = keras.Input(SHAPE)
    model = keras.Model(inputs, RepConv(8, 3, output_replicas=4, input_quantizer="ste_sign", scale="xnor")(inputs))
    data = layer_contract.off_zero_inputs(SHAPE, count=16, seed=6)
    layer_contract.assert_tflite_matches_keras(model, SHAPE, fp32_atol=1e-5, data=data)


@pytest.mark.parametrize("kwargs, message", [({"output_replicas": 3}, "multiple"), ({"input_replicas": 0}, "input"),
                                             ({"output_replicas": 1.5}, "output_replicas")])
def test_bad_arguments_get_one_line_errors(kwargs, message):
    with pytest.raises(ValueError, match=message) as error:
        RepConv(8, 3, **kwargs)
    assert "\n" not in str(error.value)
