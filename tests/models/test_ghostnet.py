import numpy as np
import pytest

from keras_layers.activations import SqueezeExcite
from keras_layers.ghost import GhostBottleneck
from keras_layers.keras_api import keras
from models import profile
from models.ghostnet import GHOSTNET, ghostnet


# The GhostNet paper's ImageNet comparison (224x224): width multiplier, parameters, FLOPs (multiply-adds).
@pytest.mark.parametrize("alpha, params, macs", [(1.0, 5.2e6, 141e6), (0.5, 2.6e6, 42e6), (1.3, 7.3e6, 226e6)])
def test_profile_within_two_percent_of_the_paper(alpha, params, macs):
    cost = profile(ghostnet(alpha=alpha))
    assert cost["params"] == pytest.approx(params, rel=0.02)
    assert cost["macs"] == pytest.approx(macs, rel=0.02)


def test_table_drives_the_network():
    model = ghostnet(input_shape=(64, 64, 3))
    blocks = [layer for layer in model.layers if isinstance(layer, GhostBottleneck)]
    assert [(b.kernel_size, b.strides) for b in blocks] == [(row.kernel, row.stride) for row in GHOSTNET]
    assert [(b.mid_channels, b.filters) for b in blocks] == [(row.expanded, row.channels) for row in GHOSTNET]
    assert [any(isinstance(sub, SqueezeExcite) for sub in b.main) for b in blocks] == [row.se for row in GHOSTNET]
    assert tuple(model.get_layer("head").output.shape) == (None, 2, 2, 960)


def test_forward_pass_pooling_and_serialization(tmp_path):
    model = ghostnet(input_shape=(32, 32, 3), alpha=0.5, classes=5)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    probabilities = model(x, training=False)
    np.testing.assert_allclose(np.sum(probabilities, axis=-1), 1.0, rtol=1e-5)
    path = str(tmp_path / "ghostnet.keras")
    model.save(path)
    np.testing.assert_allclose(keras.models.load_model(path)(x, training=False), probabilities, atol=1e-6)
    headless = ghostnet(input_shape=(32, 32, 3), alpha=0.5, include_top=False, pooling="max")
    assert tuple(headless.output.shape) == (None, 480)


def test_bad_arguments_get_one_line_errors():
    with pytest.raises(ValueError, match="ghostnet has no pretrained weights: expected weights=None") as error:
        ghostnet(weights="imagenet")
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="alpha") as error:
        ghostnet(alpha=-1.0)
    assert "\n" not in str(error.value)
