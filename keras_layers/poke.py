"""PokeConv, the binary convolution block of PokeBNN (Zhang, Zhang and Lew, "PokeBNN: A Binary
Pursuit of Lightweight Accuracy", CVPR 2022, section 3 and Fig. 2), and its activation DPReLU.

One PokeConv unit, input x (and, for the last unit of a residual block, the block input r1):

    y = BN(BinConv(x))                        1-bit inputs (sign, STE clipped at |x| <= 3, the
                                              tuned clipping bound) and 1-bit weights
    y = y + reshape(x)                        local shortcut around every convolution
    y = y + reshape(r1)                       the ResNet shortcut, last unit of a block only
    y = DPReLU(y)
    y = y * SE(x)                             squeeze-excite gate from the unit's input (4-bit weights):
                                              hard_sigmoid(W2 relu(W1 mean_hw(x) + b1) + b2)
    y = BN(y)                                 the "split" batch norm

``reshape`` makes a shortcut match the output without parameters: fewer channels are
averaged in consecutive groups, more channels are zero-padded (local shortcut) or tiled
(ResNet shortcut), and a stride-2 output gets a 3x3 stride-2 average pooling of the shortcut.
The last unit of a block starts with BN gamma = 0 (the block starts as its shortcut), as in
ResNet training recipes.

    DPReLU(x) = slope * (x - b_x) - b_y,  slope = s_pos where x >= b_x else s_neg

per channel, initialized s_pos = 1, s_neg = 0.25, b_x = b_y = 0 (a PReLU with both origins
shifted).
"""
import math

import tensorflow as tf

from keras_layers import quantizers
from keras_layers.binary import QuantConv2D
from keras_layers.keras_api import keras, serializable

layers = keras.layers

EXPANDS = ("zeropad", "tile")
POKE_INPUT_QUANTIZER = quantizers.SteSign(clip_value=3.0)  # PokeBNN's tuned clipping bound
BN_KWARGS = {"momentum": 0.9, "epsilon": 1e-5}  # PokeBNN's batch norm


@serializable
class DPReLU(layers.Layer):
    """Dynamic-PReLU: ``slope * (x - bias_x) - bias_y`` with separate slopes for x >= bias_x and below.

    Written as ``s_pos relu(x - b_x) - s_neg relu(b_x - x) - b_y`` (builtin TFLite ops).
    """

    def build(self, input_shape):
        channels = (int(input_shape[-1]),)
        self.bias_x = self.add_weight(name="bias_x", shape=channels, initializer="zeros")
        self.bias_y = self.add_weight(name="bias_y", shape=channels, initializer="zeros")
        self.pos_slope = self.add_weight(name="pos_slope", shape=channels, initializer="ones")
        self.neg_slope = self.add_weight(name="neg_slope", shape=channels,
                                         initializer=keras.initializers.Constant(0.25))
        super().build(input_shape)

    def call(self, inputs):
        shifted = inputs - self.bias_x
        return self.pos_slope * tf.nn.relu(shifted) - self.neg_slope * tf.nn.relu(-shifted) - self.bias_y

    def compute_output_shape(self, input_shape):
        return input_shape


def reshape_shortcut(residual, channels, strides, expand):
    """Match ``residual`` to ``channels`` and to a ``strides``-times smaller map, without parameters.

    Fewer channels: mean over consecutive groups of ``C_in // channels`` (the remainder is
    dropped); more: zero padding (``expand="zeropad"``) or tiling (``"tile"``, cut to size);
    ``strides`` > 1: 3x3 average pooling with that stride ("same" padding).
    """
    in_channels = int(residual.shape[-1])
    if in_channels > channels:
        group = in_channels // channels
        # channel j of the output averages inputs j*group ... j*group + group - 1
        residual = tf.add_n([residual[..., k:channels * group:group] for k in range(group)]) / group
    elif in_channels < channels and expand == "zeropad":
        residual = tf.pad(residual, [[0, 0]] * (len(residual.shape) - 1) + [[0, channels - in_channels]])
    elif in_channels < channels:
        residual = tf.concat([residual] * math.ceil(channels / in_channels), axis=-1)[..., :channels]
    if strides > 1:
        residual = tf.nn.avg_pool2d(residual, 3, strides, "SAME")
    return residual


