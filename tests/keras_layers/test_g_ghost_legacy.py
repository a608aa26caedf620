"""G-Ghost stage layer and G-GhostNet under tf_keras (Keras 2), and RegNetX against tf_keras.applications."""
import numpy as np
import pytest

from keras_layers.keras_api import LEGACY_KERAS, keras

pytestmark = [pytest.mark.legacy_keras,
              pytest.mark.skipif(not LEGACY_KERAS, reason="run with TF_USE_LEGACY_KERAS=1")]


def test_g_ghost_stage_round_trips_and_converts(tmp_path):
    import layer_contract
    from keras_layers.g_ghost import GGhostCheapMix

    assert keras.__version__.startswith("2.")
    keras.utils.set_random_seed(1)
    inputs = keras.Input(shape=(5, 6, 8))
    first = keras.layers.Conv2D(8, 1)(inputs)
    middle = keras.layers.Conv2D(3, 3, padding="same")(first[:, :, :, :3])  # sliced as models.g_ghostnet does
    model = keras.Model(inputs, GGhostCheapMix(name="cheap_mix")([first, middle]))
    layer_contract.randomize_batch_norm(model)
    x = layer_contract.random_inputs((5, 6, 8), count=2)
    model.save(str(tmp_path / "g_ghost.keras"))
    restored = keras.models.load_model(str(tmp_path / "g_ghost.keras"))
    np.testing.assert_allclose(restored(x, training=False), model(x, training=False), atol=1e-5)
    layer_contract.assert_tflite_matches_keras(model, (5, 6, 8), samples=16)


@pytest.mark.parametrize("table, reference, params", [  # regression pins: keras.applications' counts
    ("REGNETX_3_2GF", "RegNetX032", 15_359_112), ("REGNETX_200MF", "RegNetX002", 2_705_640)])
def test_regnetx_parameters_equal_tf_keras_applications(table, reference, params):
    from models.g_ghostnet import REGNETX_3_2GF, REGNETX_200MF, g_ghostnet

    stages = {"REGNETX_3_2GF": REGNETX_3_2GF, "REGNETX_200MF": REGNETX_200MF}[table]
    ours = g_ghostnet((32, 32, 3), stages=stages)  # parameters do not depend on the input size
    reference = getattr(keras.applications, reference)(input_shape=(32, 32, 3), weights=None,
                                                        include_preprocessing=False)
    assert ours.count_params() == reference.count_params() == params
    assert len(ours.trainable_weights) == len(reference.trainable_weights)
