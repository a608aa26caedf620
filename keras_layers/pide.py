"""Nonlocal PIDE layers (Bohn, Griebel, Kannan: "Deep Neural Networks and PIDE discretizations",
SIAM J. Math. Data Sci. 2022, arXiv:2108.02430): the global weighted Laplacian, the fractional
Laplacian (-Delta)^s and the inverse fractional Laplacian (-Delta)^-s, each acting on every
channel over the whole feature map, which gives a layer a global field of view.

Residual form. With ``residual=True`` (the default) a layer is one explicit Euler step of the
nonlocal diffusion equation du/dt = -A u, channel by channel,

    y = x - tau_c A_c x,        tau_c = 2 r_c / lambda_max(A_c),   r_c = sigmoid(rho_c) in (0, 1),

where A_c is the channel's operator and r_c a trainable rate. A_c is symmetric positive
semi-definite, so the step's eigenvalues 1 - 2 r_c a / a_max lie in (-1, 1]: the block is
non-expansive (||y|| <= ||x||) whatever the weights, the stability the paper asks of forward
propagation, and keeps each channel's mean (the zero mode). ``residual=False`` returns A x.

Discretization. Pixels are unit-spaced grid points; along an axis of n pixels the 1-D negative
Laplacian has a real orthonormal eigenbasis V (n x n, columns v_k) with frequencies theta_k:

    neumann   v_k(j) ~ cos(theta_k (j + 1/2)),  theta_k = pi k / n       (the DCT-II basis)
    periodic  1, cos(theta_k j), sin(theta_k j) [, (-1)^j],  theta_k = 2 pi k / n  (real DFT)

with eigenvalue 2 - 2 cos(theta_k) of the 3-point stencil (``symbol="discrete"``) or theta_k^2
of -d^2/dx^2 on the modes' interpolant (``symbol="spectral"``). The 2-D Laplacian is a
Kronecker sum, L = L_H (x) I + I (x) L_W, so V_H (x) V_W diagonalizes it with eigenvalues
lambda(k1, k2) = lambda_H(k1) + lambda_W(k2), and every function of it is, per channel,

    f(L) x = V_H [ f(lambda) * (V_H^T x V_W) ] V_W^T          (* elementwise),

two matmuls along each spatial axis with constant matrices and one elementwise product:
O(HW(H + W)C) multiply-adds, against O((HW)^2 C) for the dense HW x HW operator. TFLite has
no inverse FFT, but these are FULLY_CONNECTED/TRANSPOSE/MUL builtins, float and int8. ``neumann`` (the
default) reflects the map at its borders; ``periodic`` would couple opposite borders of an
image. The operators, with A(lambda) the symbol on the mode (k1, k2):

    FractionalLaplacian          A = lambda^s, s in (s_min, s_max) per channel: s = 1 is the
                                 5-point (or spectral) Laplacian, s < 1 a nonlocal operator
                                 whose kernel decays like |x - y|^-(2 + 2s).
    InverseFractionalLaplacian   A = lambda^-s on lambda > 0 and 0 on the constant mode
                                 (lambda = 0): the pseudo-inverse, i.e. the Riesz potential
                                 (kernel ~ |x - y|^(2s - 2)) of the mean-free part. The mean
                                 is projected out rather than regularized as (eps + lambda)^-s,
                                 whose 1/eps^s gain on the mean would dominate the layer.
    GlobalWeightedLaplacian      A u(x) = sum_y w(x - y) (u(x) - u(y)) over all pixels y, with
                                 the Gaussian weight w(d) = exp(-|d|^2 / (2 l_c^2)) of trainable
                                 width l_c per channel. On the reflected (neumann, period 2n)
                                 or periodic grid the weight is a symmetric convolution, so
                                 the same basis diagonalizes it: with G(theta) =
                                 sum_d exp(-d^2 / (2 l^2)) cos(theta d) over the offsets d of
                                 the periodic extension, A = G_H(0) G_W(0) - G_H(t1) G_W(t2).

Exponents and widths are trainable (per channel); symbols are computed from them in ``call``
(constants after conversion), with lambda^s written exp(s log lambda) off the zero mode so
that its gradient w.r.t. s is finite.
"""
import numpy as np
import tensorflow as tf

from keras_layers.keras_api import keras, serializable

BOUNDARIES = ("neumann", "periodic")
SYMBOLS = ("discrete", "spectral")


