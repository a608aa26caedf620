"""Walsh-Hadamard transform layers with smooth thresholding (Pan, Badawi and Cetin, "Fast
Walsh-Hadamard Transform and Smooth-Thresholding Based Binary Layers in Deep Neural Networks",
CVPR Workshops 2021; "Block Walsh-Hadamard Transform Based Binary Layers in Deep Neural
Networks", ACM TECS 2022).

Every layer transforms its input with the binary (+1/-1) orthonormal block WHT W
(``keras_layers.hadamard``), denoises the coefficients with smooth thresholding, a soft
threshold whose sign is replaced by tanh,

    S_T(z) = tanh(z) * max(|z| - |T|, 0)          T trainable, one per coefficient,

and transforms back: y = W^-1 S_T(W x). With ``use_scale`` each coefficient is first multiplied
by a trainable weight v, y = W^-1 S_T(v * W x), which makes the layer a learnable dyadic
(XOR) convolution before the denoising. One threshold per coefficient is what reproduces the
papers' MobileNetV2 counts (2.270M -> 947K -> 540K parameters, ``models.mobilenet_v2``), so
scaling is off by default; the pooling layer, "with trainable weights" in the paper, scales.

Following the papers, ``WHT1D`` (along channels) replaces 1x1 convolutions, ``WHT2D`` (over
height and width, weights shared by all channels) replaces 3x3 convolutions and
squeeze-excite, and ``WHTGlobalPooling2D`` is the trainable 2-D WHT before global average
pooling that helps the dense head. The transforms are additions and subtractions, so
``count_macs`` counts only the coefficient scalings (S_T is an activation, not counted, as in
``models.profile``).
"""
import math

import numpy as np
import tensorflow as tf

from keras_layers.hadamard import (MAX_BLOCK, MAX_DENSE, blocking, check_block_size, forward, inverse, layout,
                                   spatial_forward, spatial_inverse)
from keras_layers.keras_api import keras, serializable

THRESHOLD_INIT = 0.05


def smooth_threshold(x, threshold):
    """S_T(x) = tanh(x) * max(|x| - |T|, 0), written as two fused SUB+RELU (int8 TFLite has no fast ABS)."""
    t = tf.abs(threshold)
    return tf.tanh(x) * (tf.nn.relu(x - t) + tf.nn.relu(-t - x))


def _add_coefficient_weights(layer, shape, use_scale):
    if use_scale:
        layer.scale = layer.add_weight(name="scale", shape=shape, initializer="ones")
    layer.threshold = layer.add_weight(name="threshold", shape=shape,
                                       initializer=keras.initializers.Constant(THRESHOLD_INIT))


