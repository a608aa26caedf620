"""Ghost module and Ghost bottleneck (Han et al., "GhostNet: More Features from Cheap
Operations", CVPR 2020, sections 3.1-3.2).

A Ghost module replaces a convolution making ``filters`` maps: a primary k x k convolution
makes m = ceil(filters / ratio) intrinsic maps, and a cheap d x d depthwise convolution
(depth multiplier ratio - 1) makes (ratio - 1) "ghost" maps from each intrinsic one; the
two are concatenated and the first ``filters`` kept. Each convolution is followed by batch
norm and, optionally, ReLU.

A Ghost bottleneck is a residual block of two Ghost modules: the first expands to
``mid_channels`` (with ReLU), the second projects to ``filters`` (linear). With stride 2 a
k x k depthwise convolution (batch norm, no activation) sits between them; an optional
hard-sigmoid squeeze-excite acts on the expanded maps. The shortcut is the identity when
the shape is kept, else a k x k depthwise (stride) + 1x1 convolution, each with batch norm.

Both are single layers (they save and load as units) and state their cost through
``count_macs()`` for ``models.profile``. Their outputs concatenate maps of different ranges
(intrinsic and ghost), so they declare ``calibrated_output`` for quantization-aware training
(both hooks: ``keras_layers.protocol``).
"""
import math

import tensorflow as tf

from keras_layers.activations import SqueezeExcite
from keras_layers.keras_api import keras, serializable
from keras_layers.protocol import CountsMacs, implements

layers = keras.layers


def _build_chain(chain, shape):
    """Build ``chain`` (a sequence of layers) on ``shape``; return (output shape, MACs)."""
    macs = 0
    for layer in chain:
        layer.build(shape)
        shape = tuple(layer.compute_output_shape(shape))
        if implements(layer, CountsMacs):
            macs += layer.count_macs()
        elif isinstance(layer, (layers.Conv2D, layers.DepthwiseConv2D)):
            macs += math.prod(shape[1:-1]) * math.prod(layer.weights[0].shape)
    return shape, macs


def _conv_bn(dtype, filters, kernel_size, strides=1, depthwise=False, depth_multiplier=1, name="conv"):
    if depthwise:
        conv = layers.DepthwiseConv2D(kernel_size, strides, padding="same", depth_multiplier=depth_multiplier,
                                      use_bias=False, name=name, dtype=dtype)
    else:
        conv = layers.Conv2D(filters, kernel_size, strides, padding="same", use_bias=False, name=name, dtype=dtype)
    return [conv, layers.BatchNormalization(name=f"{name}_bn", dtype=dtype)]


def _apply(chain, x, training):
    for layer in chain:
        x = layer(x, training=training)
    return x


@serializable
class GhostModule(layers.Layer):
    """Ghost module: ``filters`` output maps from ceil(filters / ratio) intrinsic ones.

    Args:
        filters: output channels.
        kernel_size: kernel of the primary convolution (1 in GhostNet).
        ratio: s, the number of maps (one intrinsic plus s - 1 ghosts) per intrinsic map.
        dw_size: d, kernel of the cheap depthwise operation.
        relu: apply ReLU after both batch norms.
    """

    calibrated_output = True  # protocol.CalibratedOutput: intrinsic and ghost maps have different ranges

    def __init__(self, filters, kernel_size=1, ratio=2, dw_size=3, relu=True, **kwargs):
        super().__init__(**kwargs)
        if ratio < 2:
            raise ValueError(f"GhostModule ratio must be >= 2, got {ratio}")
        self.filters, self.kernel_size, self.ratio, self.dw_size, self.relu = filters, kernel_size, ratio, dw_size, relu
        self.intrinsic_channels = math.ceil(filters / ratio)
        self.primary = _conv_bn(self.dtype_policy, self.intrinsic_channels, kernel_size, name="primary")
        self.cheap = _conv_bn(self.dtype_policy, None, dw_size, depthwise=True, depth_multiplier=ratio - 1,
                              name="cheap")

    def build(self, input_shape):
        shape, primary_macs = _build_chain(self.primary, tuple(input_shape))
        _, cheap_macs = _build_chain(self.cheap, shape)
        self.macs = primary_macs + cheap_macs
        super().build(input_shape)

    def call(self, inputs, training=None):
        intrinsic = _apply(self.primary, inputs, training)
        if self.relu:
            intrinsic = tf.nn.relu(intrinsic)
        ghosts = _apply(self.cheap, intrinsic, training)
        if self.relu:
            ghosts = tf.nn.relu(ghosts)
        outputs = tf.concat([intrinsic, ghosts], axis=-1)
        return outputs if self.intrinsic_channels * self.ratio == self.filters else outputs[..., :self.filters]

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.filters)

    def count_macs(self):
        """Primary convolution plus the cheap operation, including ghosts sliced away."""
        return self.macs

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "ratio": self.ratio, "dw_size": self.dw_size, "relu": self.relu}


