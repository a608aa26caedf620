"""MGICBlock and the MGIC network: linear parameter growth, full channel coupling, layer contract."""
import numpy as np
import pytest
import tensorflow as tf

import layer_contract
from keras_layers.keras_api import keras
from keras_layers.mgic import MGICBlock
from models import profile
from models.mgic_net import Stage, mgic_net


@pytest.fixture(autouse=True)
def seeded():
    keras.utils.set_random_seed(1)


def params(layer, channels):
    return layer_contract.wrap(layer, (8, 8, channels)).count_params()


def conv_weights(channels, group_size, kernel_size=3):
    """Kernel entries of an MGIC V-cycle, from the paper's hierarchy: per level of c channels in
    groups of g, pre- and post-relaxation k x k (k^2 g c each), restriction 1x1 to c/2 (g c / 2) and
    prolongation back (g c / 2); the coarsest level (c <= g) relaxes with full k x k convolutions."""
    total = 0
    while channels > group_size:
        total += 2 * kernel_size ** 2 * group_size * channels + group_size * channels
        channels //= 2
    return total + 2 * kernel_size ** 2 * channels * channels


def batch_norm_weights(channels, group_size):
    """gamma, beta and the two moving statistics of the batch norm after every convolution."""
    total = 0
    while channels > group_size:
        total += 4 * (channels + channels + channels // 2 + channels)
        channels //= 2
    return total + 4 * 2 * channels


@pytest.mark.parametrize("channels", [32, 64])
def test_doubling_the_width_about_doubles_the_parameters(channels):
    for width in (channels, 2 * channels):
        assert params(MGICBlock(8), width) == conv_weights(width, 8) + batch_norm_weights(width, 8)
    mgic = params(MGICBlock(8), 2 * channels) / params(MGICBlock(8), channels)
    assert 2.0 < mgic <= 2.2  # a standard 3x3 convolution: 4 times (9 (2C)^2 against 9 C^2)


def test_levels_halve_the_channels_down_to_one_full_group():
    layer = MGICBlock(4)
    layer_contract.wrap(layer, (6, 6, 32))
    assert [pre[0].filters for pre, *_ in layer.levels] == [32, 16, 8, 4]
    assert [pre[0].groups for pre, *_ in layer.levels] == [8, 4, 2, 1]
    assert not layer.levels[-1][2]  # the coarsest level has no restriction


def test_every_output_channel_depends_on_every_input_channel():
    """Full coupling: the grouped convolutions alone would couple only channels of one group."""
    layer = MGICBlock(4)
    x = tf.constant(layer_contract.random_inputs((3, 3, 16), count=1))
    layer(x)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = tf.reduce_sum(layer(x, training=False), axis=(0, 1, 2))
    coupling = np.abs(tape.jacobian(y, x, experimental_use_pfor=False).numpy()).sum(axis=(1, 2, 3))  # (out, in)
    assert (coupling > 1e-6).all()
    first_level_only = np.abs(layer.levels[0][0][0].kernel.numpy()).sum(axis=(0, 1))  # (4 in, 16 out)
    assert first_level_only.shape == (4, 16)


def test_count_macs_matches_profile_of_the_network():
    model = mgic_net(stages=(Stage(16, 1, 1), Stage(32, 1, 2)), classes=10)
    blocks = [layer for layer in model.layers if isinstance(layer, MGICBlock)]
    cost = profile(model)
    # Every convolution of a block keeps the map size (stride 1, "same"): pixels times kernel entries.
    assert [cost["layers"][block.name] for block in blocks] == [block.count_macs() for block in blocks] == [
        32 * 32 * conv_weights(16, 8), 16 * 16 * conv_weights(32, 8)]
    conv_block = 32 * 32 * 9 * 16 * 16 * 2  # a standard residual block of two 3x3 convolutions, 16 channels
    assert blocks[0].count_macs() < conv_block


def test_mgic_network_params_grow_linearly_with_width():
    narrow, wide = mgic_net(alpha=1), mgic_net(alpha=2)
    assert wide.output_shape == (None, 10)
    assert wide.count_params() / narrow.count_params() <= 2.2


MAKERS = {
    "g4": lambda dtype=None: MGICBlock(4, dtype=dtype, name="mgic"),
    "g2": lambda dtype=None: MGICBlock(2, dtype=dtype, name="mgic_g2"),
    "g2_k1": lambda dtype=None: MGICBlock(2, kernel_size=1, dtype=dtype, name="mgic_pointwise"),
}


@pytest.mark.parametrize("kind", ["g2", "g2_k1"])
def test_gradients_match_finite_differences(kind):
    layer_contract.assert_gradients_match_finite_differences(MAKERS[kind], (2, 2, 4), delta=1e-6, atol=1e-4)


@pytest.mark.parametrize("kind", MAKERS)
def test_serialization_round_trip(kind, tmp_path):
    layer = MAKERS[kind]()
    layer_contract.wrap(layer, (6, 6, 8))
    rng = np.random.default_rng(0)
    for weight in layer.weights:
        if "moving_variance" in weight.name:
            weight.assign(rng.uniform(0.5, 1.5, weight.shape))
    layer_contract.assert_serialization_round_trip(layer, (6, 6, 8), tmp_path, atol=1e-5)


def test_tflite_fp32_and_int8_match_keras():
    layer_contract.assert_tflite_matches_keras(layer_contract.wrap(MAKERS["g4"](), (6, 6, 16)), (6, 6, 16),
                                               samples=16)


@pytest.mark.parametrize("call, message", [
    (lambda: MGICBlock(3), "group_size"),
    (lambda: layer_contract.wrap(MGICBlock(8), (6, 6, 24)), "group_size \\* 2\\^L"),
    (lambda: mgic_net(alpha=3), "power of 2"),
    (lambda: mgic_net(alpha=1.5), "power of 2")])
def test_bad_arguments_get_one_line_errors(call, message):
    with pytest.raises(ValueError, match=message) as error:
        call()
    assert "\n" not in str(error.value)
