"""Pretrained weights (models.pretrained): keras.applications weights files mapped onto the kit's
layers, partial loads of variants, the ImageNet cache lookup, heads' backbone weights, the
registry's weights and the input preprocessing modes (Keras 3)."""
import functools
import shutil

import h5py
import numpy as np
import pytest
from pretrained_cases import CASES, images, kit, randomize, reference, saved

from keras_layers.keras_api import keras
from keras_layers.wht import WHT1D
from models import build_model, ghostnet, lr_aspp, mobile_deeplabv3, mobilenet_v2, mobilenet_v3_large, ssdlite
from models.pretrained import FAMILIES, read_weights, weighted_layers
from models.train import with_preprocessing


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_keras_applications_weights_give_the_same_outputs(case, tmp_path):
    for include_top in (True, False):
        theirs = reference(case, include_top)
        ours = kit(case, saved(theirs, tmp_path, f"{case}_{include_top}"), include_top)
        assert ours.pretrained["initialized"] == [] and len(ours.pretrained["loaded"]) > 0
        x = images(case)
        np.testing.assert_allclose(ours(x).numpy(), theirs(x).numpy(), rtol=0, atol=1e-5)


@pytest.fixture(scope="module")
def v2_file(tmp_path_factory):
    """A random keras.applications MobileNetV2 0.35 weights file (with the top)."""
    return saved(reference("mobilenet_v2_0.35"), tmp_path_factory.mktemp("v2"), "mobilenet_v2")


def _assert_layers_equal(model, arrays, names):
    for name in names:
        for weight, array in zip(model.get_layer(name).get_weights(), arrays[name]):
            np.testing.assert_array_equal(weight, np.reshape(array, weight.shape))


def test_wht_variant_loads_every_layer_but_the_wht_ones(v2_file):
    model = mobilenet_v2((96, 96, 3), alpha=0.35, pointwise="wht1d", weights=v2_file)
    wht = [layer.name for layer in model.layers if isinstance(layer, WHT1D)]
    assert wht and model.pretrained["initialized"] == wht
    assert model.pretrained["source"] == v2_file
    _assert_layers_equal(model, read_weights(v2_file, model, "mobilenet_v2"), model.pretrained["loaded"])


def test_other_classes_and_alpha_keep_the_mismatching_layers_initialized(v2_file):
    other_classes = mobilenet_v2((96, 96, 3), alpha=0.35, classes=7, weights=v2_file)
    assert other_classes.pretrained["initialized"] == ["predictions"]
    other_alpha = mobilenet_v2((96, 96, 3), alpha=0.5, weights=v2_file)
    loaded, initialized = other_alpha.pretrained["loaded"], other_alpha.pretrained["initialized"]
    assert "block1_project" in initialized  # 0.35 and 0.5: the same stem and head, other blocks
    assert {"stem", "block1_expand", "head_bn"} <= set(loaded)
    _assert_layers_equal(other_alpha, read_weights(v2_file, other_alpha, "mobilenet_v2"), loaded)


def test_kit_weights_file_round_trips(tmp_path):
    source = kit("mobilenet_v3_small", None, minimalistic=True)
    assert source.pretrained is None
    path = saved(reference("mobilenet_v3_small", minimalistic=True), tmp_path, "ref")  # random weights
    source = kit("mobilenet_v3_small", path, minimalistic=True)
    copy = kit("mobilenet_v3_small", saved(source, tmp_path, "kit"), include_top=False, minimalistic=True)
    assert copy.pretrained["initialized"] == []
    for name in copy.pretrained["loaded"]:
        for mine, theirs in zip(copy.get_layer(name).get_weights(), source.get_layer(name).get_weights()):
            np.testing.assert_array_equal(mine, theirs)


def _offline(fname, origin, **kwargs):
    raise Exception(f"URL fetch failure on {origin}: None -- [Errno -3] Temporary failure in name resolution")


def test_imagenet_offline_names_the_file_and_its_url(monkeypatch):
    monkeypatch.setattr(keras.utils, "get_file", _offline)
    with pytest.raises(OSError) as error:
        mobilenet_v2((96, 96, 3), alpha=0.35, include_top=False, weights="imagenet")
    message = str(error.value)
    assert "\n" not in message and "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5" in message
    assert "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/" in message
    with pytest.raises(ValueError, match="alpha 0.75, 1.0, 1.0 minimalistic; got alpha=0.5"):
        mobilenet_v3_large((64, 64, 3), alpha=0.5, weights="imagenet")


