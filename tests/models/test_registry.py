"""The registry: one width argument name, each entry's task, and ``build_model`` from a run config."""
import inspect
import json

import numpy as np
import pytest

from models.ghostnet import ghostnet
from models.registry import ARCHITECTURES, TASK_NAMES, architecture, backbones, build, build_model


def test_every_width_multiplier_is_called_alpha():
    for name, entry in ARCHITECTURES.items():
        parameters = inspect.signature(entry.builder).parameters
        assert "width" not in parameters and "width_multiplier" not in parameters, name


def test_ghostnet_alpha_reaches_the_builder():
    """``train --arch ghostnet --alpha 0.5`` built width 1.0 when the builder called it ``width``."""
    config = {"arch": "ghostnet", "image_size": 32, "classes": 10, "alpha": 0.5}
    half = build_model(config)
    assert half.count_params() == ghostnet((32, 32, 3), alpha=0.5, classes=10).count_params()
    assert half.count_params() < build_model({**config, "alpha": 1.0}).count_params()


@pytest.mark.parametrize("name", [n for n, e in ARCHITECTURES.items() if e.task == "segment"])
def test_segmenters_are_registered_as_segmenters_and_give_masks(name):
    """``pide_segmenter`` was registered beside the classifiers."""
    model = build_model({"arch": name, "image_size": 64, "classes": 3})
    assert tuple(model.outputs[0].shape[1:]) == (64, 64, 3)


def test_classifiers_give_class_scores_and_detectors_boxes():
    for name in ("mobilenet_v2", "resnet20", "pide_classifier"):
        assert architecture(name).task == "classify"
        assert tuple(build_model({"arch": name, "image_size": 32, "classes": 7}).outputs[0].shape[1:]) == (7,)
    detector = build_model({"arch": "ssdlite", "image_size": 96, "classes": 2, "backbone": "mobilenet_v2",
                            "alpha": 0.35})
    assert detector.outputs[0].shape[-1] == 4 + 2 + 1
    assert set(TASK_NAMES) == {entry.task for entry in ARCHITECTURES.values()}


def test_build_model_rebuilds_a_run_from_its_json_config():
    config = json.loads(json.dumps({"task": "classify", "arch": "mobilenet_v2_wht", "image_size": 32, "classes": 4,
                                    "alpha": 0.5, "epochs": 3, "data": "digits"}))
    first, second = build_model(config), build_model(config)
    assert first.count_params() == second.count_params() == build(
        "mobilenet_v2_wht", input_shape=(32, 32, 3), classes=4, alpha=0.5).count_params()
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    second.set_weights(first.get_weights())
    np.testing.assert_allclose(first(pixels), second(pixels), atol=1e-6)


def test_backbones_are_the_entries_with_feature_taps():
    assert {"mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small"} <= set(backbones())
    assert "resnet20" not in backbones()


def test_bad_names_and_arguments_are_one_line_errors():
    with pytest.raises(ValueError, match="unknown architecture 'nonet'"):
        build("nonet")
    with pytest.raises(ValueError, match="unknown segment architecture 'resnet20'"):
        architecture("resnet20", "segment")
    with pytest.raises(ValueError, match="resnet20 takes no argument alpha"):
        build("resnet20", alpha=0.5)


@pytest.mark.parametrize("name", backbones())
def test_registered_tap_roles_are_the_ones_the_builder_records(name):
    from models.backbones import feature_tap_names

    entry = architecture(name)
    model = entry.build(input_shape=(64, 64, 3), include_top=False)
    assert set(feature_tap_names(model)) == set(entry.taps)
