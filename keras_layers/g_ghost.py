"""The cheap and mix operations of a G-Ghost stage (Han et al., "GhostNets on Heterogeneous
Devices via Cheap Operations", IJCV 2022, Sec. 4: GPU-efficient Ghost stage).

Features of one stage are alike across its blocks, so a G-Ghost stage computes only part of
its ``C`` output channels with its blocks. The first block makes ``x_0`` (``C`` channels);
the next blocks, on ``r`` channels only (the first ``r`` of ``x_0``), make intermediate maps
``e_1, ..., e_k``; ``e_k`` is the intrinsic part. The ``C - r`` ghost channels come cheaply
from the rest of ``x_0``:

    g   = BN(W_c x_0[..., r:])                                cheap operation: 1x1 conv-BN
    m   = BN(W_2 ReLU(BN(W_1 GAP([x_0, e_1, ..., e_k]))))       mix operation: pooling + 2 FCs
    out = [e_k, ReLU(g + m)]                                  concatenation, C channels

The mix operation aggregates the intermediate features the cheap branch skips: global average
pooling of their concatenation (``C + k r`` values) through two fully connected layers to
``C - r`` values added to every position of the cheap maps. Every operation is a plain or
1x1 convolution, pooling or addition: no depthwise convolution, which GPUs run poorly.
"""
import tensorflow as tf

from keras_layers.keras_api import keras, serializable

layers = keras.layers


@serializable
class GGhostCheapMix(layers.Layer):
    """Ghost channels of a G-Ghost stage, concatenated after its intrinsic ones.

    Called on the list ``[x_0, e_1, ..., e_k]`` (``k >= 1``; same height and width; ``e_i``
    with ``r`` channels, fewer than ``x_0``'s ``C``); returns ``C`` channels, see the module
    docstring. No arguments: all widths follow from the inputs.
    """

    def build(self, input_shape):
        shapes = [tuple(shape) for shape in input_shape] if isinstance(input_shape, (list, tuple)) else []
        if len(shapes) < 2 or any(len(shape) != 4 for shape in shapes):
            raise ValueError(f"{self.name}: expected a list [x_0, e_1, ..., e_k] of at least two 4D inputs, "
                             f"got {input_shape}")
        channels, intrinsic = int(shapes[0][-1]), int(shapes[-1][-1])
        if not 0 < intrinsic < channels or any(int(shape[-1]) != intrinsic for shape in shapes[1:]):
            raise ValueError(f"{self.name}: intermediate maps need the same r < C channels "
                             f"(C = {channels}), got {[int(s[-1]) for s in shapes[1:]]}")
        self.intrinsic_channels, self.ghost_channels = intrinsic, channels - intrinsic
        self.pooled_channels = channels + intrinsic * (len(shapes) - 1)
        self.pixels = None if None in shapes[0][1:3] else int(shapes[0][1]) * int(shapes[0][2])
        dtype, ghosts = self.dtype_policy, self.ghost_channels
        self.cheap = layers.Conv2D(ghosts, 1, use_bias=False, name="cheap", dtype=dtype)
        self.cheap_bn = layers.BatchNormalization(name="cheap_bn", dtype=dtype)
        self.mix = [layers.Dense(ghosts, use_bias=False, name="mix_fc1", dtype=dtype),
                    layers.BatchNormalization(name="mix_fc1_bn", dtype=dtype),
                    layers.Dense(ghosts, use_bias=False, name="mix_fc2", dtype=dtype),
                    layers.BatchNormalization(name="mix_fc2_bn", dtype=dtype)]
        self.cheap.build((None, None, None, ghosts))
        self.cheap_bn.build((None, None, None, ghosts))
        for layer, in_channels in zip(self.mix, (self.pooled_channels, ghosts, ghosts, ghosts)):
            layer.build((None, in_channels))
        super().build(input_shape)

    def call(self, inputs, training=None):
        first, intrinsic = inputs[0], inputs[-1]
        pooled = tf.concat([tf.reduce_mean(x, axis=[1, 2]) for x in inputs], axis=-1)
        fc1, fc1_bn, fc2, fc2_bn = self.mix
        mixed = fc2_bn(fc2(tf.nn.relu(fc1_bn(fc1(pooled), training=training))), training=training)
        ghosts = self.cheap_bn(self.cheap(first[..., self.intrinsic_channels:]), training=training)
        ghosts = tf.nn.relu(ghosts + mixed[:, tf.newaxis, tf.newaxis, :])
        return tf.concat([intrinsic, ghosts], axis=-1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def count_macs(self):
        """The 1x1 cheap convolution at every position plus the two FCs of the mix operation."""
        if self.pixels is None:
            raise ValueError(f"{self.name}: count_macs needs a layer built on a known height and width")
        ghosts = self.ghost_channels
        return self.pixels * ghosts * ghosts + self.pooled_channels * ghosts + ghosts * ghosts
