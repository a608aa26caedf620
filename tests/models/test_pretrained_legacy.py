"""Pretrained weights under tf_keras (Keras 2): tf_keras.applications' legacy HDF5 weights files
mapped onto the kit's layers, variants, the ImageNet cache, a head's backbone weights and the
preprocessing modes."""
import functools
import shutil

import numpy as np
import pytest

from keras_layers.keras_api import LEGACY_KERAS, keras

pytestmark = [pytest.mark.legacy_keras,
              pytest.mark.skipif(not LEGACY_KERAS, reason="run with TF_USE_LEGACY_KERAS=1")]


@pytest.mark.slow
def test_tf_keras_applications_weights_give_the_same_outputs(tmp_path):
    from pretrained_cases import CASES, images, kit, reference, saved

    assert keras.__version__.startswith("2.")
    for case in CASES:
        for include_top in (True, False):
            theirs = reference(case, include_top)
            path = saved(theirs, tmp_path, f"{case}_{include_top}")
            ours = kit(case, path, include_top)
            assert list(ours.pretrained["initialized"]) == [], case
            x = images(case)
            np.testing.assert_allclose(ours(x).numpy(), theirs(x).numpy(), rtol=0, atol=1e-5, err_msg=case)


def test_variants_cache_and_heads_under_tf_keras(tmp_path, monkeypatch):
    from pretrained_cases import images, kit, randomize, reference, saved

    from keras_layers.wht import WHT1D
    from models import lr_aspp, mobilenet_v2
    from models.pretrained import read_weights

    path = saved(reference("mobilenet_v2_0.35"), tmp_path, "v2")
    wht = mobilenet_v2((96, 96, 3), alpha=0.35, pointwise="wht1d", weights=path)
    assert list(wht.pretrained["initialized"]) == [layer.name for layer in wht.layers if isinstance(layer, WHT1D)]
    arrays = read_weights(path, wht, "mobilenet_v2")
    for name in wht.pretrained["loaded"]:
        for weight, array in zip(wht.get_layer(name).get_weights(), arrays[name]):
            np.testing.assert_array_equal(weight, array)

    monkeypatch.setattr(keras.utils, "get_file", functools.partial(keras.utils.get_file, cache_dir=str(tmp_path)))
    (tmp_path / "models").mkdir()
    shutil.copy(path, tmp_path / "models" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96.h5")
    cached = kit("mobilenet_v2_0.35", "imagenet")
    assert cached.pretrained["source"] == "imagenet" and list(cached.pretrained["initialized"]) == []
    x = images("mobilenet_v2_0.35")
    np.testing.assert_array_equal(cached(x).numpy(), kit("mobilenet_v2_0.35", path)(x).numpy())

    v3 = keras.applications.MobileNetV3Small(input_shape=(64, 64, 3), include_top=False, weights=None,
                                             include_preprocessing=False)
    v3_path = saved(randomize(v3), tmp_path, "v3")
    head = lr_aspp((64, 64, 3), 3, backbone="mobilenet_v3_small", channels=16, backbone_weights=v3_path)
    assert "lraspp_high" in head.pretrained["initialized"] and "block3_se" in head.pretrained["loaded"]
    reference_weights = v3.get_layer("expanded_conv_3/squeeze_excite/Conv_1").get_weights()
    for weight, expected in zip(head.get_layer("block3_se").get_weights()[2:], reference_weights):
        np.testing.assert_array_equal(weight, expected)


@pytest.mark.parametrize("mode, application", [("tf", "mobilenet_v2"), ("caffe", "resnet50"), ("torch", "densenet")])
def test_preprocessing_modes_equal_tf_keras_applications(mode, application):
    from models.train import with_preprocessing

    inputs = keras.Input((8, 8, 3))
    identity = keras.Model(inputs, inputs)
    pixels = np.random.default_rng(0).uniform(0, 255, (4, 8, 8, 3)).astype(np.float32)
    expected = getattr(keras.applications, application).preprocess_input(pixels.copy())
    np.testing.assert_allclose(with_preprocessing(identity, mode)(pixels).numpy(), expected, rtol=0, atol=2e-6)
