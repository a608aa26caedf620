"""Bit-packed XNOR-popcount inference for binary convolutions, in NumPy
(Rastegari et al., "XNOR-Net", ECCV 2016, section 3.2).

With inputs and weights in {-1, +1} stored as bits (1 for +1), a dot product of length C is

    sum_i a_i w_i = C - 2 popcount(a XOR w)

so one 64-bit XOR + popcount does 64 binary multiply-accumulates: the physical limit of
the method is 64 MACs per word operation. Channels are packed into 64-bit words (the last
word padded with zero bits in both operands, which XOR to 0 and so count nothing).

``PackedBinaryConv2D.from_layer`` takes a built ``keras_layers.binary.QuantConv2D`` with sign
quantizers on inputs and kernel and reproduces its output: the integer binary convolution
is exact, taps falling in the zero padding of "same" contribute 0 as in the simulated layer,
and the float epilogue (alpha per output channel, the XNOR input scale K, bias) follows.
"""
import math
import time

import numpy as np
from threadpoolctl import threadpool_limits

from keras_layers import quantizers
from keras_layers.binary import QuantConv2D
from tflite.bench import runs_per_round

WORD_BITS = 64


def pack_signs(x):
    """Pack the signs of ``x`` (..., C) along the last axis into uint64 words (..., ceil(C / 64)).

    Bit 1 stands for x >= 0 (+1), bit 0 for x < 0 (-1); padding bits are 0.
    """
    bits = np.asarray(x) >= 0
    channels = bits.shape[-1]
    pad = -channels % WORD_BITS
    if pad:
        bits = np.concatenate([bits, np.zeros((*bits.shape[:-1], pad), bool)], axis=-1)
    packed = np.packbits(bits, axis=-1, bitorder="little")
    return np.ascontiguousarray(packed).view("<u8")