def test_imagenet_loads_the_file_of_the_keras_cache(monkeypatch, tmp_path, v2_file):
    monkeypatch.setattr(keras.utils, "get_file", functools.partial(keras.utils.get_file, cache_dir=str(tmp_path)))
    (tmp_path / "models").mkdir()
    shutil.copy(v2_file, tmp_path / "models" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96.h5")
    model = kit("mobilenet_v2_0.35", "imagenet")
    assert model.pretrained["source"] == "imagenet" and model.pretrained["initialized"] == []
    x = images("mobilenet_v2_0.35")
    np.testing.assert_allclose(model(x).numpy(), kit("mobilenet_v2_0.35", v2_file)(x).numpy(), rtol=0, atol=0)


@pytest.fixture(scope="module")
def backbone_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("backbones")
    v2 = keras.applications.MobileNetV2(input_shape=(64, 64, 3), alpha=0.35, include_top=False, weights=None)
    v3 = keras.applications.MobileNetV3Small(input_shape=(64, 64, 3), include_top=False, weights=None,
                                             include_preprocessing=False)
    return {"mobilenet_v2": saved(randomize(v2), folder, "v2"),
            "mobilenet_v3_small": saved(randomize(v3), folder, "v3")}


@pytest.mark.parametrize("make, arch, head_layer", [
    (lambda w: ssdlite("mobilenet_v2", (64, 64, 3), alpha=0.35, classes=3, backbone_weights=w), "mobilenet_v2",
     "box_level0"),
    (lambda w: lr_aspp((64, 64, 3), 3, backbone="mobilenet_v3_small", channels=16, backbone_weights=w),
     "mobilenet_v3_small", "lraspp_high"),
    (lambda w: mobile_deeplabv3((64, 64, 3), 3, alpha=0.35, backbone_weights=w), "mobilenet_v2", "aspp_1x1"),
])
def test_heads_load_their_backbone_weights(backbone_files, make, arch, head_layer):
    path = backbone_files[arch]
    model = make(path)
    report = model.pretrained
    assert report["source"] == path and head_layer in report["initialized"] and "block1_expand" in report["loaded"]
    assert not any(name.startswith("block") or name.startswith("stem") for name in report["initialized"])
    layers = {layer.name: layer for layer in weighted_layers(model)}
    arrays = read_weights(path, kit_backbone(arch), arch)
    for name in report["loaded"]:
        for weight, array in zip(layers[name].get_weights(), arrays[name]):
            np.testing.assert_array_equal(weight, array)
    assert make(None).pretrained is None


def kit_backbone(arch):
    from models.registry import build
    return build(arch, input_shape=(64, 64, 3), alpha=0.35 if arch == "mobilenet_v2" else 1.0, include_top=False)


def test_build_model_passes_weights_and_keeps_the_report(v2_file, backbone_files):
    model = build_model({"arch": "mobilenet_v2", "image_size": 96, "classes": 4, "alpha": 0.35, "weights": v2_file})
    assert model.pretrained["initialized"] == ["predictions"] and model.layers[-1].pretrained == model.pretrained
    detector = build_model({"arch": "ssdlite", "image_size": 64, "classes": 2, "alpha": 0.35,
                            "weights": backbone_files["mobilenet_v2"]})
    assert "block16_project" in detector.pretrained["loaded"]
    assert build_model({"arch": "resnet20", "image_size": 32, "classes": 3}).pretrained is None
    # A top of the same shape (the file's 1,000 classes) is not kept either: fine-tuning starts a new classifier.
    same = build_model({"arch": "mobilenet_v2", "image_size": 96, "classes": 1000, "alpha": 0.35, "weights": v2_file})
    assert same.pretrained["initialized"] == ["predictions"]
    file_kernel = read_weights(v2_file, same.layers[-1], "mobilenet_v2")["predictions"][0]
    kernel = same.layers[-1].get_layer("predictions").get_weights()[0]
    assert kernel.shape == file_kernel.shape and not np.allclose(kernel, file_kernel)
    np.testing.assert_array_equal(same.layers[-1].get_layer("head").get_weights()[0],
                                  read_weights(v2_file, same.layers[-1], "mobilenet_v2")["head"][0].reshape(
                                      same.layers[-1].get_layer("head").get_weights()[0].shape))


@pytest.mark.parametrize("mode, application", [("tf", "mobilenet_v2"), ("caffe", "resnet50"), ("torch", "densenet")])
def test_preprocessing_modes_equal_keras_applications(mode, application):
    identity = keras.Model(*(lambda x: (x, x))(keras.Input((8, 8, 3))))
    pixels = np.random.default_rng(0).uniform(0, 255, (4, 8, 8, 3)).astype(np.float32)
    expected = getattr(keras.applications, application).preprocess_input(pixels.copy())
    np.testing.assert_allclose(with_preprocessing(identity, mode)(pixels).numpy(), expected, rtol=0, atol=2e-6)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["caffe", "torch"])
def test_preprocessing_modes_convert_to_builtins_in_float_and_int8(mode):
    from layer_contract import assert_tflite_matches_keras

    inputs = keras.Input((8, 8, 3))
    backbone = keras.Model(inputs, keras.layers.Conv2D(4, 1, name="probe")(inputs))
    model = with_preprocessing(backbone, mode)
    pixels = np.random.default_rng(0).uniform(0, 255, (32, 8, 8, 3)).astype(np.float32)
    assert_tflite_matches_keras(model, (8, 8, 3), data=pixels)


def test_bad_weights_are_one_line_errors(tmp_path):
    def message(error_type, **kwargs):
        with pytest.raises(error_type) as error:
            mobilenet_v2((32, 32, 3), alpha=0.35, **kwargs)
        assert "\n" not in str(error.value)
        return str(error.value)

    assert "does not exist" in message(ValueError, weights=str(tmp_path / "missing.h5"))
    (tmp_path / "notes.h5").write_text("not weights")
    assert "is not an HDF5 weights file" in message(ValueError, weights=str(tmp_path / "notes.h5"))
    with h5py.File(tmp_path / "other.h5", "w") as file:  # a legacy file of an unrelated layer
        file.attrs["layer_names"] = [b"dense_7"]
        file.create_group("dense_7").attrs["weight_names"] = [b"dense_7/kernel:0"]
        file["dense_7"]["dense_7/kernel:0"] = np.zeros((3, 3), np.float32)
    assert "matches no layer" in message(ValueError, weights=str(tmp_path / "other.h5"))
    assert "weights must be None" in message(ValueError, weights=3)
    with pytest.raises(ValueError, match=f"ghostnet has no pretrained weights: .*{', '.join(FAMILIES)}"):
        ghostnet((32, 32, 3), weights="imagenet")
