"""G-GhostNet on RegNetX: the authors' parameter and MAC counts, the table driving the network,
forward pass and serialization (the layer's TFLite test converts a G-Ghost stage)."""
import numpy as np
import pytest

import layer_contract
from keras_layers.g_ghost import GGhostCheapMix
from keras_layers.keras_api import keras
from models import profile
from models.g_ghostnet import G_GHOST_REGNETX_3_2GF, Stage, g_ghostnet

SMALL = (Stage(1, 16, 8, False), Stage(4, 32, 8, True))  # r = floor(32 * 0.5 / 6) * 6 = 12


@pytest.fixture(autouse=True)
def seeded():
    keras.utils.set_random_seed(1)


def test_g_ghost_regnetx_3_2gf_has_the_authors_counts_and_follows_its_table():
    """G-Ghost-RegNetX-3.2GF at 224x224, 1000 classes: 10.5M parameters, 1.8B FLOPs (multiply-adds)."""
    model = g_ghostnet()
    cost = profile(model)
    assert cost["params"] == pytest.approx(10.5e6, rel=0.02)
    assert cost["macs"] == pytest.approx(1.8e9, rel=0.02)
    mixes = [layer for layer in model.layers if isinstance(layer, GGhostCheapMix)]
    assert [mix.name for mix in mixes] == ["stage1_cheap_mix", "stage2_cheap_mix"]
    assert [(mix.intrinsic_channels, mix.ghost_channels) for mix in mixes] == [(72, 120), (216, 216)]
    middle_widths = []
    for stage_id, stage in enumerate(G_GHOST_REGNETX_3_2GF):
        blocks = [layer for layer in model.layers if layer.name.startswith(f"stage{stage_id}_block")
                  and layer.name.endswith("_out")]
        assert len(blocks) == stage.repeats and blocks[-1].output.shape[-1] == stage.channels
        middle_widths.append({block.output.shape[-1] for block in blocks[1:-1]})
    assert middle_widths == [set(), {72}, {216}, set()]  # r = floor(C / 2 / 36) * 36 in the G-Ghost stages
    assert tuple(model.get_layer("stage3_block1_out").output.shape) == (None, 7, 7, 1008)


def test_forward_pass_serialization_and_pooling(tmp_path):
    model = g_ghostnet((32, 32, 3), stages=SMALL, classes=5)
    layer_contract.randomize_batch_norm(model)
    x = layer_contract.random_inputs((32, 32, 3), count=2)
    probabilities = np.asarray(model(x, training=False))
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-5)
    model.save(tmp_path / "g_ghostnet.keras")
    np.testing.assert_allclose(keras.models.load_model(tmp_path / "g_ghostnet.keras")(x, training=False),
                               probabilities, atol=1e-6)
    headless = g_ghostnet((32, 32, 3), stages=SMALL, include_top=False, pooling="avg")
    assert tuple(headless.output.shape) == (None, 32)


@pytest.mark.parametrize("kwargs, message", [
    ({"weights": "imagenet"}, "weights"),
    ({"cheap_ratio": 1.0}, "cheap_ratio"),
    ({"stages": (Stage(2, 32, 8, True),)}, "repeats >= 3"),
    ({"stages": (Stage(3, 8, 8, True),)}, "no intrinsic")])
def test_bad_arguments_get_one_line_errors(kwargs, message):
    with pytest.raises(ValueError, match=message) as error:
        g_ghostnet((32, 32, 3), **kwargs)
    assert "\n" not in str(error.value)