@serializable
class GhostBottleneck(layers.Layer):
    """Ghost bottleneck (G-bneck, Fig. 3 of the paper).

    Args:
        mid_channels: expansion size, the output of the first Ghost module.
        filters: output channels.
        kernel_size: kernel of the stride-2 depthwise convolutions (main path and shortcut).
        strides: 1 or 2.
        se_channels: squeeze width of the squeeze-excite on the expanded maps (0: none).
        ratio, dw_size: of both Ghost modules.
    """

    calibrated_output = True  # protocol.CalibratedOutput: its Ghost modules' concatenations feed the sum

    def __init__(self, mid_channels, filters, kernel_size=3, strides=1, se_channels=0, ratio=2, dw_size=3,
                 **kwargs):
        super().__init__(**kwargs)
        if strides not in (1, 2):
            raise ValueError(f"GhostBottleneck strides must be 1 or 2, got {strides}")
        self.mid_channels, self.filters, self.kernel_size, self.strides = mid_channels, filters, kernel_size, strides
        self.se_channels, self.ratio, self.dw_size = se_channels, ratio, dw_size
        dtype = self.dtype_policy
        self.main = [GhostModule(mid_channels, ratio=ratio, dw_size=dw_size, name="ghost1", dtype=dtype)]
        if strides > 1:
            self.main += _conv_bn(dtype, None, kernel_size, strides, depthwise=True, name="depthwise")
        if se_channels:
            self.main.append(SqueezeExcite(se_channels, name="se", dtype=dtype))
        self.main.append(GhostModule(filters, ratio=ratio, dw_size=dw_size, relu=False, name="ghost2", dtype=dtype))

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        _, self.macs = _build_chain(self.main, input_shape)
        self.shortcut = []
        if self.strides > 1 or input_shape[-1] != self.filters:
            dtype = self.dtype_policy
            self.shortcut = (_conv_bn(dtype, None, self.kernel_size, self.strides, depthwise=True, name="shortcut_dw")
                             + _conv_bn(dtype, self.filters, 1, name="shortcut_conv"))
            self.macs += _build_chain(self.shortcut, input_shape)[1]
        super().build(input_shape)

    def call(self, inputs, training=None):
        shortcut = _apply(self.shortcut, inputs, training)
        return _apply(self.main, inputs, training) + shortcut

    def compute_output_shape(self, input_shape):
        height, width = (None if d is None else -(-d // self.strides) for d in input_shape[1:3])
        return (input_shape[0], height, width, self.filters)

    def count_macs(self):
        return self.macs

    def get_config(self):
        return {**super().get_config(), "mid_channels": self.mid_channels, "filters": self.filters,
                "kernel_size": self.kernel_size, "strides": self.strides, "se_channels": self.se_channels,
                "ratio": self.ratio, "dw_size": self.dw_size}
