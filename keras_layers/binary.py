"""Quantized convolution and dense layers: binary-weight (BWN) and XNOR networks
(Rastegari et al., "XNOR-Net: ImageNet Classification Using Binary Convolutional Neural
Networks", ECCV 2016), and binary / low-bit layers in general (Hubara et al., "Binarized
Neural Networks", 2016), in the style of larq's ``Quant*`` layers.

Each layer keeps a latent float kernel W (clipped to [-kernel_clip, kernel_clip] after every
optimizer step) and computes with quantized operands:

    scale=None    y = q_in(x) * q_k(W)
    scale="bwn"   y = (q_in(x) * q_k(W)) alpha,      alpha = mean |W| per output channel
    scale="xnor"  y = (q_in(x) * q_k(W)) alpha K,    K = box_k(mean_c |x|), the mean absolute
                  input over the channels averaged over each k x k receptive field (the
                  per-channel |x| for a depthwise kernel; mean_c |x| per row for dense)

where ``*`` is the layer's convolution or matrix product and q_in, q_k are the input and
kernel quantizers (``keras_layers.quantizers``). With sign quantizers a binary layer's
products are XNOR + popcount on bit-packed operands (``tflite.xnor_kernel``); in TFLite the
converter folds alpha into the constant kernel alpha q_k(W), exactly representable per channel
in int8 (+-127 times alpha / 127). ``input_bits`` and ``kernel_bits`` give the operand widths ``models.profile`` weights
MACs by (ACE), and ``count_weight_bits`` the storage of the weights (the ``OperandBits`` and
``CountsWeightBits`` hooks of ``keras_layers.protocol``).
"""
import math

import tensorflow as tf

from keras_layers import quantizers
from keras_layers.keras_api import keras, serializable

layers = keras.layers
SCALES = (None, "bwn", "xnor")
PADDINGS = ("same", "valid")


@serializable
class WeightClip(keras.constraints.Constraint):
    """Clips the latent weights to [-clip_value, clip_value] (BNN's weight clipping)."""

    def __init__(self, clip_value=1.0):
        self.clip_value = float(clip_value)

    def __call__(self, w):
        return tf.clip_by_value(w, -self.clip_value, self.clip_value)

    def get_config(self):
        return {"clip_value": self.clip_value}


def _pair(value, name):
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v > 0 for v in pair):
        raise ValueError(f"{name} must be a positive integer or a pair of them, got {value!r}")
    return pair