def eigenbasis(n, boundary="neumann"):
    """Orthonormal eigenbasis (n x n, columns) of the 1-D negative Laplacian on n pixels, and the
    frequency theta_k of each column (see the module docstring)."""
    j = np.arange(n)
    if boundary == "neumann":
        theta = np.pi * j / n
        basis = np.sqrt(2.0 / n) * np.cos(np.outer(j + 0.5, theta))
        basis[:, 0] /= np.sqrt(2.0)
        return basis, theta
    columns, theta = [np.full(n, n ** -0.5)], [0.0]
    for k in range(1, (n - 1) // 2 + 1):
        t = 2 * np.pi * k / n
        columns += [np.sqrt(2.0 / n) * np.cos(t * j), np.sqrt(2.0 / n) * np.sin(t * j)]
        theta += [t, t]
    if n % 2 == 0:
        columns.append((-1.0) ** j / np.sqrt(n))
        theta.append(np.pi)
    return np.stack(columns, axis=1), np.array(theta)


def eigenvalues(theta, symbol="discrete"):
    """Eigenvalues of the 1-D negative Laplacian at frequencies ``theta``: 3-point or spectral."""
    return 2.0 - 2.0 * np.cos(theta) if symbol == "discrete" else theta ** 2


def offsets(n, boundary="neumann"):
    """Distances to 0 of the offsets of the periodic extension (period 2n for neumann, else n)."""
    period = 2 * n if boundary == "neumann" else n
    d = np.arange(period)
    return np.minimum(d, period - d).astype(float)


def to_spectrum(x, basis_h, basis_w):
    """Coefficients V_H^T x V_W of every channel of a (N, H, W, C) map, shaped (N, C, W, H).

    Each axis is one FULLY_CONNECTED against a constant basis with the channels moved first, so
    TFLite runs the transform as plain matmuls (float and int8); a left-multiplying batched matmul
    runs ~10x slower in int8."""
    _, height, width, channels = x.shape
    t = tf.matmul(tf.reshape(tf.transpose(x, [0, 3, 1, 2]), [-1, width]), basis_w)
    t = tf.transpose(tf.reshape(t, [-1, channels, height, width]), [0, 1, 3, 2])
    return tf.reshape(tf.matmul(tf.reshape(t, [-1, height]), basis_h), [-1, channels, width, height])


def from_spectrum(coefficients, basis_h, basis_w):
    """Inverse of ``to_spectrum``: (N, C, W, H) coefficients -> the (N, H, W, C) map V_H c V_W^T."""
    _, channels, width, height = coefficients.shape
    t = tf.matmul(tf.reshape(coefficients, [-1, height]), basis_h, transpose_b=True)
    t = tf.transpose(tf.reshape(t, [-1, channels, width, height]), [0, 1, 3, 2])
    t = tf.matmul(tf.reshape(t, [-1, width]), basis_w, transpose_b=True)
    return tf.transpose(tf.reshape(t, [-1, channels, height, width]), [0, 2, 3, 1])


def _logit(p):
    return float(np.log(p / (1.0 - p)))


def _check_choice(value, choices, what):
    if value not in choices:
        raise ValueError(f"{what} must be one of {', '.join(choices)}, got {value!r}")


class _SpectralOperator(keras.layers.Layer):
    """A per-channel function of the grid Laplacian applied in its eigenbasis (module docstring).

    Subclasses add their weights in ``_build_weights(channels)`` and return the operator's
    symbol, shaped (H, W, C), from ``_symbol()``.
    """

    def __init__(self, rate=0.25, residual=True, boundary="neumann", **kwargs):
        super().__init__(**kwargs)
        if not 0.0 < rate < 1.0:
            raise ValueError(f"{type(self).__name__} rate must be in (0, 1), got {rate}")
        _check_choice(boundary, BOUNDARIES, f"{type(self).__name__} boundary")
        self.rate, self.residual, self.boundary = float(rate), bool(residual), boundary

    def build(self, input_shape):
        if len(input_shape) != 4 or None in tuple(input_shape[1:]):
            raise ValueError(f"{type(self).__name__} needs inputs (batch, height, width, channels) with known "
                             f"height, width and channels, got {tuple(input_shape)}")
        self.height, self.width, self.channels = (int(d) for d in input_shape[1:])
        (self.basis_h, self.theta_h), (self.basis_w, self.theta_w) = (
            eigenbasis(n, self.boundary) for n in (self.height, self.width))
        if self.residual:
            self.rate_logit = self.add_weight(name="rate_logit", shape=(self.channels,),
                                              initializer=keras.initializers.Constant(_logit(self.rate)))
        self._build_weights(self.channels)
        super().build(input_shape)

    def _constant(self, array):
        return tf.constant(array, dtype=self.compute_dtype)

    def _full(self, array):
        """``array`` broadcast to (H, W, C) as a constant. The TFLite converter does not fold an op
        whose result is over twice the size of its operands (a broadcast), so symbols are built
        from full-size constants: then they fold into one constant and cost nothing at inference."""
        return self._constant(np.broadcast_to(array, (self.height, self.width, self.channels)))

    def call(self, inputs):
        symbol = self._symbol()
        if self.residual:
            step = 2.0 * tf.sigmoid(self.rate_logit) / tf.reduce_max(symbol, axis=(0, 1))
            symbol = 1.0 - step * symbol
        basis_h, basis_w = self._constant(self.basis_h), self._constant(self.basis_w)
        coefficients = to_spectrum(inputs, basis_h, basis_w) * tf.transpose(symbol, [2, 1, 0])
        return from_spectrum(coefficients, basis_h, basis_w)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def count_macs(self):
        """Four n x n basis matmuls (two per axis) and the spectral product: HWC (2H + 2W + 1)."""
        return self.height * self.width * self.channels * (2 * self.height + 2 * self.width + 1)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "residual": self.residual, "boundary": self.boundary}


