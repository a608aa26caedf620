"""G-Ghost stage cheap + mix operations: against a NumPy computation, and the layer contract."""
import numpy as np
import pytest
import tensorflow as tf

import layer_contract
from keras_layers.g_ghost import GGhostCheapMix
from keras_layers.keras_api import keras
from models import profile

FIRST, INTRINSIC = (5, 6, 8), 3  # x_0: C = 8 channels; e_i: r = 3, so 5 ghost channels


@pytest.fixture(autouse=True)
def seeded():
    keras.utils.set_random_seed(1)


def stage_model(depth=2):
    """x_0 from a 1x1 conv of the input, then ``depth`` 3x3 convs on its first r channels."""
    inputs = keras.Input(shape=FIRST)
    first = keras.layers.Conv2D(FIRST[-1], 1, name="first")(inputs)
    maps = [first[:, :, :, :INTRINSIC]]
    for i in range(depth):
        maps.append(keras.layers.Conv2D(INTRINSIC, 3, padding="same", name=f"block{i}")(maps[-1]))
    return keras.Model(inputs, GGhostCheapMix(name="cheap_mix")([first, *maps[1:]]))


def batch_norm(x, bn):
    gamma, beta, mean, variance = (np.asarray(w, np.float64) for w in bn.get_weights())
    return (x - mean) * gamma / np.sqrt(variance + bn.epsilon) + beta


def test_output_is_intrinsic_then_relu_of_cheap_plus_mix():
    layer = GGhostCheapMix()
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal((2, 5, 6, c)).astype(np.float32) for c in (8, 3, 3)]
    layer(inputs)
    layer_contract.randomize_batch_norm(layer)
    actual = np.asarray(layer(inputs, training=False))
    first, e1, e2 = (x.astype(np.float64) for x in inputs)
    pooled = np.concatenate([x.mean(axis=(1, 2)) for x in (first, e1, e2)], axis=-1)  # 8 + 3 + 3 values
    w1, w2 = (np.asarray(fc.kernel, np.float64) for fc in (layer.mix[0], layer.mix[2]))
    mixed = batch_norm(np.maximum(batch_norm(pooled @ w1, layer.mix[1]), 0) @ w2, layer.mix[3])
    cheap = batch_norm(first[..., 3:] @ np.asarray(layer.cheap.kernel, np.float64)[0, 0], layer.cheap_bn)
    expected = np.concatenate([e2, np.maximum(cheap + mixed[:, None, None, :], 0)], axis=-1)
    assert actual.shape == (2, 5, 6, 8) and w1.shape == (14, 5)
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)
    assert not np.allclose(actual[..., 3:], 0)  # the ReLU leaves ghosts to compare


def test_macs_are_the_cheap_conv_plus_two_fcs():
    model = stage_model(depth=2)
    layer = model.get_layer("cheap_mix")
    assert layer.count_macs() == 30 * 5 * 5 + 14 * 5 + 5 * 5
    assert profile(model)["layers"]["cheap_mix"] == layer.count_macs()


def test_gradients_match_finite_differences():
    layer = GGhostCheapMix(dtype="float64")
    rng = np.random.default_rng(0)
    inputs = [tf.constant(rng.standard_normal((1, 2, 3, c))) for c in (4, 2)]
    layer(inputs)
    function = tf.function(lambda a, b: layer([a, b]))
    theoretical, numerical = tf.test.compute_gradient(function, inputs, delta=1e-3)
    for analytic, numeric in zip(theoretical, numerical):
        np.testing.assert_allclose(analytic, numeric, atol=1e-4, rtol=1e-3)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(layer(inputs, training=True)))
    assert all(g is not None for g in tape.gradient(loss, layer.trainable_weights))


def test_serialization_round_trip(tmp_path):
    model = stage_model()
    layer_contract.randomize_batch_norm(model)
    x = layer_contract.random_inputs(FIRST, count=2)
    expected = np.asarray(model(x, training=False))
    layer = model.get_layer("cheap_mix")
    assert type(layer).from_config(layer.get_config()).get_config() == layer.get_config()
    model.save(tmp_path / "g_ghost.keras")
    restored = keras.models.load_model(tmp_path / "g_ghost.keras")
    assert isinstance(restored.get_layer("cheap_mix"), GGhostCheapMix)
    np.testing.assert_allclose(np.asarray(restored(x, training=False)), expected, atol=1e-5)


def test_tflite_fp32_and_int8_match_keras():
    model = stage_model()
    layer_contract.randomize_batch_norm(model)
    layer_contract.assert_tflite_matches_keras(model, FIRST, samples=16)


@pytest.mark.parametrize("shapes, message", [
    ([(None, 4, 4, 8)], "list"),
    ([(None, 4, 4, 8), (None, 4, 4, 8)], "r < C"),
    ([(None, 4, 4, 8), (None, 4, 4, 3), (None, 4, 4, 2)], "same r")])
def test_bad_inputs_get_one_line_errors(shapes, message):
    with pytest.raises(ValueError, match=message) as error:
        GGhostCheapMix().build(shapes)
    assert "\n" not in str(error.value)
