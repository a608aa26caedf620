import numpy as np
import pytest

import layer_contract
from keras_layers.activations import HardSigmoid, HardSwish, SqueezeExcite
from keras_layers.keras_api import keras
from models import profile
from tflite import convert
from tflite.inspect import operator_names

SHAPE = (5, 5, 8)


@pytest.fixture(autouse=True)
def seeded():
    """Deterministic weights: random networks' int8 error and ReLU kinks vary with the draw."""
    keras.utils.set_random_seed(1)


def test_hard_activations_are_the_papers_piecewise_linear_curves():
    x = np.array([-4.0, -3.0, -1.5, 0.0, 1.5, 3.0, 4.0], np.float32)
    expected_sigmoid = np.array([0.0, 0.0, 0.25, 0.5, 0.75, 1.0, 1.0], np.float32)
    np.testing.assert_allclose(np.asarray(HardSigmoid()(x)), expected_sigmoid, atol=1e-7)
    np.testing.assert_allclose(np.asarray(HardSwish()(x)), x * expected_sigmoid, atol=1e-6)


def test_squeeze_excite_rescales_by_the_hard_sigmoid_gate_and_counts_its_convolutions():
    layer = SqueezeExcite(4)
    x = layer_contract.random_inputs(SHAPE, count=2)
    y = np.asarray(layer(x))
    reduce_kernel, reduce_bias, expand_kernel, expand_bias = (np.asarray(w) for w in layer.weights)
    pooled = x.mean(axis=(1, 2))
    gate = np.clip((np.maximum(pooled @ reduce_kernel[0, 0] + reduce_bias, 0) @ expand_kernel[0, 0] + expand_bias + 3)
                   / 6, 0, 1)
    np.testing.assert_allclose(y, x * gate[:, None, None], rtol=1e-5, atol=1e-6)
    cost = profile(layer_contract.wrap(SqueezeExcite(4), SHAPE))
    assert cost["macs"] == 8 * 4 + 4 * 8 and cost["params"] == 8 * 4 + 4 + 4 * 8 + 8


@pytest.mark.parametrize("make", [HardSwish, HardSigmoid, lambda dtype=None: SqueezeExcite(4, dtype=dtype)])
def test_contract(make, tmp_path):
    layer_contract.assert_gradients_match_finite_differences(lambda dtype: make(dtype=dtype), (3, 3, 8))
    layer_contract.assert_serialization_round_trip(make(), SHAPE, tmp_path)
    inputs = keras.Input(shape=SHAPE)
    model = keras.Model(inputs, make()(keras.layers.Conv2D(8, 1)(inputs)))
    layer_contract.assert_tflite_matches_keras(model, SHAPE, samples=16)


def test_hard_swish_converts_to_the_builtin_hard_swish():
    model = layer_contract.wrap(HardSwish(), SHAPE)
    assert "HARD_SWISH" in operator_names(convert(model, "fp32"))
