import numpy as np
import pytest

import layer_contract
from keras_layers.keras_api import keras
from models.resnet import RESNET_20, RESNET_50, Stage, resnet, resnet18, resnet20, resnet50, resnet56


def trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_resnet50_parameter_count_equals_keras_applications():
    ours, reference = resnet50(), keras.applications.ResNet50(weights=None)
    assert ours.count_params() == reference.count_params() == 25_636_712
    assert len(ours.trainable_weights) == len(reference.trainable_weights)


@pytest.mark.parametrize("builder, paper_millions, exact", [
    (resnet20, 0.27, 269_722), (resnet56, 0.85, 853_018), (resnet18, 11.69, 11_689_512)])
def test_parameter_counts_match_the_paper(builder, paper_millions, exact):
    model = builder()
    assert trainable(model) == exact and round(trainable(model) / 1e6, 2) == paper_millions


def test_stage_table_drives_the_network():
    model = resnet50(input_shape=(64, 64, 3))
    adds = [layer for layer in model.layers if isinstance(layer, keras.layers.Add)]
    assert len(adds) == sum(stage.repeats for stage in RESNET_50) == 16
    projections = [layer.name for layer in model.layers if layer.name.endswith("_0_conv")]
    assert projections == [f"conv{i}_block1_0_conv" for i in range(2, 6)]
    cifar = resnet20()
    assert len([layer for layer in cifar.layers if isinstance(layer, keras.layers.Conv2D)]) == 19
    assert not any("_0_conv" in layer.name for layer in cifar.layers)  # option A: no projections


def test_option_a_shortcut_subsamples_and_zero_pads_channels():
    model = resnet20()
    shortcut = keras.Model(model.input, [model.get_layer("conv2_block3_out").output,
                                         model.get_layer("conv3_block1_0_to_clast").output])
    x = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    features, padded = (np.asarray(t) for t in shortcut(x, training=False))
    expected = np.pad(features[:, ::2, ::2, :], ((0, 0), (0, 0), (0, 0), (8, 8)))
    np.testing.assert_array_equal(padded, expected)


@pytest.mark.parametrize("pooling, shape", [(None, (None, 2, 2, 2048)), ("avg", (None, 2048)), ("max", (None, 2048))])
def test_headless_outputs_match_keras_applications(pooling, shape):
    ours = resnet50(input_shape=(64, 64, 3), include_top=False, pooling=pooling)
    reference = keras.applications.ResNet50(input_shape=(64, 64, 3), include_top=False, pooling=pooling, weights=None)
    assert tuple(ours.output.shape) == shape == tuple(reference.output.shape)


def test_forward_pass_is_a_distribution():
    x = np.random.default_rng(1).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    probabilities = np.asarray(resnet20(classes=7)(x, training=False))
    assert probabilities.shape == (2, 7)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("kwargs, message", [
    ({"weights": "imagenet"}, "weights"),
    ({"shortcut": "C"}, "shortcut"),
    ({"stages": (Stage("wide", 1, 16, 1),)}, "block kinds"),
    ({"include_top": False, "pooling": "median"}, "pooling"),
])
def test_bad_arguments_get_one_line_errors(kwargs, message):
    with pytest.raises(ValueError, match=message) as error:
        resnet(**{"input_shape": (32, 32, 3), "stages": RESNET_20, "stem": "cifar", **kwargs})
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("stages, shortcut", [
    ((Stage("basic", 1, 8, 1), Stage("basic", 1, 16, 2)), "A"),
    ((Stage("bottleneck", 1, 16, 1), Stage("bottleneck", 1, 32, 2)), "B"),
])
def test_small_instances_convert_to_builtin_tflite(stages, shortcut):
    model = resnet((32, 32, 3), classes=5, classifier_activation=None, stages=stages, stem="cifar",
                   shortcut=shortcut)
    layer_contract.assert_tflite_matches_keras(model, (32, 32, 3), samples=16)


def test_serialization_round_trip(tmp_path):
    model = resnet20(classes=4)
    model.save(str(tmp_path / "r.keras"))
    restored = keras.models.load_model(str(tmp_path / "r.keras"))
    x = np.random.default_rng(2).uniform(-1, 1, (1, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(restored(x, training=False), model(x, training=False), atol=1e-6)
