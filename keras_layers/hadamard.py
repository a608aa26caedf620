"""The (block) Walsh-Hadamard transform in TensorFlow ops that TFLite runs as a few large kernels.

Sylvester's construction H_1 = [1], H_2n = [[H_n, H_n], [H_n, -H_n]] gives the naturally ordered
+1/-1 Hadamard matrix of every power-of-two size n, with H_n H_n = n I and, for powers of two
a and b, H_ab = H_a (x) H_b (Kronecker product). The orthonormal transform W_n = H_n / sqrt(n)
is therefore its own inverse.

Block WHT (Pan, Badawi and Cetin, "Block Walsh-Hadamard Transform Based Binary Layers in Deep
Neural Networks", ACM TECS 2022): a length that is not a power of two is padded to a multiple
of a power-of-two block size B, and each block is transformed on its own, x -> (I (x) W_B) x.

Fast evaluation. The textbook butterfly (log2 B stages of adds and subtracts) becomes log2 B
rounds of small slice/stack ops in TFLite, ~29x slower than a 1x1 convolution of the same
shape. Instead a block of B > 64 is split as B = a * b (a, b <= 64) and W_B = W_a (x) W_b is
applied as: reshape to (..., a, b), multiply by W_b (FULLY_CONNECTED), swap the last two axes
(TRANSPOSE), multiply by W_a: B * (a + b) multiply-adds per block instead of B^2, in three
kernels; blocks of B <= 64 are one FULLY_CONNECTED. ``forward`` leaves the coefficients in the
swapped (..., b, a) order, ``inverse`` takes them in that order, and ``layout`` says which
natural coefficient sits where, so that a layer can keep per-coefficient weights in natural
order. The matrices hold only +-1 / sqrt(B): the arithmetic is additions and subtractions; the
matrix-multiply kernels are simply the fastest way to run them in TFLite.

Separable 2-D transforms of channels-last maps (``spatial_forward`` / ``spatial_inverse``): the
2-D tile transform W_h (x) W_w is applied as one FULLY_CONNECTED per axis with the channels moved
first, four 4-D TRANSPOSEs in all; when one tile covers an axis its zero padding is folded into
the matrix (its first rows), so no PAD or crop runs. For tiles of more than ``MAX_DENSE`` pixels
this runs 1.1-1.3x faster in TFLite (fp32 and int8, 28x28x256 and 56x56x128 maps) than
``forward`` on flattened tiles, whose channel moves are 6-D and padded.
"""
import math

import numpy as np
import tensorflow as tf

MAX_DENSE = 64  # blocks up to this size are one matrix; larger ones are a product of two
MAX_BLOCK = MAX_DENSE * MAX_DENSE


def next_power_of_two(n):
    return 1 << max(int(n) - 1, 0).bit_length()


def hadamard(n):
    """The naturally ordered n x n Hadamard matrix of +1/-1 (Sylvester), n a power of two."""
    if n < 1 or n & (n - 1):
        raise ValueError(f"Hadamard size must be a power of two, got {n}")
    matrix = np.ones((1, 1), np.float32)
    while len(matrix) < n:
        matrix = np.block([[matrix, matrix], [matrix, -matrix]])
    return matrix


def check_block_size(block_size):
    """``None`` or a power of two up to ``MAX_BLOCK``, else a one-line ``ValueError``."""
    if block_size is not None and (block_size < 1 or block_size & (block_size - 1) or block_size > MAX_BLOCK):
        raise ValueError(f"block_size must be a power of two up to {MAX_BLOCK}, got {block_size}")
    return block_size


def blocking(n, block_size=None):
    """``(blocks, block)`` of a length-``n`` block WHT: one block of the next power of two by default."""
    block = check_block_size(block_size) or next_power_of_two(n)
    if block > MAX_BLOCK:
        raise ValueError(f"a length of {n} needs a block of {block} > {MAX_BLOCK}: give a smaller block_size")
    return math.ceil(n / block), block


def factors(block):
    """``(block,)`` for a dense block, else ``(a, b)`` with ``a * b == block`` and b >= a."""
    if block <= MAX_DENSE:
        return (block,)
    b = 1 << math.ceil(math.log2(block) / 2)
    return block // b, b


def layout(length, block):
    """Natural index of the coefficient at each position of ``forward``'s output (length ``length``)."""
    index = np.arange(length).reshape(-1, *factors(block))
    return index.transpose(0, 2, 1).reshape(-1) if index.ndim == 3 else index.reshape(-1)


def _matrix(n, dtype):
    return tf.constant(hadamard(n) / math.sqrt(n), dtype=dtype)


def forward(x, block, scale=None):
    """Orthonormal block WHT of the last axis of ``x`` (its length a multiple of ``block``).

    Returns the coefficients in ``layout`` order, multiplied by ``scale`` (a tensor broadcasting
    against them, already in ``layout`` order) when given; a per-coefficient ``scale`` of shape
    ``(block,)`` is folded into the dense matrix of a one-factor block.
    """
    shape = x.shape
    parts = factors(block)
    if len(parts) == 1:
        matrix = _matrix(block, x.dtype)
        folded = scale is not None and tuple(scale.shape) == (block,)
        y = tf.matmul(tf.reshape(x, [-1, block]), matrix * scale if folded else matrix)
        y = tf.reshape(y, [-1, *shape[1:]])
        return y * scale if scale is not None and not folded else y
    a, b = parts
    y = tf.matmul(tf.reshape(x, [-1, a, b]), _matrix(b, x.dtype))
    y = tf.matmul(tf.transpose(y, [0, 2, 1]), _matrix(a, x.dtype))
    y = tf.reshape(y, [-1, *shape[1:]])
    return y if scale is None else y * scale