@serializable
class SmoothThreshold(keras.layers.Layer):
    """Smooth thresholding S_T(x) = tanh(x) * max(|x| - |T|, 0) with trainable thresholds T.

    The soft threshold sign(x) * max(|x| - T, 0) of wavelet denoising with its sign replaced by
    tanh, so it is smooth at 0. One threshold per entry of the ``axis`` dimensions (the
    channels by default), initialised to 0.05.
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def build(self, input_shape):
        axes = [a % len(input_shape) for a in np.atleast_1d(self.axis)]
        shape = [int(d) if i in axes else 1 for i, d in enumerate(input_shape)][1:]
        self.threshold = self.add_weight(name="threshold", shape=shape,
                                         initializer=keras.initializers.Constant(THRESHOLD_INIT))
        super().build(input_shape)

    def call(self, inputs):
        return smooth_threshold(inputs, self.threshold)

    def compute_output_shape(self, input_shape):
        return input_shape

    def count_macs(self):
        """0: an activation (``models.profile`` does not count activations)."""
        return 0

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


@serializable
class WHT1D(keras.layers.Layer):
    """1D block-WHT layer along channels: a 1x1 convolution replacement with L (or 2L) weights.

    The C_in input channels are repeated (tiled) to L = blocks * B >= max(C_in, filters), with
    B = ``block_size`` or the next power of two of max(C_in, filters) (one block), so that every
    coefficient sees input. Then y = W^-1 S_T(W x) (v * W x with ``use_scale``), where W is the
    block WHT and T (and v) have L entries. As in the authors' reference code, the layer changes
    the channel count without discarding any: expanding (filters > C_in), the first ``filters``
    channels of y, copies of the input each denoised by its own thresholds; reducing, the mean
    of each group of k = C_in // filters adjacent channels of y (its first k * filters). At
    every position the layer costs L * log2(B) additions (and L scalings), against C_in * filters
    multiply-adds for the 1x1 convolution.
    """

    def __init__(self, filters, block_size=None, use_scale=False, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.block_size = check_block_size(block_size)
        self.use_scale = bool(use_scale)

    def build(self, input_shape):
        self.in_channels = int(input_shape[-1])
        self.blocks, self.block = blocking(max(self.in_channels, self.filters), self.block_size)
        self.length = self.blocks * self.block
        self.positions = math.prod(int(d) for d in input_shape[1:-1])
        _add_coefficient_weights(self, (self.length,), self.use_scale)
        super().build(input_shape)

    def _extend(self, x):
        if self.length == self.in_channels:
            return x
        return tf.concat([x] * math.ceil(self.length / self.in_channels), axis=-1)[..., :self.length]

    def _reduce(self, y):
        """The first ``filters`` channels of y, or the means of its groups of C_in // filters."""
        group = max(self.in_channels // self.filters, 1)
        if self.filters * group != self.length:
            y = y[..., :self.filters * group]
        if group == 1:
            return y
        means = tf.reduce_mean(tf.reshape(y, [-1, self.filters, group]), axis=-1)
        return tf.reshape(means, [-1, *y.shape[1:-1], self.filters])

    def call(self, inputs):
        order = layout(self.length, self.block)
        scale = tf.gather(self.scale, order) if self.use_scale else None
        coefficients = forward(self._extend(inputs), self.block, scale=scale)
        return self._reduce(inverse(smooth_threshold(coefficients, tf.gather(self.threshold, order)), self.block))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.filters)

    def count_macs(self):
        """The coefficient scalings: positions * L with ``use_scale``, else none."""
        return self.positions * self.length if self.use_scale else 0

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "block_size": self.block_size,
                "use_scale": self.use_scale}


def _tiling(height, width, block_size):
    (rows, tile_h), (cols, tile_w) = blocking(height, block_size), blocking(width, block_size)
    if tile_h * tile_w > MAX_BLOCK:
        raise ValueError(f"a {height}x{width} map needs {tile_h}x{tile_w} tiles > {MAX_BLOCK} coefficients: "
                         f"give a smaller block_size")
    return rows, tile_h, cols, tile_w


def _to_tiles(x, rows, tile_h, cols, tile_w):
    """(N, H, W, C) -> (N, rows, cols, C, tile_h * tile_w): zero-padded, each tile flattened row-major.

    The 2-D WHT of a tile is then the 1-D WHT of its flattened pixels (H_ab = H_a (x) H_b).
    """
    _, height, width, channels = x.shape
    if (rows * tile_h, cols * tile_w) != (height, width):
        x = tf.pad(x, [[0, 0], [0, rows * tile_h - height], [0, cols * tile_w - width], [0, 0]])
    x = tf.reshape(x, [-1, rows, tile_h, cols, tile_w, channels])
    return tf.reshape(tf.transpose(x, [0, 1, 3, 5, 2, 4]), [-1, rows, cols, channels, tile_h * tile_w])


def _from_tiles(x, rows, tile_h, cols, tile_w, height, width):
    channels = x.shape[3]
    x = tf.transpose(tf.reshape(x, [-1, rows, cols, channels, tile_h, tile_w]), [0, 1, 4, 2, 5, 3])
    x = tf.reshape(x, [-1, rows * tile_h, cols * tile_w, channels])
    return x if (rows * tile_h, cols * tile_w) == (height, width) else x[:, :height, :width, :]


