import numpy as np
import pytest
import tensorflow as tf

import layer_contract
from keras_layers.activations import SqueezeExcite
from keras_layers.ghost import GhostBottleneck, GhostModule
from keras_layers.keras_api import keras
from models import profile

SHAPE = (6, 6, 8)


@pytest.fixture(autouse=True)
def seeded():
    """Deterministic weights: random networks' int8 error and ReLU kinks vary with the draw."""
    keras.utils.set_random_seed(1)




@pytest.mark.parametrize("filters, ratio, intrinsic", [(8, 2, 4), (7, 2, 4), (10, 3, 4), (9, 3, 3)])
def test_ghost_module_makes_ceil_out_over_ratio_intrinsic_maps_and_slices_to_out(filters, ratio, intrinsic):
    layer = GhostModule(filters, ratio=ratio)
    model = layer_contract.wrap(layer, SHAPE)
    assert tuple(model.output.shape) == (None, 6, 6, filters) and layer.intrinsic_channels == intrinsic
    primary, cheap = layer.primary[0], layer.cheap[0]
    assert primary.filters == intrinsic and cheap.depth_multiplier == ratio - 1
    assert layer.count_macs() == 36 * (8 * intrinsic + 9 * intrinsic * (ratio - 1))


@pytest.mark.parametrize("relu", [True, False])
def test_ghost_maps_are_the_cheap_depthwise_conv_of_the_intrinsic_maps(relu):
    """Recomputed from the module's own output with TF ops: the ghost half is
    BN(depthwise_conv(intrinsic half)) (then ReLU), position by position."""
    layer = GhostModule(8, ratio=2, dw_size=3, relu=relu)
    x = tf.constant(layer_contract.random_inputs(SHAPE, count=2))
    layer(x)
    layer_contract.randomize_batch_norm(layer)
    y = layer(x, training=False)
    intrinsic, ghosts = y[..., :4], y[..., 4:]
    kernel = layer.cheap[0].weights[0]
    gamma, beta, mean, variance = layer.cheap[1].weights
    expected = tf.nn.depthwise_conv2d(intrinsic, kernel, [1, 1, 1, 1], "SAME")
    expected = (expected - mean) * gamma / tf.sqrt(variance + layer.cheap[1].epsilon) + beta
    if relu:
        expected = tf.nn.relu(expected)
    np.testing.assert_allclose(ghosts.numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)
    assert not np.allclose(ghosts.numpy(), intrinsic.numpy())


@pytest.mark.parametrize("strides, filters, se, shortcut", [(1, 8, 0, False), (2, 8, 4, True), (1, 12, 4, True)])
def test_ghost_bottleneck_structure_and_macs(strides, filters, se, shortcut):
    layer = GhostBottleneck(16, filters, kernel_size=5, strides=strides, se_channels=se)
    model = layer_contract.wrap(layer, SHAPE)
    size = 6 // strides
    assert tuple(model.output.shape) == (None, size, size, filters)
    assert bool(layer.shortcut) == shortcut
    assert any(isinstance(sub, SqueezeExcite) for sub in layer.main) == bool(se)
    ghost1 = 36 * (8 * 8 + 9 * 8)
    depthwise = size * size * 25 * 16 if strides == 2 else 0
    squeeze = 2 * 16 * se
    ghost2 = size * size * (16 * filters // 2 + 9 * filters // 2)
    skip = size * size * (25 * 8 + 8 * filters) if shortcut else 0
    assert profile(model)["macs"] == layer.count_macs() == ghost1 + depthwise + squeeze + ghost2 + skip


def test_identity_shortcut_adds_the_input():
    layer = GhostBottleneck(16, 8)
    x = layer_contract.random_inputs(SHAPE, count=2)
    layer(x)
    for weight in layer.main[-1].cheap[1].weights[:2] + layer.main[-1].primary[1].weights[:2]:
        weight.assign(tf.zeros_like(weight))  # zero gamma and beta: the main path outputs 0
    np.testing.assert_allclose(np.asarray(layer(x, training=False)), x, atol=1e-6)


MAKERS = {
    "module": lambda dtype=None: GhostModule(6, ratio=3, dw_size=3, dtype=dtype, name="ghost_module"),
    "bneck_s2_se": lambda dtype=None: GhostBottleneck(12, 10, kernel_size=3, strides=2, se_channels=4, dtype=dtype,
                                                      name="ghost_bneck"),
    "bneck_s1": lambda dtype=None: GhostBottleneck(12, 8, dtype=dtype, name="ghost_bneck_identity"),
}


@pytest.mark.parametrize("kind", MAKERS)
def test_gradients_match_finite_differences(kind):
    layer_contract.assert_gradients_match_finite_differences(MAKERS[kind], (4, 4, 8), atol=1e-4)


@pytest.mark.parametrize("kind", MAKERS)
def test_serialization_round_trip(kind, tmp_path):
    layer = MAKERS[kind]()
    layer_contract.wrap(layer, SHAPE)
    layer_contract.randomize_batch_norm(layer)
    layer_contract.assert_serialization_round_trip(layer, SHAPE, tmp_path, atol=1e-5)


@pytest.mark.parametrize("kind", ["module", "bneck_s2_se"])
def test_tflite_fp32_and_int8_match_keras(kind):
    inputs = keras.Input(shape=SHAPE)
    outputs = MAKERS[kind]()(keras.layers.Conv2D(8, 3, padding="same")(inputs))
    layer_contract.assert_tflite_matches_keras(keras.Model(inputs, outputs), SHAPE, samples=16)


@pytest.mark.parametrize("kwargs, message", [({"ratio": 1}, "ratio"), ({"strides": 3}, "strides")])
def test_bad_arguments_get_one_line_errors(kwargs, message):
    with pytest.raises(ValueError, match=message) as error:
        if "ratio" in kwargs:
            GhostModule(8, **kwargs)
        else:
            GhostBottleneck(16, 8, **kwargs)
    assert "\n" not in str(error.value)
