"""NumPy/SciPy references for the PIDE layers, shared by the Keras 3 and tf_keras tests: symbols
applied with numpy.fft (periodic) or scipy.fft's DCT-II (neumann), finite differences, and the
weighted Laplacian summed over all pixel pairs of the extended grid (nothing from keras_layers.pide).
Maps are (N, H, W, C); per-channel parameters are (C,) arrays."""
import numpy as np
from scipy import fft


def laplacian_symbol(n, boundary, symbol):
    """1-D eigenvalues in numpy.fft (periodic) or DCT-II (neumann) order: 3-point or spectral."""
    theta = 2 * np.pi * np.fft.fftfreq(n) if boundary == "periodic" else np.pi * np.arange(n) / n
    return 2 - 2 * np.cos(theta) if symbol == "discrete" else theta ** 2


def apply_symbol(x, symbol, boundary):
    """Multiply the spectrum of every channel by ``symbol`` (H, W, C)."""
    if boundary == "periodic":
        return np.real(np.fft.ifft2(np.fft.fft2(x, axes=(1, 2)) * symbol, axes=(1, 2)))
    return fft.idctn(fft.dctn(x, type=2, axes=(1, 2), norm="ortho") * symbol, type=2, axes=(1, 2), norm="ortho")


def fractional(x, exponents, boundary="neumann", symbol="discrete", inverse=False):
    """(-Delta)^s, or with ``inverse`` (-Delta)^-s with the constant mode mapped to 0."""
    grid = laplacian_symbol(x.shape[1], boundary, symbol)[:, None] + laplacian_symbol(x.shape[2], boundary, symbol)
    grid = grid[..., None]
    power = np.where(grid > 1e-12, np.where(grid > 1e-12, grid, 1.0) ** ((-1 if inverse else 1) * exponents), 0.0)
    return apply_symbol(x, power, boundary)


def five_point(x, boundary="neumann"):
    """The 5-point negative Laplacian: reflecting (edge-padded) or periodic (rolled) borders."""
    if boundary == "periodic":
        neighbours = sum(np.roll(x, shift, axis) for shift in (1, -1) for axis in (1, 2))
    else:
        p = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
        neighbours = p[:, :-2, 1:-1] + p[:, 2:, 1:-1] + p[:, 1:-1, :-2] + p[:, 1:-1, 2:]
    return 4 * x - neighbours


def _wrapped_distances(n, period):
    d = np.abs(np.arange(n)[:, None] - np.arange(period)[None, :]) % period
    return np.minimum(d, period - d)


def weighted(x, widths, boundary="neumann"):
    """sum_y w(x - y) (u(x) - u(y)), w(d) = exp(-|d|^2 / (2 l^2)), y over the periodic grid or over
    the map reflected at its borders (period 2H x 2W), distances wrapped on that torus."""
    extended = x
    if boundary == "neumann":
        extended = np.concatenate([x, x[:, ::-1]], axis=1)
        extended = np.concatenate([extended, extended[:, :, ::-1]], axis=2)
    rows, cols = (_wrapped_distances(n, p) for n, p in zip(x.shape[1:3], extended.shape[1:3]))
    squared = rows[:, None, :, None] ** 2 + cols[None, :, None, :] ** 2  # (H, W, PH, PW)
    w = np.exp(-squared[..., None] / (2 * widths ** 2))
    return x * w.sum(axis=(2, 3)) - np.einsum("ijpqc,npqc->nijc", w, extended)


def dense(operator, height, width, channels):
    """The (C, HW, HW) matrices of a per-channel linear map of (N, H, W, C) maps."""
    units = np.repeat(np.eye(height * width).reshape(-1, height, width, 1), channels, axis=-1)
    return np.moveaxis(operator(units).reshape(height * width, height * width, channels), -1, 0).transpose(0, 2, 1)


def residual_step(x, operator, rates):
    """x - (2 r / lambda_max(A)) A x per channel, lambda_max from the dense matrix of A."""
    top = np.linalg.eigvalsh(dense(operator, *x.shape[1:]))[:, -1]
    return x - 2 * rates / top * operator(x)
