"""FFConv: low-rank factorized convolution, its SVD initialization from a Conv2D, and the layer contract."""
import numpy as np
import pytest

import layer_contract
from keras_layers.ffconv import FFConv, factorize_conv2d
from keras_layers.keras_api import keras
from models import profile

SHAPE = (8, 8, 6)


@pytest.fixture(autouse=True)
def seeded():
    keras.utils.set_random_seed(1)


def trained_conv(filters=12, kernel_size=3, strides=1, padding="same", activation=None):
    inputs = keras.Input(shape=SHAPE)
    conv = keras.layers.Conv2D(filters, kernel_size, strides, padding=padding, activation=activation, name="conv")
    model = keras.Model(inputs, conv(inputs))
    conv.bias.assign(np.random.default_rng(0).normal(size=filters))
    return model, conv


@pytest.mark.parametrize("strides, padding, activation", [(1, "same", None), (2, "valid", "relu")])
def test_full_rank_factorization_is_exact(strides, padding, activation):
    model, conv = trained_conv(strides=strides, padding=padding, activation=activation)
    ffconv, error = factorize_conv2d(conv, rank=12)  # min(3*3*6, 12) = 12
    assert error < 1e-6 and ffconv.rank == 12
    x = layer_contract.random_inputs(SHAPE, count=2)
    np.testing.assert_allclose(np.asarray(ffconv(x)), np.asarray(model(x)), atol=1e-5)


def test_low_rank_error_is_the_relative_frobenius_error_and_decreases_with_rank():
    _, conv = trained_conv(filters=16)
    kernel = np.asarray(conv.kernel.numpy(), np.float64)
    errors = []
    for rank in (2, 4, 8, 16):
        ffconv, error = factorize_conv2d(conv, rank)
        low_rank, restore = (np.asarray(w, np.float64) for w in ffconv.get_weights()[:2])
        approx = low_rank.reshape(-1, rank) @ restore.reshape(rank, -1)
        measured = np.linalg.norm(approx - kernel.reshape(-1, 16)) / np.linalg.norm(kernel)
        assert error == pytest.approx(measured, rel=1e-4, abs=1e-6)
        errors.append(error)
    assert errors == sorted(errors, reverse=True) and errors[0] > 0.3 and errors[-1] < 1e-6


def test_rank_beyond_full_is_capped():
    _, conv = trained_conv(filters=4, kernel_size=1)
    ffconv, error = factorize_conv2d(conv, rank=32)
    assert ffconv.rank == 4 and error < 1e-6


def test_count_macs_matches_profile_and_is_below_the_dense_convolution():
    layer = FFConv(16, 3, rank=4)
    model = layer_contract.wrap(layer, SHAPE)
    assert profile(model)["macs"] == layer.count_macs() == 64 * (9 * 6 + 16) * 4 < 64 * 9 * 6 * 16
    assert model.count_params() == 9 * 6 * 4 + 4 * 16 + 16


MAKERS = {
    "same": lambda dtype=None: FFConv(8, 3, rank=3, dtype=dtype, name="ffconv"),
    "strided": lambda dtype=None: FFConv(8, 3, rank=2, strides=2, padding="valid", use_bias=False,
                                         activation="relu", dtype=dtype, name="ffconv_strided"),
}


@pytest.mark.parametrize("kind", MAKERS)
def test_gradients_match_finite_differences(kind):
    layer_contract.assert_gradients_match_finite_differences(MAKERS[kind], (5, 5, 4), delta=1e-6, atol=1e-4)


@pytest.mark.parametrize("kind", MAKERS)
def test_serialization_round_trip(kind, tmp_path):
    layer_contract.assert_serialization_round_trip(MAKERS[kind](), SHAPE, tmp_path, atol=1e-5)


def test_tflite_fp32_and_int8_match_keras():
    layer_contract.assert_tflite_matches_keras(layer_contract.wrap(MAKERS["same"](), SHAPE), SHAPE, samples=16)


@pytest.mark.parametrize("call, message", [
    (lambda: FFConv(8, 3, rank=0), "rank"),
    (lambda: factorize_conv2d(keras.layers.Dense(3), 2), "Conv2D"),
    (lambda: factorize_conv2d(trained_conv(kernel_size=(3, 1))[1], 2), "square")])
def test_bad_arguments_get_one_line_errors(call, message):
    with pytest.raises(ValueError, match=message) as error:
        call()
    assert "\n" not in str(error.value)
