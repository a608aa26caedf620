"""FFConv: low-rank factorized convolution (Lu et al., "FFConv: Fast Factorized Convolutional
Neural Network Inference on Encrypted Data", 2021).

A d x d convolution ``W`` (d, d, C_in, C_out) is replaced by a d x d convolution ``A`` to
``rank`` < C_out channels followed by a 1x1 convolution ``B`` (rank, C_out) restoring the
channels. Both are linear, so the pair is the convolution with kernel

    W~[u, v, i, o] = sum_r A[u, v, i, r] B[r, o],   i.e.  mat(W~) = mat(A) B

with ``mat`` reshaping (d, d, C_in, C) to (d d C_in, C): a rank-``rank`` factorization of
the d^2 C_in x C_out matrix. In homomorphic-encryption inference the d x d convolution on
fewer channels cuts DensePack rotations and the 1x1 convolution costs almost none under
ConvPack; in plain inference it cuts MACs from d^2 C_in C_out to (d^2 C_in + C_out) rank per
output pixel. ``factorize_conv2d`` initializes it from a trained ``Conv2D`` by truncated SVD,
the best rank-r approximation in Frobenius norm (Eckart-Young): with singular values
s_1 >= s_2 >= ..., ``A = U_r S_r``, ``B = V_r^T`` and relative error
``sqrt(sum_{k>r} s_k^2 / sum_k s_k^2)`` (0 at full rank ``min(d^2 C_in, C_out)``).
"""
import math

import numpy as np

from keras_layers.keras_api import keras, serializable

layers = keras.layers


@serializable
class FFConv(layers.Layer):
    """d x d convolution to ``rank`` channels, then 1x1 convolution (with bias) to ``filters``.

    Args:
        filters: output channels.
        kernel_size: d.
        rank: channels of the d x d convolution.
        strides, padding: of the d x d convolution (``"same"`` or ``"valid"``).
        use_bias: bias on the 1x1 convolution.
        activation: applied to the output (a Keras activation name or None).
    """

    def __init__(self, filters, kernel_size, rank, strides=1, padding="same", use_bias=True, activation=None,
                 **kwargs):
        super().__init__(**kwargs)
        if rank < 1:
            raise ValueError(f"FFConv rank must be >= 1, got {rank}")
        self.filters, self.kernel_size, self.rank, self.strides = filters, kernel_size, rank, strides
        self.padding, self.use_bias = padding, use_bias
        self.activation = keras.activations.get(activation)
        self.low_rank = layers.Conv2D(rank, kernel_size, strides, padding=padding, use_bias=False,
                                      name="low_rank", dtype=self.dtype_policy)
        self.restore = layers.Conv2D(filters, 1, use_bias=use_bias, name="restore", dtype=self.dtype_policy)

    def build(self, input_shape):
        self.low_rank.build(input_shape)
        shape = tuple(self.low_rank.compute_output_shape(input_shape))
        self.restore.build(shape)
        self.out_pixels = None if None in shape[1:3] else math.prod(shape[1:3])
        self.in_channels = int(input_shape[-1])
        super().build(input_shape)

    def call(self, inputs):
        return self.activation(self.restore(self.low_rank(inputs)))

    def compute_output_shape(self, input_shape):
        return (*self.low_rank.compute_output_shape(input_shape)[:-1], self.filters)

    def count_macs(self):
        """(d^2 C_in + C_out) * rank per output pixel."""
        if self.out_pixels is None:
            raise ValueError(f"{self.name}: count_macs needs a layer built on a known height and width")
        return self.out_pixels * (self.kernel_size ** 2 * self.in_channels + self.filters) * self.rank

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size, "rank": self.rank,
                "strides": self.strides, "padding": self.padding, "use_bias": self.use_bias,
                "activation": keras.activations.serialize(self.activation)}


def factorize_conv2d(conv, rank, name=None):
    """Return ``(ffconv, relative_error)``: an FFConv initialized from the built ``Conv2D`` ``conv``
    by truncated SVD of its reshaped kernel, and the relative Frobenius error of the kernel.

    ``rank`` is capped at ``min(d^2 C_in, C_out)``, where the factorization is exact.
    """
    if not isinstance(conv, layers.Conv2D) or not conv.built:
        raise ValueError(f"factorize_conv2d needs a built Conv2D layer, got {type(conv).__name__}")
    kernel_h, kernel_w = conv.kernel_size
    if kernel_h != kernel_w or tuple(conv.dilation_rate) != (1, 1) or getattr(conv, "groups", 1) != 1:
        raise ValueError(f"{conv.name}: FFConv needs a square, undilated, ungrouped kernel, got "
                         f"kernel {conv.kernel_size}, dilation {conv.dilation_rate}")
    kernel = np.asarray(conv.kernel.numpy(), np.float64)
    matrix = kernel.reshape(-1, kernel.shape[-1])
    rank = min(rank, *matrix.shape)
    u, s, vt = np.linalg.svd(matrix, full_matrices=False)
    error = float(np.sqrt(np.sum(s[rank:] ** 2) / np.sum(s ** 2))) if s.any() else 0.0
    if len(set(conv.strides)) != 1:
        raise ValueError(f"{conv.name}: FFConv needs equal strides, got {conv.strides}")
    ffconv = FFConv(conv.filters, kernel_h, rank, strides=conv.strides[0], padding=conv.padding,
                    use_bias=conv.use_bias, activation=keras.activations.serialize(conv.activation),
                    name=name or f"{conv.name}_ffconv")
    try:  # the input shape of a conv inside a model, so that ``count_macs`` knows the spatial size
        input_shape = tuple(conv.input.shape)
    except (AttributeError, ValueError):
        input_shape = (None, None, None, kernel.shape[2])
    ffconv.build(input_shape)
    weights = [(u[:, :rank] * s[:rank]).reshape(*kernel.shape[:3], rank), vt[:rank].reshape(1, 1, rank, -1)]
    if conv.use_bias:
        weights.append(np.asarray(conv.bias.numpy()))
    ffconv.set_weights([w.astype(np.float32) for w in weights])
    return ffconv, error