def inverse(coefficients, block):
    """Inverse of ``forward`` (without its scale): coefficients in ``layout`` order -> signal."""
    shape = coefficients.shape
    parts = factors(block)
    if len(parts) == 1:
        y = tf.matmul(tf.reshape(coefficients, [-1, block]), _matrix(block, coefficients.dtype))
        return tf.reshape(y, [-1, *shape[1:]])
    a, b = parts
    y = tf.matmul(tf.reshape(coefficients, [-1, b, a]), _matrix(a, coefficients.dtype))
    y = tf.matmul(tf.transpose(y, [0, 2, 1]), _matrix(b, coefficients.dtype))
    return tf.reshape(y, [-1, *shape[1:]])


def fwht(x, axis=-1, block_size=None, normalize=True):
    """Fast block WHT of ``x`` along ``axis``, coefficients in natural (Hadamard) order.

    The axis (length n) is zero-padded to ``blocks * block`` (see ``blocking``) and each block
    of ``block`` is transformed: ``x @ H_block`` per block, divided by sqrt(block) when
    ``normalize`` (then ``fwht(fwht(x)) == x`` for padded lengths). ``x`` needs a static shape.
    """
    x = tf.convert_to_tensor(x)
    axis = axis % x.shape.rank
    blocks, block = blocking(x.shape[axis], block_size)
    y = tf.experimental.numpy.moveaxis(x, axis, -1)
    y = tf.pad(y, [[0, 0]] * (y.shape.rank - 1) + [[0, blocks * block - y.shape[-1]]])
    lead = y.shape[:-1]
    y = forward(tf.reshape(y, [-1, blocks * block]), block)
    y = tf.gather(y, np.argsort(layout(blocks * block, block)), axis=-1)  # back to natural order
    y = tf.reshape(y, [*lead, blocks * block]) * (1.0 if normalize else math.sqrt(block))
    return tf.experimental.numpy.moveaxis(y, -1, axis)


def _transpose(x, dims, permutation):
    """``x`` reshaped to ``dims`` and transposed by ``permutation``, the axes of size 1 dropped
    first (so that one tile over the whole map moves a 4-D tensor, not a 6-D one)."""
    rank = {axis: i for i, axis in enumerate(axis for axis, d in enumerate(dims) if d != 1)}
    x = tf.reshape(x, [d for d in dims if d != 1])
    return tf.transpose(x, [rank[axis] for axis in permutation if axis in rank])


def _axis_matrix(tile, tiles, size, dtype):
    """W_tile, (inputs x tile): its first ``size`` rows when one tile covers the axis (the zero
    padding folded in), else all ``tile`` (the input is padded to whole tiles)."""
    return tf.constant(hadamard(tile)[:size if tiles == 1 else tile] / math.sqrt(tile), dtype=dtype)


def spatial_forward(x, tiling):
    """2-D block WHT of every channel of a (N, H, W, C) map, in tiles.

    ``tiling`` is ``(rows, tile_h, cols, tile_w)``: the map, zero-padded to rows x cols tiles of
    tile_h x tile_w, is transformed tile by tile (W_tile_h (x) W_tile_w). Returns the
    coefficients shaped (N, C, rows, cols, tile_w, tile_h): coefficient (u, w) of a tile, natural
    index u * tile_w + w, sits at [..., w, u].
    """
    rows, tile_h, cols, tile_w = tiling
    _, height, width, channels = x.shape
    extra_h = 0 if rows == 1 else rows * tile_h - height
    extra_w = 0 if cols == 1 else cols * tile_w - width
    if extra_h or extra_w:
        x = tf.pad(x, [[0, 0], [0, extra_h], [0, extra_w], [0, 0]])
    size_h, size_w = (height + extra_h) // rows, (width + extra_w) // cols
    y = tf.matmul(tf.reshape(tf.transpose(x, [0, 3, 1, 2]), [-1, size_w]),
                  _axis_matrix(tile_w, cols, size_w, x.dtype))
    y = _transpose(y, [-1, channels, rows, size_h, cols, tile_w], [0, 1, 2, 4, 5, 3])
    y = tf.matmul(tf.reshape(y, [-1, size_h]), _axis_matrix(tile_h, rows, size_h, x.dtype))
    return tf.reshape(y, [-1, channels, rows, cols, tile_w, tile_h])


def spatial_inverse(coefficients, tiling, height, width):
    """Inverse of ``spatial_forward``: coefficients (N, C, rows, cols, tile_w, tile_h) -> the
    (N, height, width, C) map."""
    rows, tile_h, cols, tile_w = tiling
    channels = coefficients.shape[1]
    size_h, size_w = (height if rows == 1 else tile_h), (width if cols == 1 else tile_w)
    y = tf.matmul(tf.reshape(coefficients, [-1, tile_h]),
                  _axis_matrix(tile_h, rows, size_h, coefficients.dtype), transpose_b=True)
    y = _transpose(y, [-1, channels, rows, cols, tile_w, size_h], [0, 1, 2, 5, 3, 4])
    y = tf.matmul(tf.reshape(y, [-1, tile_w]), _axis_matrix(tile_w, cols, size_w, coefficients.dtype),
                  transpose_b=True)
    y = _transpose(y, [-1, channels, rows * size_h, cols * size_w], [0, 2, 3, 1])
    return y if (rows * size_h, cols * size_w) == (height, width) else y[:, :height, :width, :]