def _geometry(size, kernel, stride, padding):
    """(output size, padding before, padding after) along one axis, as TensorFlow pads."""
    if padding == "same":
        out = -(-size // stride)
        total = max((out - 1) * stride + kernel - size, 0)
        return out, total // 2, total - total // 2
    return (size - kernel) // stride + 1, 0, 0


def patches(x, kernel_size, strides, padding):
    """im2col: (N, H, W, D) -> (N, H_out, W_out, k_h * k_w * D), taps in row-major order, zero padded."""
    (kh, kw), (sh, sw) = kernel_size, strides
    (out_h, top, bottom), (out_w, left, right) = (_geometry(x.shape[1], kh, sh, padding),
                                                  _geometry(x.shape[2], kw, sw, padding))
    x = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    return np.concatenate([x[:, i:i + sh * out_h:sh, j:j + sw * out_w:sw] for i in range(kh) for j in range(kw)],
                          axis=-1)


def float_conv2d(x, kernel, strides=(1, 1), padding="same"):
    """The float convolution of the same shape, as im2col + one BLAS matrix product (the baseline)."""
    cols = patches(x, kernel.shape[:2], strides, padding)
    # A 2-D product: NumPy's stacked (4-D) matmul does not go through BLAS and is ~100x slower.
    out = cols.reshape(-1, cols.shape[-1]) @ kernel.reshape(-1, kernel.shape[-1])
    return out.reshape(*cols.shape[:-1], kernel.shape[-1])


class PackedBinaryConv2D:
    """A binary convolution on bit-packed operands: XOR + popcount per 64-bit word.

    Args:
        kernel: (k_h, k_w, C, F) float kernel; only its signs are kept, packed per tap.
        strides, padding: as in the Keras layer ("same" pads with zeros that count 0).
        alpha: optional (F,) scale per output channel; bias: optional (F,).
        xnor_scale: multiply by XNOR-Net's input scale K (the k x k mean of mean_c |x|).
    """

    def __init__(self, kernel, strides=(1, 1), padding="same", alpha=None, bias=None, xnor_scale=False):
        kernel = np.asarray(kernel)
        if kernel.ndim != 4:
            raise ValueError(f"PackedBinaryConv2D kernel must be (k_h, k_w, C, F), got shape {kernel.shape}")
        self.kernel_size, self.channels, self.filters = kernel.shape[:2], kernel.shape[2], kernel.shape[3]
        self.strides, self.padding = tuple(strides), padding
        packed = pack_signs(np.moveaxis(kernel, 3, 0))  # (F, k_h, k_w, words)
        self.words = packed.shape[-1]
        # (taps * words, F), taps then words like the rows of ``patches`` of packed inputs.
        self.kernel_words = np.ascontiguousarray(packed.reshape(self.filters, -1).T)
        # popcount of each tap's kernel words, (taps, F): what a zero-padded tap wrongly adds.
        self.tap_popcounts = np.bitwise_count(packed).sum(axis=-1).reshape(self.filters, -1).T.astype(np.int32)
        self.alpha, self.bias, self.xnor_scale = alpha, bias, xnor_scale

    @classmethod
    def from_layer(cls, layer):
        """The packed equivalent of a built ``QuantConv2D`` with sign input and kernel quantizers."""
        if not (isinstance(layer, QuantConv2D) and quantizers.is_sign(layer.input_quantizer)
                and quantizers.is_sign(layer.kernel_quantizer)):
            raise ValueError(f"layer {layer.name!r} is not a QuantConv2D with sign input and kernel quantizers")
        kernel = np.asarray(layer.kernel)
        scales = [np.abs(kernel).mean(axis=(0, 1, 2))] if layer.kernel_quantizer.per_channel_scale else []
        if layer.scale is not None:
            scales.append(np.asarray(layer.channel_scale()))
        alpha = np.prod(scales, axis=0) if scales else None
        bias = None if layer.bias is None else np.asarray(layer.bias)
        return cls(kernel, layer.strides, layer.padding, alpha, bias, layer.scale == "xnor")

    def binary_dot(self, packed_inputs):
        """Integer convolution of packed inputs (N, H, W, words): sum over valid taps of C - 2 popcount."""
        if packed_inputs.shape[-1] != self.words:
            raise ValueError(f"packed inputs must have {self.words} words per pixel, got {packed_inputs.shape[-1]}")
        cols = patches(packed_inputs, self.kernel_size, self.strides, self.padding)
        out_shape = cols.shape[:-1]
        cols = cols.reshape(-1, cols.shape[-1])
        counts = np.zeros((cols.shape[0], self.filters), np.int32)
        xor = np.empty((cols.shape[0], self.filters), np.uint64)
        bits = np.empty((cols.shape[0], self.filters), np.uint8)
        for k in range(cols.shape[1]):
            np.bitwise_xor(cols[:, k:k + 1], self.kernel_words[k], out=xor)
            np.add(counts, np.bitwise_count(xor, out=bits), out=counts)
        # Padded taps hold zero words: they added popcount(kernel word) and must count nothing.
        valid = patches(np.ones((1, *packed_inputs.shape[1:3], 1), np.int32), self.kernel_size, self.strides,
                        self.padding)[0]  # (H_out, W_out, taps), 1 where the tap is inside the input
        correction = (1 - valid).reshape(-1, valid.shape[-1]) @ self.tap_popcounts
        counts = counts.reshape(*out_shape, self.filters) - correction.reshape(*valid.shape[:2], self.filters)
        return valid.sum(axis=-1)[..., None] * self.channels - 2 * counts

    def input_scale(self, x):
        """XNOR-Net's K: mean_c |x| averaged over each k x k window (zeros outside for "same")."""
        magnitudes = np.abs(x).mean(axis=-1, keepdims=True)
        return patches(magnitudes, self.kernel_size, self.strides, self.padding).mean(axis=-1, keepdims=True)

    def __call__(self, x):
        """Float NHWC inputs -> the binary layer's outputs (float32)."""
        x = np.asarray(x, np.float32)
        out = self.binary_dot(pack_signs(x)).astype(np.float32)
        if self.alpha is not None:
            out = out * self.alpha
        if self.xnor_scale:
            out = out * self.input_scale(x)
        if self.bias is not None:
            out = out + self.bias
        return out


def _timed_ms(function, runs):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def benchmark(shape, filters, kernel_size=3, runs=12, rounds=3, seed=0):
    """Packed XNOR-popcount convolution vs the float im2col + BLAS convolution, same shape, same run.

    Times (single image, "same" padding, stride 1, one thread) the float convolution, the binary integer
    convolution on already-packed inputs and weights (the inference kernel), and the same
    including the packing of the inputs, in ``rounds`` interleaved rounds so that load from
    other processes slows all three alike. Checks first that the packed result equals the
    float convolution of the signs. Returns medians in ms, MACs and speed-ups over the float
    convolution (> 1: faster than float).
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, *shape)).astype(np.float32)
    kernel = rng.standard_normal((kernel_size, kernel_size, shape[-1], filters)).astype(np.float32)
    conv = PackedBinaryConv2D(kernel)
    packed = pack_signs(x)
    signs = [np.where(t >= 0, 1.0, -1.0).astype(np.float32) for t in (x, kernel)]
    if not np.array_equal(conv.binary_dot(packed), float_conv2d(*signs)):
        raise AssertionError("packed XNOR convolution differs from the float convolution of the signs")
    kernels = {"float": lambda: float_conv2d(x, kernel), "xnor": lambda: conv.binary_dot(packed),
               "xnor_with_packing": lambda: conv.binary_dot(pack_signs(x))}
    times = {name: [] for name in kernels}
    with threadpool_limits(1):  # one core for both: NumPy's bit operations are single-threaded
        for name, function in kernels.items():
            function()  # warm-up
        for share in runs_per_round(runs, rounds):
            for name, function in kernels.items():
                times[name] += _timed_ms(function, share)
    medians = {f"{name}_ms": float(np.median(values)) for name, values in times.items()}
    return {"shape": "x".join(map(str, shape)), "filters": filters, "kernel_size": kernel_size,
            "macs": math.prod(shape[:2]) * kernel_size ** 2 * shape[-1] * filters, **medians,
            "speedup": medians["float_ms"] / medians["xnor_ms"],
            "speedup_with_packing": medians["float_ms"] / medians["xnor_with_packing_ms"]}
