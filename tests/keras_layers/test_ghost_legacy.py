"""Ghost layers, hard activations, MobileNetV3 and GhostNet under tf_keras (Keras 2)."""
import pytest

from keras_layers.keras_api import LEGACY_KERAS, keras

pytestmark = [pytest.mark.legacy_keras,
              pytest.mark.skipif(not LEGACY_KERAS, reason="run with TF_USE_LEGACY_KERAS=1")]


def test_ghost_layers_build_round_trip_and_convert(tmp_path):
    import layer_contract
    from keras_layers.activations import HardSwish
    from keras_layers.ghost import GhostBottleneck, GhostModule

    assert keras.__version__.startswith("2.")
    keras.utils.set_random_seed(1)
    make = lambda dtype=None: GhostBottleneck(12, 10, strides=2, se_channels=4, dtype=dtype, name="bneck")  # noqa: E731
    layer_contract.assert_gradients_match_finite_differences(make, (4, 4, 8), atol=1e-4)
    layer_contract.assert_serialization_round_trip(GhostModule(6, ratio=3, name="ghost"), (6, 6, 8), tmp_path)
    layer_contract.assert_serialization_round_trip(make(), (6, 6, 8), tmp_path, atol=1e-5)
    inputs = keras.Input(shape=(6, 6, 8))
    outputs = HardSwish()(make()(keras.layers.Conv2D(8, 3, padding="same")(inputs)))
    layer_contract.assert_tflite_matches_keras(keras.Model(inputs, outputs), (6, 6, 8), samples=16)


@pytest.mark.parametrize("family", ["Large", "Small"])
def test_mobilenet_v3_parameter_count_equals_tf_keras_applications(family):
    from models.mobilenet_v3 import mobilenet_v3_large, mobilenet_v3_small

    ours = {"Large": mobilenet_v3_large, "Small": mobilenet_v3_small}[family]
    reference = getattr(keras.applications, f"MobileNetV3{family}")
    for alpha, minimalistic in ((0.75, False), (1.0, True)):
        model = ours(alpha=alpha, minimalistic=minimalistic)
        expected = reference(input_shape=(224, 224, 3), alpha=alpha, minimalistic=minimalistic, weights=None,
                             include_preprocessing=False)
        assert model.count_params() == expected.count_params()
        assert len(model.trainable_weights) == len(expected.trainable_weights)


def test_ghostnet_profile_is_the_same_as_under_keras_3():
    from models import profile
    from models.ghostnet import ghostnet

    cost = profile(ghostnet())
    assert round(cost["params"] / 1e5) == 52 and round(cost["macs"] / 1e6) == 141  # Han et al., Table 7: 5.2M, 141M
    assert (cost["params"], cost["macs"]) == (5_204_476, 141_150_512)  # regression pin: the Keras 3 build's counts
