import numpy as np
import pytest

from keras_layers.keras_api import keras
from models import mobilenet_v2

KERAS_ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)


@pytest.mark.parametrize("size", [224, 96])
@pytest.mark.parametrize("alpha", KERAS_ALPHAS)
def test_parameter_count_equals_keras_applications(alpha, size):
    ours = mobilenet_v2(input_shape=(size, size, 3), alpha=alpha)
    reference = keras.applications.MobileNetV2(input_shape=(size, size, 3), alpha=alpha, weights=None)
    assert ours.count_params() == reference.count_params()
    assert len(ours.trainable_weights) == len(reference.trainable_weights)


@pytest.mark.parametrize("pooling, shape", [(None, (None, 3, 3, 1280)), ("avg", (None, 1280)), ("max", (None, 1280))])
def test_headless_outputs_and_pooling(pooling, shape):
    model = mobilenet_v2(input_shape=(96, 96, 3), include_top=False, pooling=pooling)
    reference = keras.applications.MobileNetV2(input_shape=(96, 96, 3), include_top=False, pooling=pooling,
                                               weights=None)
    assert tuple(model.output.shape) == shape == tuple(reference.output.shape)
    assert model.count_params() == reference.count_params()


def test_forward_pass_is_a_distribution_and_logits_option_works():
    x = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    probabilities = mobilenet_v2(input_shape=(32, 32, 3), alpha=0.35, classes=7)(x, training=False)
    np.testing.assert_allclose(np.sum(probabilities, axis=-1), 1.0, rtol=1e-5)
    logits = mobilenet_v2(input_shape=(32, 32, 3), alpha=0.35, classes=7, classifier_activation=None)
    assert logits.layers[-1].get_config()["activation"] == "linear"


def test_block_table_drives_the_network():
    from models.mobilenet_v2 import MOBILENET_V2

    model = mobilenet_v2(input_shape=(64, 64, 3), alpha=1.0)
    depthwise = [layer for layer in model.layers if isinstance(layer, keras.layers.DepthwiseConv2D)]
    assert len(depthwise) == sum(stage.repeats for stage in MOBILENET_V2) == 17
    adds = [layer for layer in model.layers if isinstance(layer, keras.layers.Add)]
    assert len(adds) == sum(stage.repeats - 1 for stage in MOBILENET_V2) == 10
    strides = [layer.strides[0] for layer in depthwise]
    assert strides.count(2) == 4 and tuple(model.output.shape) == (None, 1000)


@pytest.mark.parametrize("kwargs, message", [
    ({"weights": "imagenet", "alpha": 0.6}, r"mobilenet_v2 has ImageNet weights for alpha 0\.35, .*; got alpha=0\.6"),
    ({"alpha": 0}, "alpha"),
    ({"input_shape": (16, 16, 3)}, "too small"),
    ({"input_shape": (64, 64)}, "input_shape"),
    ({"include_top": False, "pooling": "median"}, "pooling"),
    ({"classes": 0}, "classes"),
])
def test_bad_arguments_get_one_line_errors(kwargs, message):
    with pytest.raises(ValueError, match=message) as error:
        mobilenet_v2(**{"input_shape": (64, 64, 3), **kwargs})
    assert "\n" not in str(error.value)


def test_serialization_round_trip(tmp_path):
    model = mobilenet_v2(input_shape=(32, 32, 3), alpha=0.35, classes=4)
    path = str(tmp_path / "m.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    x = np.random.default_rng(1).uniform(-1, 1, (1, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(restored(x, training=False), model(x, training=False), atol=1e-6)