@serializable
class ReshapeShortcut(layers.Layer):
    """``reshape_shortcut`` as a layer: a parameter-free shortcut to ``channels`` at ``strides``."""

    def __init__(self, channels, strides=1, expand="zeropad", **kwargs):
        super().__init__(**kwargs)
        if expand not in EXPANDS:
            raise ValueError(f"ReshapeShortcut expand must be one of {', '.join(EXPANDS)}, got {expand!r}")
        self.channels, self.strides, self.expand = channels, strides, expand

    def call(self, inputs):
        return reshape_shortcut(inputs, self.channels, self.strides, self.expand)

    def compute_output_shape(self, input_shape):
        spatial = (None if d is None else -(-d // self.strides) for d in input_shape[1:3])
        return (input_shape[0], *spatial, self.channels)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "strides": self.strides, "expand": self.expand}


def _first_shape(input_shape):
    """The shape of x whether the layer gets x alone or [x, block_input]."""
    nested = isinstance(input_shape, (list, tuple)) and not isinstance(input_shape[0], (int, type(None)))
    return tuple(input_shape[0] if nested else input_shape)


def _se_conv(filters, quantizer, name, dtype):
    return QuantConv2D(filters, 1, kernel_quantizer=quantizer, use_bias=True, kernel_clip=None, name=name,
                       dtype=dtype)


@serializable
class PokeConv(layers.Layer):
    """One PokeConv unit (see the module docstring); called on x, or on [x, block_input].

    Args:
        filters: output channels.
        kernel_size, strides: of the binary convolution (strides 1 or 2).
        block_strides: how much smaller the output is than ``block_input`` (the ResNet
            shortcut's pooling stride); only used when called on [x, block_input].
        zero_gamma: start the first batch norm's gamma at 0 (the last unit of a block).
        se_ratio: squeeze width = max(1, round(se_ratio * C_in)) (1/8 in PokeBNN).
        input_quantizer, kernel_quantizer: of the binary convolution (``keras_layers.quantizers``
            identifiers; default sign with the clipping bound 3, and sign).
        se_kernel_quantizer: of the two squeeze-excite convolutions (default 4-bit DoReFa).
    """

    def __init__(self, filters, kernel_size=3, strides=1, block_strides=1, zero_gamma=False, se_ratio=0.125,
                 input_quantizer=POKE_INPUT_QUANTIZER, kernel_quantizer="ste_sign",
                 se_kernel_quantizer="dorefa_4bit", **kwargs):
        super().__init__(**kwargs)
        if strides not in (1, 2) or block_strides not in (1, 2, 4):
            raise ValueError(f"PokeConv strides must be 1 or 2 and block_strides 1, 2 or 4, "
                             f"got {strides}, {block_strides}")
        if not 0 < se_ratio <= 1:
            raise ValueError(f"PokeConv se_ratio must be in (0, 1], got {se_ratio}")
        self.filters, self.kernel_size, self.strides, self.block_strides = filters, kernel_size, strides, block_strides
        self.zero_gamma, self.se_ratio = zero_gamma, se_ratio
        dtype = self.dtype_policy
        self.conv = QuantConv2D(filters, kernel_size, strides, input_quantizer=input_quantizer,
                                kernel_quantizer=kernel_quantizer, name="binary_conv", dtype=dtype)
        self.bn = layers.BatchNormalization(gamma_initializer="zeros" if zero_gamma else "ones", name="bn",
                                            dtype=dtype, **BN_KWARGS)
        self.dprelu = DPReLU(name="dprelu", dtype=dtype)
        self.bn_split = layers.BatchNormalization(name="bn_split", dtype=dtype, **BN_KWARGS)
        self.se_kernel_quantizer = quantizers.get(se_kernel_quantizer)

    def build(self, input_shape):
        x_shape = _first_shape(input_shape)
        in_channels = int(x_shape[-1])
        dtype = self.dtype_policy
        self.se_reduce = _se_conv(max(1, round(self.se_ratio * in_channels)), self.se_kernel_quantizer,
                                  "se_reduce", dtype)
        self.se_expand = _se_conv(self.filters, self.se_kernel_quantizer, "se_expand", dtype)
        self.conv.build(x_shape)
        out_shape = self.conv.compute_output_shape(x_shape)
        for norm in (self.bn, self.bn_split):
            norm.build(out_shape)
        self.dprelu.build(out_shape)
        self.se_reduce.build((x_shape[0], 1, 1, in_channels))
        self.se_expand.build((x_shape[0], 1, 1, self.se_reduce.filters))
        super().build(input_shape)

    def call(self, inputs, training=None):
        x, block_input = inputs if isinstance(inputs, (list, tuple)) else (inputs, None)
        y = self.bn(self.conv(x), training=training)
        y = y + reshape_shortcut(x, self.filters, self.strides, "zeropad")
        if block_input is not None:
            y = y + reshape_shortcut(block_input, self.filters, self.block_strides, "tile")
        y = self.dprelu(y)
        squeezed = tf.reduce_mean(x, axis=(1, 2), keepdims=True)
        gate = self.se_expand(tf.nn.relu(self.se_reduce(squeezed)))
        y = y * (tf.nn.relu6(gate + 3.0) / 6.0)
        return self.bn_split(y, training=training)

    def compute_output_shape(self, input_shape):
        return self.conv.compute_output_shape(_first_shape(input_shape))

    def quantized_layers(self):
        """The binary convolution and the two 4-bit squeeze-excite convolutions."""
        return [self.conv, self.se_reduce, self.se_expand]

    def count_macs(self):
        return sum(layer.count_macs() for layer in self.quantized_layers())

    def macs_by_bits(self):
        return [(layer.input_bits, layer.kernel_bits, layer.count_macs()) for layer in self.quantized_layers()]

    def count_weight_bits(self):
        """Quantized kernels at their bit widths; batch norms and DPReLU in 32-bit float."""
        float_weights = self.bn.weights + self.bn_split.weights + self.dprelu.weights
        return (sum(layer.count_weight_bits() for layer in self.quantized_layers())
                + quantizers.FLOAT_BITS * sum(math.prod(w.shape) for w in float_weights))

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "block_strides": self.block_strides, "zero_gamma": self.zero_gamma,
                "se_ratio": self.se_ratio, "input_quantizer": quantizers.serialize(self.conv.input_quantizer),
                "kernel_quantizer": quantizers.serialize(self.conv.kernel_quantizer),
                "se_kernel_quantizer": quantizers.serialize(self.se_kernel_quantizer)}