def _output_size(size, kernel, stride, padding):
    if size is None:
        return None
    return -(-size // stride) if padding == "same" else (size - kernel) // stride + 1


class QuantLayer(layers.Layer):
    """Base of the quantized layers: quantizers, scaling, latent kernel, bias, costs."""

    def __init__(self, input_quantizer=None, kernel_quantizer="ste_sign", scale=None, kernel_clip=1.0,
                 use_bias=False, kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        if scale not in SCALES:
            raise ValueError(f"{type(self).__name__} scale must be one of None, 'bwn', 'xnor', got {scale!r}")
        self.input_quantizer = quantizers.get(input_quantizer)
        self.kernel_quantizer = quantizers.get(kernel_quantizer)
        if scale == "xnor" and self.input_quantizer is None:
            raise ValueError(f"{type(self).__name__} scale='xnor' needs an input_quantizer (binary inputs)")
        if kernel_clip is not None and not kernel_clip > 0:
            raise ValueError(f"{type(self).__name__} kernel_clip must be positive or None, got {kernel_clip!r}")
        self.scale, self.use_bias = scale, bool(use_bias)
        self.kernel_clip = None if kernel_clip is None else float(kernel_clip)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.input_bits = quantizers.bits(self.input_quantizer)
        self.kernel_bits = quantizers.bits(self.kernel_quantizer)

    def _add_kernel_and_bias(self, kernel_shape, output_channels):
        constraint = None if self.kernel_clip is None else WeightClip(self.kernel_clip)
        self.output_channels = output_channels
        self.kernel = self.add_weight(name="kernel", shape=kernel_shape, initializer=self.kernel_initializer,
                                      constraint=constraint)
        self.bias = (self.add_weight(name="bias", shape=(output_channels,), initializer=self.bias_initializer)
                     if self.use_bias else None)

    def quantized_kernel(self):
        """q_k(W), the kernel the product uses (before the channel scale alpha)."""
        return self.kernel if self.kernel_quantizer is None else self.kernel_quantizer(self.kernel)

    def channel_scale(self):
        """alpha = mean |W| per output channel (flattened), or None when ``scale`` is None."""
        if self.scale is None:
            return None
        return quantizers.channel_mean_abs(self.kernel)

    def quantized_input(self, inputs):
        return inputs if self.input_quantizer is None else self.input_quantizer(inputs)

    def call(self, inputs):
        # alpha multiplies the product, not the kernel: with sign operands the product is an
        # exact integer (as in the XNOR-popcount kernel), so a zero stays exactly zero.
        outputs = self._product(self.quantized_input(inputs), self.quantized_kernel())
        if self.scale is not None:
            outputs = outputs * self.channel_scale()
        if self.scale == "xnor":
            outputs = outputs * self._input_scale(inputs)
        if self.bias is not None:
            outputs = outputs + self.bias
        return outputs

    def count_macs(self):
        """Output positions (batch 1) times kernel size, as for the float layer."""
        return self.output_positions * math.prod(self.kernel.shape)

    def count_weight_bits(self):
        """Storage of the weights: kernel_bits per kernel entry, 32-bit channel scales and bias."""
        scaled = self.scale is not None or getattr(self.kernel_quantizer, "per_channel_scale", False)
        return (self.kernel_bits * math.prod(self.kernel.shape)
                + quantizers.FLOAT_BITS * self.output_channels * (int(scaled) + int(self.use_bias)))

    def get_config(self):
        return {**super().get_config(), "input_quantizer": quantizers.serialize(self.input_quantizer),
                "kernel_quantizer": quantizers.serialize(self.kernel_quantizer), "scale": self.scale,
                "kernel_clip": self.kernel_clip, "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer)}


class _QuantConvBase(QuantLayer):
    def __init__(self, kernel_size, strides=1, padding="same", **kwargs):
        super().__init__(**kwargs)
        self.kernel_size, self.strides = _pair(kernel_size, "kernel_size"), _pair(strides, "strides")
        padding = padding.lower() if isinstance(padding, str) else padding
        if padding not in PADDINGS:
            raise ValueError(f"{type(self).__name__} padding must be 'same' or 'valid', got {padding!r}")
        self.padding = padding

    def _spatial_output(self, input_shape):
        return tuple(_output_size(s, k, st, self.padding)
                     for s, k, st in zip(input_shape[1:3], self.kernel_size, self.strides))

    def _set_output_positions(self, input_shape):
        self.output_positions = math.prod(self._spatial_output(input_shape))

    def _box_average(self, magnitudes, channels):
        """Mean of ``magnitudes`` over each k x k window (zeros outside the input for 'same')."""
        box = tf.ones((*self.kernel_size, channels, 1), magnitudes.dtype) / math.prod(self.kernel_size)
        return tf.nn.depthwise_conv2d(magnitudes, box, (1, *self.strides, 1), self.padding.upper())

    def get_config(self):
        return {**super().get_config(), "kernel_size": self.kernel_size, "strides": self.strides,
                "padding": self.padding}


@serializable
class QuantConv2D(_QuantConvBase):
    """2D convolution with quantized inputs and kernel (BNN / BWN / XNOR-Net, see the module).

    Args:
        filters: output channels.
        kernel_size, strides: int or pair.
        padding: "same" (zero padding: padded inputs count 0, neither +1 nor -1) or "valid".
        input_quantizer, kernel_quantizer: ``keras_layers.quantizers`` identifiers.
        scale: None, "bwn" (alpha per output channel) or "xnor" (alpha and the input scale K).
        kernel_clip: latent kernel clipped to [-kernel_clip, kernel_clip]; None for no clipping.
        use_bias: add a float bias.
    """

    def __init__(self, filters, kernel_size, strides=1, padding="same", **kwargs):
        super().__init__(kernel_size, strides, padding, **kwargs)
        if not isinstance(filters, int) or filters < 1:
            raise ValueError(f"QuantConv2D filters must be a positive integer, got {filters!r}")
        self.filters = filters

    def build(self, input_shape):
        self._add_kernel_and_bias((*self.kernel_size, int(input_shape[-1]), self.filters), self.filters)
        self._set_output_positions(input_shape)
        super().build(input_shape)

    def _product(self, inputs, kernel):
        return tf.nn.conv2d(inputs, kernel, (1, *self.strides, 1), self.padding.upper())

    def _input_scale(self, inputs):
        return self._box_average(tf.reduce_mean(tf.abs(inputs), axis=-1, keepdims=True), 1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self._spatial_output(input_shape), self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters}


@serializable
class QuantDepthwiseConv2D(_QuantConvBase):
    """Depthwise convolution with quantized inputs and kernel; alpha and K are per output channel.

    Same arguments as ``QuantConv2D`` with ``depth_multiplier`` in place of ``filters``.
    """

    def __init__(self, kernel_size, strides=1, padding="same", depth_multiplier=1, **kwargs):
        super().__init__(kernel_size, strides, padding, **kwargs)
        if not isinstance(depth_multiplier, int) or depth_multiplier < 1:
            raise ValueError(f"QuantDepthwiseConv2D depth_multiplier must be a positive integer, "
                             f"got {depth_multiplier!r}")
        self.depth_multiplier = depth_multiplier

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self._add_kernel_and_bias((*self.kernel_size, channels, self.depth_multiplier),
                                  channels * self.depth_multiplier)
        self._set_output_positions(input_shape)
        super().build(input_shape)

    def channel_scale(self):
        """alpha per output channel c * depth_multiplier + m: the mean of |W| over the k x k taps."""
        if self.scale is None:
            return None
        return tf.reshape(tf.reduce_mean(tf.abs(self.kernel), axis=(0, 1)), (-1,))

    def _product(self, inputs, kernel):
        return tf.nn.depthwise_conv2d(inputs, kernel, (1, *self.strides, 1), self.padding.upper())

    def _input_scale(self, inputs):
        box = self._box_average(tf.abs(inputs), int(inputs.shape[-1]))
        return tf.repeat(box, self.depth_multiplier, axis=-1) if self.depth_multiplier > 1 else box

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self._spatial_output(input_shape), input_shape[-1] * self.depth_multiplier)

    def get_config(self):
        return {**super().get_config(), "depth_multiplier": self.depth_multiplier}


@serializable
class QuantDense(QuantLayer):
    """Dense layer with quantized inputs and kernel; the XNOR input scale is mean |x| per row.

    Same arguments as ``QuantConv2D`` with ``units`` output features and no spatial ones.
    """

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(units, int) or units < 1:
            raise ValueError(f"QuantDense units must be a positive integer, got {units!r}")
        self.units = units

    def build(self, input_shape):
        self._add_kernel_and_bias((int(input_shape[-1]), self.units), self.units)
        self.output_positions = math.prod(int(d) for d in input_shape[1:-1])
        super().build(input_shape)

    def _product(self, inputs, kernel):
        return tf.tensordot(inputs, kernel, axes=1) if len(inputs.shape) > 2 else tf.matmul(inputs, kernel)

    def _input_scale(self, inputs):
        return tf.reduce_mean(tf.abs(inputs), axis=-1, keepdims=True)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


_BWN = {"kernel_quantizer": "ste_sign", "scale": "bwn"}
_XNOR = {"input_quantizer": "ste_sign", "kernel_quantizer": "ste_sign", "scale": "xnor"}


def bwn_conv2d(filters, kernel_size, **kwargs):
    """Binary-weight-network convolution: float inputs, kernel alpha sign(W)."""
    return QuantConv2D(filters, kernel_size, **{**_BWN, **kwargs})


def xnor_conv2d(filters, kernel_size, **kwargs):
    """XNOR-Net convolution: sign inputs scaled by K, kernel alpha sign(W)."""
    return QuantConv2D(filters, kernel_size, **{**_XNOR, **kwargs})


def bwn_depthwise_conv2d(kernel_size, **kwargs):
    return QuantDepthwiseConv2D(kernel_size, **{**_BWN, **kwargs})


def xnor_depthwise_conv2d(kernel_size, **kwargs):
    return QuantDepthwiseConv2D(kernel_size, **{**_XNOR, **kwargs})


def bwn_dense(units, **kwargs):
    return QuantDense(units, **{**_BWN, **kwargs})


def xnor_dense(units, **kwargs):
    return QuantDense(units, **{**_XNOR, **kwargs})
