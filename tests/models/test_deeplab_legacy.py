"""Segmenters and the atrous backbone under tf_keras (Keras 2)."""
import numpy as np
import pytest

from keras_layers.keras_api import LEGACY_KERAS, keras

pytestmark = [pytest.mark.legacy_keras,
              pytest.mark.skipif(not LEGACY_KERAS, reason="run with TF_USE_LEGACY_KERAS=1")]


def test_segmenters_build_and_the_atrous_identity_holds_under_tf_keras():
    from layer_contract import random_inputs, randomize_batch_norm
    from models.backbones import atrous, feature_tap_names
    from models.deeplab import lr_aspp, mobile_deeplabv3
    from models.mobilenet_v2 import mobilenet_v2

    assert keras.__version__.startswith("2.")
    plain = mobilenet_v2(input_shape=(64, 64, 3), alpha=0.35, include_top=False)
    randomize_batch_norm(plain)
    x = random_inputs((64, 64, 3), count=1, seed=1)
    os16 = atrous(plain, 16)
    np.testing.assert_allclose(os16.predict(x, verbose=0)[:, 1::2, 1::2], plain.predict(x, verbose=0),
                               rtol=1e-4, atol=1e-4)
    taps = feature_tap_names(plain)  # recorded by the builder under tf_keras too, kept by the atrous copy
    assert (taps["stride16_expanded"], taps["final"]) == ("block13_expand_relu6", "block16_project_bn")
    assert feature_tap_names(os16) == taps
    for model in (mobile_deeplabv3((32, 32, 3), 3, alpha=0.35, output_stride=8, aspp="full"),
                  lr_aspp((32, 32, 3), 3, alpha=0.35, backbone="mobilenet_v3_small", channels=16)):
        probabilities = model.predict(random_inputs((32, 32, 3)), verbose=0)
        assert probabilities.shape == (1, 32, 32, 3)
        np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-5)
