"""MGIC block (Eliasof, Ephrath, Ruthotto, Treister: "MGIC: Multigrid-in-Channels Neural
Network Architectures", 2020/2023).

A standard k x k convolution over C channels has k^2 C^2 weights. A grouped convolution
with groups of ``g`` channels has k^2 C g, linear in C, but couples only channels of the same
group. MGIC restores full coupling with a multigrid hierarchy *in channels*: level l has
c_l = C / 2^l channels, down to a coarsest level with at most g channels, where a plain
(fully coupled) convolution acts. One V-cycle on x_0 (the input):

    x_l <- x_l + S_l(x_l)                      pre-relaxation: grouped k x k conv-BN-ReLU
    x_{l+1} = R_l x_l                          restriction: grouped 1x1 conv-BN, g -> g/2 per group
    y_{l+1} = V-cycle(x_{l+1})
    x_l <- x_l + P_l (y_{l+1} - x_{l+1})        prolongation of the coarse correction: grouped 1x1 conv-BN
    x_l <- x_l + S'_l(x_l)                     post-relaxation

Groups are contiguous channel ranges, so a group of level l + 1 mixes the restrictions of two
groups of level l: after log2(C / g) levels every channel reaches every other one. Each level
has O(c_l g) weights and sum_l c_l < 2C, so the block has O(C g) weights: doubling the width
about doubles the parameters, where a standard convolution block quadruples them.
"""
import math

import tensorflow as tf

from keras_layers.keras_api import keras, serializable

layers = keras.layers


@serializable
class MGICBlock(layers.Layer):
    """One multigrid-in-channels V-cycle over ``C = group_size * 2^L`` channels (shape kept).

    Args:
        group_size: g, channels per group of the grouped convolutions (and of the coarsest level).
        kernel_size: k of the relaxation convolutions.
    """

    def __init__(self, group_size=8, kernel_size=3, **kwargs):
        super().__init__(**kwargs)
        if group_size < 2 or group_size % 2:
            raise ValueError(f"MGICBlock group_size must be even and >= 2, got {group_size}")
        self.group_size, self.kernel_size = group_size, kernel_size

    def _conv_bn(self, filters, kernel_size, groups, name):
        return [layers.Conv2D(filters, kernel_size, padding="same", groups=groups, use_bias=False, name=name,
                              dtype=self.dtype_policy),
                layers.BatchNormalization(name=f"{name}_bn", dtype=self.dtype_policy)]

    def build(self, input_shape):
        channels = int(input_shape[-1])
        levels = math.log2(max(channels, self.group_size) / self.group_size)
        if channels < 2 or (channels > self.group_size and levels != int(levels)):
            raise ValueError(f"MGICBlock needs group_size * 2^L input channels (group_size {self.group_size}), "
                             f"got {channels}")
        self.levels = []  # per level: (pre, post, restrict, prolong); restrict/prolong empty on the coarsest
        self.macs = 0
        pixels = math.prod(int(d) for d in input_shape[1:3]) if None not in input_shape[1:3] else 0
        while True:
            groups = max(1, channels // self.group_size)
            level = len(self.levels)
            pre = self._conv_bn(channels, self.kernel_size, groups, f"level{level}_pre")
            post = self._conv_bn(channels, self.kernel_size, groups, f"level{level}_post")
            transfer = ([], [])
            if channels > self.group_size:
                transfer = (self._conv_bn(channels // 2, 1, groups, f"level{level}_restrict"),
                            self._conv_bn(channels, 1, groups, f"level{level}_prolong"))
            self.levels.append((pre, post, *transfer))
            for chain, in_channels in ((pre, channels), (post, channels), (transfer[0], channels),
                                       (transfer[1], channels // 2)):
                if chain:
                    conv, bn = chain
                    conv.build((None, None, None, in_channels))
                    bn.build((None, None, None, conv.filters))
                    self.macs += pixels * math.prod(conv.kernel.shape)
            if channels <= self.group_size:
                break
            channels //= 2
        super().build(input_shape)

    @staticmethod
    def _apply(chain, x, training):
        """Conv-BN, the grouped convolution as split / per-group ``tf.nn.conv2d`` / concat on the
        Conv2D's kernel: TF has no CPU gradient for grouped convolutions (Keras 3 falls back to an
        XLA function retraced on every eager call)."""
        conv, bn = chain
        kernels = tf.split(conv.kernel, conv.groups, axis=-1)
        inputs = tf.split(x, conv.groups, axis=-1)
        y = tf.concat([tf.nn.conv2d(part, kernel, 1, "SAME") for part, kernel in zip(inputs, kernels)], axis=-1)
        return bn(y, training=training)

    def _cycle(self, x, level, training):
        pre, post, restrict, prolong = self.levels[level]
        x = x + tf.nn.relu(self._apply(pre, x, training))
        if restrict:
            coarse = self._apply(restrict, x, training)
            x = x + self._apply(prolong, self._cycle(coarse, level + 1, training) - coarse, training)
        return x + tf.nn.relu(self._apply(post, x, training))

    def call(self, inputs, training=None):
        return self._cycle(inputs, 0, training)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def count_macs(self):
        """Sum over levels of output pixels times kernel size of every (grouped) convolution."""
        return self.macs

    def get_config(self):
        return {**super().get_config(), "group_size": self.group_size, "kernel_size": self.kernel_size}
