"""PIDE layers: Fourier modes as eigenfunctions, independent FFT/DCT/finite-difference/brute-force
references, the stable residual step, gradients (w.r.t. exponents and widths too), layer contract."""
import numpy as np
import pytest
import tensorflow as tf

import layer_contract
import pide_reference as ref
from keras_layers.keras_api import keras
from keras_layers.pide import FractionalLaplacian, GlobalWeightedLaplacian, InverseFractionalLaplacian
from models import profile
from tflite import convert
from tflite.inspect import operator_names

LAYERS = (FractionalLaplacian, InverseFractionalLaplacian, GlobalWeightedLaplacian)
EXPONENTS = np.array([0.15, 0.5, 0.9])
WIDTHS = np.array([0.8, 2.5, 7.0])


def logit(p):
    return np.log(p / (1 - p))


def set_exponents(layer, exponents):
    low, high = layer.exponent_range
    layer.exponent_logit.assign(logit((np.asarray(exponents) - low) / (high - low)))


def configured(layer, x, rates=None):
    """``layer`` built on ``x`` with EXPONENTS or WIDTHS (and ``rates``) as its weights."""
    layer(x)
    if isinstance(layer, GlobalWeightedLaplacian):
        layer.log_width.assign(np.log(WIDTHS[:x.shape[-1]]))
    else:
        set_exponents(layer, EXPONENTS[:x.shape[-1]])
    if rates is not None:
        layer.rate_logit.assign(logit(np.asarray(rates)))
    return layer


def reference(cls, boundary):
    """The NumPy operator of ``cls`` with the weights ``configured`` sets (3 channels)."""
    if cls is GlobalWeightedLaplacian:
        return lambda u: ref.weighted(u, WIDTHS, boundary)
    return lambda u: ref.fractional(u, EXPONENTS, boundary, inverse=cls is InverseFractionalLaplacian)


def grid_mode(height, width, k):
    """sin and cos of 2 pi (k1 i / H + k2 j / W) as two channels, (1, H, W, 2)."""
    i, j = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    phase = 2 * np.pi * (k[0] * i / height + k[1] * j / width)
    return np.stack([np.sin(phase), np.cos(phase)], axis=-1)[None].astype(np.float32)


@pytest.mark.parametrize("symbol", ["spectral", "discrete"])
@pytest.mark.parametrize("k", [(0, 3), (4, 0), (2, 1), (5, 4)])
def test_a_fourier_mode_is_an_eigenfunction(symbol, k):
    """(-Delta)^s e = |xi|^(2s) e for a mode of frequency xi = 2 pi (k1 / H, k2 / W) (pixel units),
    with |xi|^2 the spectral symbol or 4 sin^2(xi_1 / 2) + 4 sin^2(xi_2 / 2), the 5-point one."""
    height, width = 16, 12
    x = grid_mode(height, width, k)
    xi = 2 * np.pi * np.array([k[0] / height, k[1] / width])
    eigenvalue = np.sum(xi ** 2 if symbol == "spectral" else 4 * np.sin(xi / 2) ** 2)
    exponents = np.array([0.3, 0.8])
    for cls, sign in ((FractionalLaplacian, 1), (InverseFractionalLaplacian, -1)):
        layer = cls(symbol=symbol, boundary="periodic", residual=False)
        layer(x)
        set_exponents(layer, exponents)
        np.testing.assert_allclose(np.asarray(layer(x)), eigenvalue ** (sign * exponents) * x, atol=1e-4)


@pytest.mark.parametrize("boundary", ["neumann", "periodic"])
def test_exponent_one_is_the_five_point_laplacian(boundary):
    x = layer_contract.random_inputs((9, 8, 3), count=2)
    layer = FractionalLaplacian(exponent=1.0, exponent_range=(0.5, 1.5), boundary=boundary, residual=False)
    np.testing.assert_allclose(np.asarray(layer(x)), ref.five_point(x, boundary), atol=1e-4)


