import numpy as np
import pytest

import layer_contract
from keras_layers.activations import HardSwish, SqueezeExcite
from keras_layers.keras_api import keras
from models import profile
from models.batch_statistics import calibrate_batch_norm
from models.mobilenet_v3 import MOBILENET_V3_LARGE, MOBILENET_V3_SMALL, mobilenet_v3_large, mobilenet_v3_small

FAMILIES = {"large": (mobilenet_v3_large, keras.applications.MobileNetV3Large),
            "small": (mobilenet_v3_small, keras.applications.MobileNetV3Small)}


@pytest.fixture(autouse=True)
def seeded():
    """Deterministic weights: random networks' int8 error and ReLU kinks vary with the draw."""
    keras.utils.set_random_seed(1)


@pytest.mark.parametrize("minimalistic", [False, True])
@pytest.mark.parametrize("alpha", [0.75, 1.0])
@pytest.mark.parametrize("family", ["large", "small"])
def test_parameter_count_equals_keras_applications(family, alpha, minimalistic):
    ours, theirs = FAMILIES[family]
    model = ours(alpha=alpha, minimalistic=minimalistic)
    reference = theirs(input_shape=(224, 224, 3), alpha=alpha, minimalistic=minimalistic, weights=None,
                       include_preprocessing=False)
    assert model.count_params() == reference.count_params()
    assert len(model.trainable_weights) == len(reference.trainable_weights)
    assert profile(model)["macs"] == profile(reference)["macs"]


@pytest.mark.parametrize("family, alpha, minimalistic, include_top, pooling, shape", [
    ("large", 0.75, False, True, None, (None, 1000)),
    ("large", 1.0, True, False, "avg", (None, 960)),
    ("small", 0.75, True, True, None, (None, 1000)),
    ("small", 1.0, False, False, "max", (None, 576)),
])
def test_small_input_heads_and_pooling_match_keras(family, alpha, minimalistic, include_top, pooling, shape):
    ours, theirs = FAMILIES[family]
    kwargs = {"input_shape": (48, 48, 3), "alpha": alpha, "minimalistic": minimalistic, "include_top": include_top,
              "pooling": pooling}
    model = ours(**kwargs)
    reference = theirs(**kwargs, weights=None, include_preprocessing=False)
    assert tuple(model.output.shape) == shape == tuple(reference.output.shape)
    assert model.count_params() == reference.count_params()


@pytest.mark.parametrize("family, blocks", [("large", MOBILENET_V3_LARGE), ("small", MOBILENET_V3_SMALL)])
def test_block_table_drives_the_network(family, blocks):
    model = FAMILIES[family][0](input_shape=(64, 64, 3))
    depthwise = [layer for layer in model.layers if isinstance(layer, keras.layers.DepthwiseConv2D)]
    assert [layer.kernel_size[0] for layer in depthwise] == [block.kernel for block in blocks]
    assert [layer.strides[0] for layer in depthwise] == [block.stride for block in blocks]
    squeeze = [layer for layer in model.layers if isinstance(layer, SqueezeExcite)]
    assert len(squeeze) == sum(block.se for block in blocks)
    assert any(isinstance(layer, HardSwish) for layer in model.layers)
    minimal = FAMILIES[family][0](input_shape=(64, 64, 3), minimalistic=True)
    assert not any(isinstance(layer, (HardSwish, SqueezeExcite)) for layer in minimal.layers)
    assert {layer.kernel_size[0] for layer in minimal.layers if isinstance(layer, keras.layers.DepthwiseConv2D)} == {3}


def test_forward_pass_is_a_distribution_and_logits_option_works():
    x = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    probabilities = mobilenet_v3_small(input_shape=(32, 32, 3), alpha=0.75, classes=7)(x, training=False)
    np.testing.assert_allclose(np.sum(probabilities, axis=-1), 1.0, rtol=1e-5)
    logits = mobilenet_v3_large(input_shape=(32, 32, 3), classes=7, classifier_activation=None, dropout_rate=0)
    assert logits.layers[-1].get_config()["activation"] == "linear"
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in logits.layers)


@pytest.mark.parametrize("kwargs, message", [
    ({"weights": "imagenet", "alpha": 0.5}, "mobilenet_v3_small has ImageNet weights for alpha 0.75, 1.0"),
    ({"weights": "imagenet", "alpha": 0.75, "minimalistic": True}, "got alpha=0.75 minimalistic"),
    ({"input_shape": (16, 16, 3)}, "too small"),
    ({"include_top": False, "pooling": "median"}, "pooling"),
])
def test_bad_arguments_get_one_line_errors(kwargs, message):
    with pytest.raises(ValueError, match=message) as error:
        mobilenet_v3_small(**{"input_shape": (64, 64, 3), **kwargs})
    assert "\n" not in str(error.value)


def test_serialization_round_trip(tmp_path):
    model = mobilenet_v3_small(input_shape=(32, 32, 3), alpha=0.75, classes=4)
    path = str(tmp_path / "v3.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    x = np.random.default_rng(1).uniform(-1, 1, (1, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(restored(x, training=False), model(x, training=False), atol=1e-6)


def test_small_instance_converts_to_builtin_tflite_fp32_and_int8():
    """The first four rows of Small (ReLU and hard-swish, squeeze-excite, strides, a residual);
    deeper random networks lose int8 precision for reasons that are not the layers'."""
    model = mobilenet_v3_small(input_shape=(32, 32, 3), alpha=0.75, classes=5, dropout_rate=0,
                               classifier_activation=None, blocks=MOBILENET_V3_SMALL[:4])
    calibrate_batch_norm(model, layer_contract.random_inputs((32, 32, 3), count=32, seed=2))
    layer_contract.assert_tflite_matches_keras(model, (32, 32, 3))
