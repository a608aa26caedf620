"""The Channel Diversification Block and a small ResNet under tf_keras (Keras 2)."""
import numpy as np
import pytest

from keras_layers.keras_api import LEGACY_KERAS, keras

pytestmark = [pytest.mark.legacy_keras,
              pytest.mark.skipif(not LEGACY_KERAS, reason="run with TF_USE_LEGACY_KERAS=1")]


def test_channel_diversification_builds_round_trips_and_converts(tmp_path):
    import layer_contract
    from keras_layers.channel_diversification import ChannelDiversification

    assert keras.__version__.startswith("2.")
    layer = ChannelDiversification(name="cdb")
    layer_contract.assert_serialization_round_trip(layer, (4, 4, 8), tmp_path)
    layer_contract.assert_gradients_match_finite_differences(lambda dtype: ChannelDiversification(dtype=dtype),
                                                             (3, 3, 4))
    inputs = keras.Input(shape=(4, 4, 8))
    model = keras.Model(inputs, ChannelDiversification()(keras.layers.ReLU()(inputs)))
    layer_contract.assert_tflite_matches_keras(model, (4, 4, 8))


def test_small_resnet_with_channel_diversification_under_tf_keras():
    from keras_layers.channel_diversification import ChannelDiversification
    from models import profile
    from models.resnet import RESNET_20, resnet, resnet20

    # He et al.'s ResNet-20 (option A shortcuts: no parameters; convolutions without bias), counted
    # by hand: 3x3 stem 3 -> 16, six 3x3 16 -> 16, 16 -> 32 and five 32 -> 32, 32 -> 64 and five
    # 64 -> 64, gamma and beta of the 19 batch norms, the 64 -> 10 dense layer with bias.
    convs = 9 * (3 * 16 + 6 * 16 * 16 + 16 * 32 + 5 * 32 * 32 + 32 * 64 + 5 * 64 * 64)
    batch_norms = 2 * (16 + 6 * 16 + 6 * 32 + 6 * 64)
    assert sum(int(np.prod(w.shape)) for w in resnet20().trainable_weights) == convs + batch_norms + 64 * 10 + 10
    backbone = resnet((32, 32, 3), include_top=False, stages=RESNET_20, stem="cifar", shortcut="A")
    x = ChannelDiversification()(backbone.output)
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(backbone.input, outputs)
    probabilities = model(np.zeros((2, 32, 32, 3), np.float32), training=False)
    np.testing.assert_allclose(np.sum(probabilities, axis=-1), 1.0, rtol=1e-5)
    assert profile(model)["macs"] == profile(backbone)["macs"] + 8 * 8 * 64 + 64 + 64 * 10