@pytest.mark.parametrize("cls", [FractionalLaplacian, InverseFractionalLaplacian])
@pytest.mark.parametrize("symbol", ["discrete", "spectral"])
@pytest.mark.parametrize("boundary", ["neumann", "periodic"])
def test_fractional_powers_match_numpy_fft_and_scipy_dct(cls, symbol, boundary):
    x = layer_contract.random_inputs((7, 10, 3), count=2)
    layer = configured(cls(symbol=symbol, boundary=boundary, residual=False), x)
    expected = ref.fractional(x, EXPONENTS, boundary, symbol, inverse=cls is InverseFractionalLaplacian)
    np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("boundary", ["neumann", "periodic"])
def test_inverse_inverts_the_forward_operator_on_mean_free_maps(boundary):
    x = layer_contract.random_inputs((8, 11, 3), count=2, scale=3.0)
    forward = configured(FractionalLaplacian(boundary=boundary, residual=False), x)
    inverse = configured(InverseFractionalLaplacian(boundary=boundary, residual=False), x)
    mean_free = x - x.mean(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(np.asarray(inverse(forward(x))), mean_free, atol=1e-4)
    np.testing.assert_allclose(np.asarray(forward(inverse(x))), mean_free, atol=1e-4)


@pytest.mark.parametrize("boundary", ["neumann", "periodic"])
def test_weighted_laplacian_matches_the_sum_over_all_pixel_pairs(boundary):
    x = layer_contract.random_inputs((6, 7, 3), count=2)
    layer = configured(GlobalWeightedLaplacian(boundary=boundary, residual=False), x)
    np.testing.assert_allclose(np.asarray(layer(x)), ref.weighted(x, WIDTHS, boundary), rtol=1e-4, atol=1e-3)


def test_fractional_laplacian_is_nonlocal_and_the_laplacian_local():
    """A unit impulse in one corner reaches the opposite corner for s < 1, not for s = 1."""
    x = np.zeros((1, 12, 12, 2), np.float32)
    x[0, 0, 0] = 1.0
    layer = FractionalLaplacian(exponent=1.0, exponent_range=(0.0, 2.0), residual=False)
    layer(x)
    set_exponents(layer, [0.5, 1.0])
    far = np.asarray(layer(x))[0, -1, -1]
    assert far[0] < -1e-4 and abs(far[1]) < 1e-6  # the kernel of s < 1 is negative off the diagonal


@pytest.mark.parametrize("cls", LAYERS)
@pytest.mark.parametrize("boundary", ["neumann", "periodic"])
def test_residual_step_is_a_non_expansive_euler_step_that_keeps_the_mean(cls, boundary):
    """y = x - (2 r / lambda_max(A)) A x: symmetric, eigenvalues in (-1, 1], 1 on the mean."""
    rates = np.array([0.05, 0.5, 0.99])
    x = layer_contract.random_inputs((6, 5, 3), count=2)
    layer = configured(cls(boundary=boundary), x, rates)
    np.testing.assert_allclose(np.asarray(layer(x)), ref.residual_step(x, reference(cls, boundary), rates),
                               rtol=1e-4, atol=1e-4)
    matrices = ref.dense(lambda u: np.asarray(layer(u.astype(np.float32))), 6, 5, 3)
    np.testing.assert_allclose(matrices, matrices.transpose(0, 2, 1), atol=1e-5)
    spectra = np.linalg.eigvalsh(matrices)
    assert spectra.min() >= -1 - 1e-5 and spectra.max() <= 1 + 1e-5
    np.testing.assert_allclose(spectra[:, -1], 1.0, atol=1e-5)  # the constant mode
    np.testing.assert_allclose(spectra[:, 0], 1 - 2 * rates, atol=1e-4)  # the operator's top mode


MAKERS = {
    "fractional": lambda dtype=None: FractionalLaplacian(exponent=0.4, dtype=dtype, name="fractional"),
    "inverse_periodic": lambda dtype=None: InverseFractionalLaplacian(boundary="periodic", symbol="spectral",
                                                                      dtype=dtype, name="inverse"),
    "weighted": lambda dtype=None: GlobalWeightedLaplacian(width=1.5, dtype=dtype, name="weighted"),
}


@pytest.mark.parametrize("kind", MAKERS)
def test_gradients_match_finite_differences(kind):
    """Input Jacobian (layer_contract) and directional derivatives w.r.t. every weight (s, r, l)."""
    layer_contract.assert_gradients_match_finite_differences(MAKERS[kind], (4, 5, 2), delta=1e-6, atol=1e-6)
    layer = MAKERS[kind]("float64")
    x = tf.constant(layer_contract.random_inputs((4, 5, 2), count=2).astype(np.float64))
    layer(x)
    loss = lambda: tf.reduce_sum(tf.square(layer(x)))  # noqa: E731
    rng = np.random.default_rng(0)
    for weight in layer.trainable_weights:
        direction = rng.standard_normal(weight.shape)
        with tf.GradientTape() as tape:
            value = loss()
        analytic = float(np.sum(tape.gradient(value, weight).numpy() * direction))
        start = weight.numpy()
        values = []
        for sign in (1, -1):
            weight.assign(start + sign * 1e-6 * direction)
            values.append(float(loss()))
        weight.assign(start)
        assert analytic == pytest.approx((values[0] - values[1]) / 2e-6, rel=1e-5), weight.name


@pytest.mark.parametrize("kind", MAKERS)
def test_serialization_round_trip(kind, tmp_path):
    layer = MAKERS[kind]()
    layer_contract.wrap(layer, (6, 7, 3))
    rng = np.random.default_rng(0)
    layer.set_weights([w + rng.uniform(-0.5, 0.5, w.shape) for w in layer.get_weights()])
    layer_contract.assert_serialization_round_trip(layer, (6, 7, 3), tmp_path, atol=1e-5)


@pytest.mark.parametrize("kind", MAKERS)
def test_tflite_fp32_and_int8_match_keras_with_the_symbol_folded(kind):
    """Builtins only, and no op computes the symbol at inference: it is folded into a constant."""
    shape = (12, 10, 32)  # a (12, 10, 32) symbol is too large for the converter to fold a broadcast
    model = layer_contract.wrap(MAKERS[kind](), shape)
    layer_contract.assert_tflite_matches_keras(model, shape, samples=16)
    ops = operator_names(convert(model, "fp32"))
    assert set(ops) == {"FULLY_CONNECTED", "TRANSPOSE", "MUL", "RESHAPE"}, ops


def test_count_macs_is_four_basis_matmuls_and_the_spectral_product():
    for cls in LAYERS:
        model = layer_contract.wrap(cls(name="pide"), (12, 10, 8))
        assert profile(model)["macs"] == model.layers[-1].count_macs() == 12 * 10 * 8 * (2 * 12 + 2 * 10 + 1)


@pytest.mark.parametrize("call, message", [
    (lambda: FractionalLaplacian(exponent=1.0), "exponent_range"),
    (lambda: InverseFractionalLaplacian(rate=1.0), "rate"),
    (lambda: FractionalLaplacian(symbol="fft"), "symbol"),
    (lambda: GlobalWeightedLaplacian(boundary="dirichlet"), "boundary"),
    (lambda: GlobalWeightedLaplacian(width=0), "width"),
    (lambda: FractionalLaplacian()(keras.Input((None, None, 4))), "known height")])
def test_bad_arguments_get_one_line_errors(call, message):
    with pytest.raises(ValueError, match=message) as error:
        call()
    assert "\n" not in str(error.value)


def test_pide_bench_suite_puts_the_convolution_first_and_the_dense_operator_is_one_map_per_channel():
    from mobilekit.suites import load_suite
    shape = (6, 4, 3)
    entries = dict((label, build()) for label, build in load_suite("pide").candidates(shape))
    assert list(entries)[:2] == ["conv3x3", "dense_global"] and len(entries) == 5
    x = np.random.default_rng(0).standard_normal((2, *shape)).astype(np.float32)
    for model in entries.values():
        assert tuple(model.output.shape) == (None, *shape)
    dense = entries["dense_global"]
    (matrix,) = dense.get_weights()  # (HW in, HW out), x flattened row-major per channel
    expected = np.einsum("npc,pq->nqc", x.reshape(2, -1, 3), matrix).reshape(x.shape)
    np.testing.assert_allclose(np.asarray(dense(x)), expected, atol=1e-5)
    costs = {label: profile(model) for label, model in entries.items()}
    assert costs["dense_global"]["macs"] == 24 * 24 * 3
    assert all(costs[label]["macs"] < costs["dense_global"]["macs"] for label in list(entries)[2:])
