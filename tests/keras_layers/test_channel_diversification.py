import numpy as np
import pytest

import layer_contract
from keras_layers.channel_diversification import ChannelDiversification
from keras_layers.keras_api import keras
from models import profile

SHAPE = (4, 4, 8)


def reference(x, gamma, beta):
    """The docstring's equations in NumPy."""
    activation = x.mean(axis=(1, 2), keepdims=True)
    distinguishability = x.max(axis=(1, 2), keepdims=True) - activation
    softmax = np.exp(distinguishability) / np.exp(distinguishability).sum(axis=-1, keepdims=True)
    gate = 1 / (1 + np.exp(-(gamma * activation + beta)))
    return x * (1 + x.shape[-1] * softmax * gate)


def test_matches_the_equations_and_favours_the_peaked_channel():
    layer = ChannelDiversification()
    x = layer_contract.random_inputs(SHAPE, count=3)
    layer(x)
    layer.set_weights([np.linspace(0.5, 2, 8).astype("float32"), np.linspace(-1, 1, 8).astype("float32")])
    np.testing.assert_allclose(np.asarray(layer(x)), reference(x, *layer.get_weights()), rtol=1e-5, atol=1e-6)
    flat = np.ones((1, *SHAPE), np.float32)
    flat[0, 0, 0, 3] = 5.0  # channel 3 has a spatial peak, the others are flat
    gain = np.asarray(layer(flat))[0, 1, 1] / flat[0, 1, 1]
    assert np.argmax(gain) == 3 and gain[3] > 2 * np.delete(gain, 3).max()


def test_gradients_match_finite_differences():
    layer_contract.assert_gradients_match_finite_differences(
        lambda dtype: ChannelDiversification(dtype=dtype), (3, 3, 4))


def test_serialization_round_trip(tmp_path):
    layer = ChannelDiversification(name="cdb")
    layer_contract.assert_serialization_round_trip(layer, SHAPE, tmp_path)


def test_tflite_fp32_and_int8_match_keras():
    inputs = keras.Input(shape=SHAPE)
    model = keras.Model(inputs, ChannelDiversification()(keras.layers.ReLU()(inputs)))
    layer_contract.assert_tflite_matches_keras(model, SHAPE)


def test_profile_counts_its_macs_and_parameters():
    model = layer_contract.wrap(ChannelDiversification(), SHAPE)
    cost = profile(model)
    assert cost["macs"] == 4 * 4 * 8 + 8 and cost["params"] == 2 * 8


@pytest.mark.parametrize("shape", [(7, 7, 64), (1, 1, 3)])
def test_output_shape_is_the_input_shape(shape):
    assert tuple(layer_contract.wrap(ChannelDiversification(), shape).output.shape) == (None, *shape)