class _FractionalPower(_SpectralOperator):
    """lambda^(sign * s) off the zero mode, 0 on it, with s = s_min + (s_max - s_min) sigmoid(e_c)."""

    sign = 1.0

    def __init__(self, exponent=0.5, exponent_range=(0.0, 1.0), symbol="discrete", **kwargs):
        super().__init__(**kwargs)
        low, high = (float(v) for v in exponent_range)
        if not 0.0 <= low < exponent < high:
            raise ValueError(f"{type(self).__name__} needs 0 <= exponent_range[0] < exponent < exponent_range[1], "
                             f"got exponent {exponent} and range {tuple(exponent_range)}")
        _check_choice(symbol, SYMBOLS, f"{type(self).__name__} symbol")
        self.exponent, self.exponent_range, self.symbol = float(exponent), (low, high), symbol

    def _build_weights(self, channels):
        low, high = self.exponent_range
        self.exponent_logit = self.add_weight(
            name="exponent_logit", shape=(channels,),
            initializer=keras.initializers.Constant(_logit((self.exponent - low) / (high - low))))

    def exponents(self):
        """The per-channel exponents s, in (s_min, s_max)."""
        low, high = self.exponent_range
        return low + (high - low) * tf.sigmoid(self.exponent_logit)

    def _symbol(self):
        grid = (eigenvalues(self.theta_h, self.symbol)[:, None] + eigenvalues(self.theta_w, self.symbol)[None, :])
        nonzero = grid > 1e-12
        log_grid = self._full(np.log(np.where(nonzero, grid, 1.0))[..., None])
        return tf.exp(self.sign * self.exponents() * log_grid) * self._full(nonzero[..., None])

    def get_config(self):
        return {**super().get_config(), "exponent": self.exponent, "exponent_range": list(self.exponent_range),
                "symbol": self.symbol}


@serializable
class FractionalLaplacian(_FractionalPower):
    """The fractional Laplacian (-Delta)^s with a trainable exponent per channel.

    Args:
        exponent: initial s of every channel, inside ``exponent_range``.
        exponent_range: (s_min, s_max); s = s_min + (s_max - s_min) sigmoid(e) stays inside.
        symbol: ``discrete`` (powers of the 5-point Laplacian) or ``spectral`` (of |xi|^2).
        rate: initial r of the residual step y = x - (2 r / max A) A x (module docstring).
        residual: return the residual step (True) or A x.
        boundary: ``neumann`` (DCT basis, reflecting borders) or ``periodic`` (real DFT basis).
    """


@serializable
class InverseFractionalLaplacian(_FractionalPower):
    """The inverse fractional Laplacian (-Delta)^-s on mean-free maps (the constant mode is
    projected out: its symbol is 0), with a trainable exponent per channel.

    Arguments as ``FractionalLaplacian``; ``residual=False`` returns (-Delta)^-s (x - mean x).
    """

    sign = -1.0


@serializable
class GlobalWeightedLaplacian(_SpectralOperator):
    """The global weighted Laplacian A u(x) = sum_y w_c(x - y) (u(x) - u(y)) over all pixels y,
    w_c(d) = exp(-|d|^2 / (2 l_c^2)) with a trainable width l_c per channel.

    Args:
        width: initial l (pixels) of every channel, > 0; stored as log l.
        rate, residual, boundary: as ``FractionalLaplacian``.
    """

    def __init__(self, width=4.0, **kwargs):
        super().__init__(**kwargs)
        if not width > 0:
            raise ValueError(f"GlobalWeightedLaplacian width must be > 0, got {width}")
        self.width_init = float(width)

    def _build_weights(self, channels):
        self.log_width = self.add_weight(name="log_width", shape=(channels,),
                                         initializer=keras.initializers.Constant(np.log(self.width_init)))

    def widths(self):
        """The per-channel Gaussian widths l (pixels)."""
        return tf.exp(self.log_width)

    def _axis_symbol(self, n, theta):
        """G(theta_k) = sum_d exp(-d^2 / (2 l_c^2)) cos(theta_k d), shaped (n, C)."""
        distance = offsets(n, self.boundary)
        squared = np.broadcast_to(distance[:, None] ** 2, (len(distance), self.channels))  # full size: see _full
        weights = tf.exp(-self._constant(squared) / (2.0 * tf.square(self.widths())))
        return tf.matmul(self._constant(np.cos(np.outer(theta, distance))), weights)

    def _symbol(self):
        along_h, along_w = self._axis_symbol(self.height, self.theta_h), self._axis_symbol(self.width, self.theta_w)
        return along_h[0] * along_w[0] - along_h[:, None] * self._full(1.0) * along_w[None, :]

    def get_config(self):
        return {**super().get_config(), "width": self.width_init}
