import numpy as np
import pytest
import tensorflow as tf

import layer_contract
from keras_layers.keras_api import keras
from keras_layers.poke import DPReLU, PokeConv, ReshapeShortcut, reshape_shortcut
from models import profile

SHAPE = (6, 6, 8)


@pytest.fixture(autouse=True)
def seeded():
    keras.utils.set_random_seed(2)


def off_zero(shape, count, seed=4):
    return layer_contract.off_zero_inputs(shape, count, seed)


def np_avg_pool_3x3_s2(x):
    """3x3 windows at stride 2, TensorFlow's 'same' split, averaging only the pixels inside."""
    n, h, w, c = x.shape
    out_h, out_w = -(-h // 2), -(-w // 2)
    pad_h, pad_w = max((out_h - 1) * 2 + 3 - h, 0) // 2, max((out_w - 1) * 2 + 3 - w, 0) // 2
    out = np.zeros((n, out_h, out_w, c))
    for i in range(out_h):
        for j in range(out_w):
            rows = slice(max(2 * i - pad_h, 0), min(2 * i - pad_h + 3, h))
            cols = slice(max(2 * j - pad_w, 0), min(2 * j - pad_w + 3, w))
            out[:, i, j] = x[:, rows, cols].mean(axis=(1, 2))
    return out


def np_dprelu(x, layer):
    bx, by, pos, neg = (w.numpy() for w in (layer.bias_x, layer.bias_y, layer.pos_slope, layer.neg_slope))
    shifted = x - bx
    return np.where(shifted >= 0, pos, neg) * shifted - by


def test_dprelu_is_a_prelu_with_shifted_origins_initialized_as_prelu_025():
    layer = DPReLU()
    x = layer_contract.random_inputs((3, 5), count=2)
    np.testing.assert_allclose(layer(x).numpy(), np.where(x >= 0, x, 0.25 * x), rtol=1e-6)
    rng = np.random.default_rng(0)
    for weight in layer.weights:
        weight.assign(rng.normal(0.5, 0.3, weight.shape))
    np.testing.assert_allclose(layer(x).numpy(), np_dprelu(x, layer), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("channels, strides, expand", [(4, 1, "zeropad"), (3, 2, "zeropad"), (12, 1, "zeropad"),
                                                        (20, 2, "tile"), (8, 2, "tile")])
def test_reshape_shortcut_averages_pads_or_tiles_channels_and_pools(channels, strides, expand):
    x = layer_contract.random_inputs(SHAPE, count=2).astype(np.float64)
    if channels < 8:
        group = 8 // channels
        expected = x[..., :channels * group].reshape(2, 6, 6, channels, group).mean(-1)
    elif expand == "zeropad":
        expected = np.concatenate([x, np.zeros((2, 6, 6, channels - 8))], -1)
    else:
        expected = np.concatenate([x] * 3, -1)[..., :channels]
    if strides == 2:
        expected = np_avg_pool_3x3_s2(expected)
    np.testing.assert_allclose(reshape_shortcut(tf.constant(x), channels, strides, expand).numpy(), expected,
                               rtol=1e-6, atol=1e-12)


def test_poke_conv_matches_its_formula():
    """BN(sign-conv) + zero-padded local shortcut + tiled block shortcut -> DPReLU -> times the
    4-bit hard-sigmoid SE gate of x -> BN, recomputed from the weights with numpy."""
    layer = PokeConv(12, 3, block_strides=2, zero_gamma=True)
    x = layer_contract.random_inputs((4, 4, 8), count=2)
    block = layer_contract.random_inputs((8, 8, 8), count=2, seed=3)
    layer([x, block])
    layer_contract.randomize_batch_norm(layer)
    y = layer([x, block], training=False).numpy()

    def bn(values, norm):
        gamma, beta, mean, variance = (w.numpy() for w in norm.weights)
        return (values - mean) / np.sqrt(variance + norm.epsilon) * gamma + beta

    kernel = layer_contract.sign(layer.conv.kernel.numpy())
    conv = tf.nn.conv2d(layer_contract.sign(x), kernel, 1, "SAME").numpy()
    local = np.concatenate([x, np.zeros((2, 4, 4, 4))], -1)
    long = np_avg_pool_3x3_s2(np.concatenate([block, block[..., :4]], -1))
    z = np_dprelu(bn(conv, layer.bn) + local + long, layer.dprelu)
    squeeze = x.mean(axis=(1, 2))
    se = [(layer.se_reduce.quantized_kernel().numpy()[0, 0], layer.se_reduce.bias.numpy()),
          (layer.se_expand.quantized_kernel().numpy()[0, 0], layer.se_expand.bias.numpy())]
    hidden = np.maximum(squeeze @ se[0][0] + se[0][1], 0)
    gate = np.clip(hidden @ se[1][0] + se[1][1] + 3, 0, 6) / 6
    np.testing.assert_allclose(y, bn(z * gate[:, None, None], layer.bn_split), rtol=1e-4, atol=1e-4)


def test_zero_gamma_unit_starts_as_its_shortcuts():
    layer = PokeConv(8, 3, zero_gamma=True)
    x = layer_contract.random_inputs(SHAPE, count=2)
    layer(x)
    assert np.all(layer.bn.gamma.numpy() == 0)
    gate = layer.se_expand(tf.nn.relu(layer.se_reduce(tf.reduce_mean(x, axis=(1, 2), keepdims=True))))
    expected = np.where(x >= 0, x, 0.25 * x) * (tf.nn.relu6(gate + 3.0) / 6.0).numpy()
    np.testing.assert_allclose(layer(x, training=False).numpy(), expected / np.sqrt(1 + 1e-5), rtol=1e-4, atol=1e-5)


def float_poke(dtype=None):
    return PokeConv(4, 3, strides=2, input_quantizer=None, kernel_quantizer=None, se_kernel_quantizer=None,
                    dtype=dtype, name="poke_float")


def test_float_poke_conv_gradients_match_finite_differences():
    layer_contract.assert_gradients_match_finite_differences(float_poke, (3, 3, 3), delta=1e-6, atol=1e-4)


def test_binary_poke_conv_gets_straight_through_gradients():
    layer = PokeConv(6, 3)
    x = tf.constant(off_zero((4, 4, 5), 2))
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(tf.square(layer(x, training=True)))
    grads = tape.gradient(loss, [x, *layer.trainable_weights])
    assert all(g is not None and np.any(g.numpy() != 0) for g in grads)


def test_costs_by_operand_bits():
    layer = PokeConv(12, 3, strides=2)
    model = layer_contract.wrap(layer, SHAPE)
    binary = 3 * 3 * 9 * 8 * 12
    se = 8 * 1 + 1 * 12
    cost = profile(model)
    assert (cost["macs"], cost["binary_macs"], cost["ace"]) == (binary + se, binary, binary + 32 * 4 * se)
    float_params = 4 * 12 * 2 + 4 * 12  # two batch norms (4 values per channel) and DPReLU
    assert cost["weight_bits"] == binary // 9 + 4 * (8 + 12) + 32 * (1 + 12) + 32 * float_params


@pytest.mark.parametrize("make", [lambda: PokeConv(10, 3, strides=2, name="poke"), lambda: DPReLU(name="dprelu"),
                                  lambda: ReshapeShortcut(12, 2, "tile", name="shortcut"), float_poke])
def test_serialization_round_trip(make, tmp_path):
    layer = make()
    layer_contract.wrap(layer, SHAPE)
    layer_contract.randomize_batch_norm(layer)
    layer_contract.assert_serialization_round_trip(layer, SHAPE, tmp_path, atol=1e-5)


def test_tflite_fp32_and_int8_match_keras():
    inputs = keras.Input(SHAPE)
    model = keras.Model(inputs, PokeConv(12, 3, block_strides=1)([inputs, inputs]))
    layer_contract.randomize_batch_norm(model)
    layer_contract.assert_tflite_matches_keras(model, SHAPE, fp32_atol=1e-5, data=off_zero(SHAPE, 16))


@pytest.mark.parametrize("make, message", [(lambda: PokeConv(8, strides=3), "strides"),
                                           (lambda: PokeConv(8, se_ratio=0), "se_ratio"),
                                           (lambda: ReshapeShortcut(8, expand="repeat"), "expand")])
def test_bad_arguments_get_one_line_errors(make, message):
    with pytest.raises(ValueError, match=message) as error:
        make()
    assert "\n" not in str(error.value)