@serializable
class WHT2D(keras.layers.Layer):
    """2D-FWHT layer over height and width: a 3x3 convolution (or squeeze-excite) replacement.

    Each channel's H x W map is zero-padded and cut into B_h x B_w tiles (``block_size`` square
    tiles, or by default one tile of the next powers of two, as in the paper), every tile is
    2-D transformed (W_h (x) W_w), and y = W^-1 S_T(W x) (v * W x with ``use_scale``) is
    cropped back to H x W. T (and v) have B_h * B_w entries, one per 2-D sequency, shared by all
    tiles and channels, so the layer keeps the channel count and has B_h * B_w (or twice as
    many) weights whatever the number of channels.
    """

    def __init__(self, block_size=None, use_scale=False, **kwargs):
        super().__init__(**kwargs)
        self.block_size = check_block_size(block_size)
        self.use_scale = bool(use_scale)

    def build(self, input_shape):
        self.height, self.width, self.channels = (int(d) for d in input_shape[1:])
        self.tiling = _tiling(self.height, self.width, self.block_size)
        self.tile = self.tiling[1] * self.tiling[3]
        _add_coefficient_weights(self, (self.tile,), self.use_scale)
        super().build(input_shape)

    def call(self, inputs):
        if self.tile > MAX_DENSE:  # one matmul per axis (hadamard.spatial_forward)
            coefficients = spatial_forward(inputs, self.tiling)
            if self.use_scale:
                coefficients = coefficients * self._per_sequency(self.scale)
            denoised = smooth_threshold(coefficients, self._per_sequency(self.threshold))
            return spatial_inverse(denoised, self.tiling, self.height, self.width)
        scale = self.scale if self.use_scale else None  # tiles of <= MAX_DENSE pixels: one matmul each way
        coefficients = forward(_to_tiles(inputs, *self.tiling), self.tile, scale=scale)
        y = inverse(smooth_threshold(coefficients, self.threshold), self.tile)
        return _from_tiles(y, *self.tiling, self.height, self.width)

    def _per_sequency(self, weights):
        """Weights in natural order u * tile_w + w -> (tile_w, tile_h), ``spatial_forward``'s order."""
        _, tile_h, _, tile_w = self.tiling
        return tf.transpose(tf.reshape(weights, [tile_h, tile_w]))

    def compute_output_shape(self, input_shape):
        return input_shape

    def count_macs(self):
        """The coefficient scalings: padded H * padded W * C with ``use_scale``, else none."""
        rows, tile_h, cols, tile_w = self.tiling
        return rows * tile_h * cols * tile_w * self.channels if self.use_scale else 0

    def get_config(self):
        return {**super().get_config(), "block_size": self.block_size, "use_scale": self.use_scale}


@serializable
class WHTGlobalPooling2D(keras.layers.Layer):
    """Trainable 2D-WHT before global average pooling: (N, H, W, C) -> (N, C).

    y_c = mean over the sequencies (u, w) of S_T(v * W x_c), with W the 2-D WHT of the whole
    zero-padded map (next powers of two) and v, T per sequency and channel. Transforming back
    first would leave global average pooling (almost) only the DC coefficient, so the pooled
    feature is the thresholded spectrum itself: a trainable, nonlinear spatial weighting.
    """

    def build(self, input_shape):
        height, width, self.channels = (int(d) for d in input_shape[1:])
        self.tiling = _tiling(height, width, None)
        self.tile = self.tiling[1] * self.tiling[3]
        _add_coefficient_weights(self, (self.tile, self.channels), use_scale=True)
        super().build(input_shape)

    def call(self, inputs):
        order = layout(self.tile, self.tile)
        scale, threshold = (tf.transpose(tf.gather(w, order)) for w in (self.scale, self.threshold))
        coefficients = forward(_to_tiles(inputs, *self.tiling), self.tile, scale=scale)
        return tf.reduce_mean(smooth_threshold(coefficients, threshold), axis=[1, 2, 4])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def count_macs(self):
        """One scaling per coefficient: padded H * padded W * C."""
        return self.tile * self.channels
