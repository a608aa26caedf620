"""ConformalLayers and ReSPro under tf_keras (Keras 2)."""
import numpy as np
import pytest

import conformal_reference as ref
import layer_contract
from keras_layers.conformal import ConformalLayers, ReSPro
from keras_layers.keras_api import LEGACY_KERAS, keras

pytestmark = [pytest.mark.legacy_keras,
              pytest.mark.skipif(not LEGACY_KERAS, reason="run with TF_USE_LEGACY_KERAS=1")]


def conv(filters, size, strides=1):
    return keras.layers.Conv2D(filters, size, strides, use_bias=False)


MIXES = {  # name: (input shape, sequence)
    "pool_dropout_trailing": ((13, 11, 2), lambda: [
        conv(4, 3), ReSPro(), keras.layers.AveragePooling2D(2), keras.layers.Dropout(0.5), conv(5, 2, strides=2),
        ReSPro(alpha=0.5), conv(3, 1)]),
    "depth8": ((19, 18, 2), lambda: [layer for _ in range(8) for layer in (conv(3, 3), ReSPro())]),
}


@pytest.mark.parametrize("mix", sorted(MIXES))
def test_composed_equals_layer_by_layer_and_numpy_under_tf_keras(mix):
    assert keras.__version__.startswith("2.")
    shape, sequence = MIXES[mix]
    composed = layer_contract.wrap(ConformalLayers(sequence()), shape)
    conformal = composed.layers[-1]
    twin = ConformalLayers.from_config({**conformal.get_config(), "inference": "layers"})
    layerwise = layer_contract.wrap(twin, shape)
    for mine, theirs in zip(twin.sequence, conformal.sequence):
        mine.set_weights(theirs.get_weights())
    x = layer_contract.random_inputs(shape, count=3, scale=2.0)
    expected = ref.network(x, ref.steps_of(conformal))
    scale = np.max(np.abs(expected))
    assert np.max(np.abs(layerwise.predict(x, verbose=0) - expected)) <= 1e-5 * scale
    assert np.max(np.abs(composed.predict(x, verbose=0) - expected)) <= 1e-4 * scale


def test_respro_round_trips_and_converts_under_tf_keras(tmp_path):
    x = layer_contract.random_inputs((3, 4, 2), count=2)
    np.testing.assert_allclose(np.asarray(ReSPro(0.5)(x)), ref.respro_geometric(x, 0.5), rtol=1e-5, atol=1e-7)
    shape, sequence = MIXES["pool_dropout_trailing"]
    layer_contract.assert_serialization_round_trip(ConformalLayers(sequence(), name="conformal"), shape, tmp_path)
    layer_contract.assert_tflite_matches_keras(layer_contract.wrap(ConformalLayers(sequence()), shape), shape)
