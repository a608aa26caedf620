"""NumPy references for the WHT layers, built from dense Hadamard matrices (scipy), shared by
the Keras 3 and tf_keras tests."""
import numpy as np
from scipy.linalg import hadamard


def smooth_threshold(z, threshold):
    return np.tanh(z) * np.maximum(np.abs(z) - np.abs(threshold), 0.0)


def block_matrix(length, block):
    """Orthonormal block WHT as a dense (length x length) matrix: I (x) H_block / sqrt(block)."""
    return np.kron(np.eye(length // block), hadamard(block) / np.sqrt(block))


def next_power_of_two(n):
    return 1 << (n - 1).bit_length()


def wht1d(x, filters, threshold, scale=1.0, block=None):
    """Channels tiled to L, W^-1 S_T(v W x): its first ``filters`` channels, or (reducing) the
    means of its groups of C_in // filters adjacent channels."""
    length = len(threshold)
    channels = x.shape[-1]
    x = np.concatenate([x] * -(-length // channels), axis=-1)[..., :length]
    matrix = block_matrix(length, block or length)
    y = smooth_threshold(x @ matrix * scale, threshold) @ matrix
    group = max(channels // filters, 1)
    return y[..., :filters * group].reshape(*y.shape[:-1], filters, group).mean(axis=-1)


def _spatial(x, block):
    height, width = x.shape[1:3]
    tile_h, tile_w = (block or next_power_of_two(n) for n in (height, width))
    padded_h, padded_w = -(-height // tile_h) * tile_h, -(-width // tile_w) * tile_w
    x = np.pad(x, [(0, 0), (0, padded_h - height), (0, padded_w - width), (0, 0)])
    return x, block_matrix(padded_h, tile_h), block_matrix(padded_w, tile_w), (tile_h, tile_w)


def wht2d(x, threshold, scale=1.0, block=None):
    """Per-channel 2-D block WHT of the zero-padded map, S_T with per-sequency weights, cropped."""
    height, width = x.shape[1:3]
    padded, rows, cols, tile = _spatial(x, block)
    repeat = (padded.shape[1] // tile[0], padded.shape[2] // tile[1])

    def per_position(weights):  # one weight per sequency of a tile, repeated over the tiles
        return np.tile(np.broadcast_to(weights, tile[0] * tile[1]).reshape(tile), repeat)[None, :, :, None]

    coefficients = np.einsum("ij,njkc,lk->nilc", rows, padded, cols)
    denoised = smooth_threshold(coefficients * per_position(scale), per_position(threshold))
    return np.einsum("ji,njkc,kl->nilc", rows, denoised, cols)[:, :height, :width]


def wht_pooling(x, threshold, scale):
    """Mean over the sequencies of S_T(v * 2-D WHT) of the whole padded map; weights (tile, C)."""
    padded, rows, cols, tile = _spatial(x, None)
    coefficients = np.einsum("ij,njkc,lk->nilc", rows, padded, cols)
    shape = (*tile, x.shape[-1])
    return smooth_threshold(coefficients * scale.reshape(shape), threshold.reshape(shape)).mean(axis=(1, 2))
