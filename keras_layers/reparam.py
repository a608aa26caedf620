"""Structural re-parameterization: blocks that train with several branches and deploy as
plain convolutions with exactly the same outputs (batch norm in inference mode).

``RepVGGBlock`` (Ding et al., "RepVGG: Making VGG-style ConvNets Great Again", CVPR 2021):
the training block is

    y = ReLU(BN_3(W_3 * x) + BN_1(W_1 * x) + BN_0(x))

(the identity branch ``BN_0`` only when ``C_in == C_out`` and stride 1). A batch norm in
inference mode is affine, ``BN(z) = gamma (z - mu) / sigma + beta`` with
``sigma = sqrt(var + eps)``, so each branch is a convolution with bias,
``W' = W gamma / sigma``, ``b' = beta - mu gamma / sigma``. The 1x1 kernel is zero-padded to
3x3 (its weight at the centre tap) and the identity is the 3x3 Dirac kernel
``delta[1, 1, i, i] = 1``; by linearity of convolution the three add up to one 3x3 kernel
and bias, ``y = ReLU(W * x + b)`` (Sec. 3.3 of the paper).

``RMResBlock`` (Meng et al., "RMNet: Equivalently Removing Residual Connection from
Networks", 2021): the ResNet basic block

    y = ReLU(BN_2(W_2 * ReLU(BN_1(W_1 * x))) + s(x)),   s = identity or BN_p(W_p * x) (1x1, stride)

becomes ``y = ReLU(V_2 * ReLU(V_1 * x + c_1) + c_2)`` by Reserve-and-Merge (Sec. 3.1):
``V_1`` has ``C_out + C_in`` output channels, the folded ``W_1`` followed by ``C_in`` Dirac
kernels that *reserve* the input (at the stride's sampling points); the middle ReLU leaves
them unchanged because the block input is non-negative (it is the ReLU output of the
previous block or stem). ``V_2`` *merges*: the folded ``W_2`` on the first ``C_out``
channels plus, on the reserved ones, the Dirac kernel (identity shortcut) or the folded 1x1
projection at the centre tap. The residual connection is gone; the block is conv-ReLU-conv.

All 3x3 convolutions pad one pixel on every side (explicitly, then ``valid``), so the centre
tap of a strided 3x3 kernel reads the same pixel as the strided 1x1 convolution; TF's
``same`` padding is asymmetric for even sizes with stride 2 and would shift it.

Each block is one layer with a ``deploy`` flag: ``deploy=False`` is the training form,
``deploy=True`` the folded one, and ``fold()`` returns the deploy form's weights
(``models.reparameterize`` clones a whole model that way). ``plain_layers()`` spells a deploy
block out as Keras built-in layers (zero padding, convolution, ReLU per convolution), so that
tools reading a graph of built-in layers (channel pruning, TFMOT) see a plain network. Both are
hooks of ``keras_layers.protocol`` (``Foldable``, ``HasPlainLayers``), as is ``count_macs``.
"""
import numpy as np
import tensorflow as tf

from keras_layers.keras_api import keras, serializable

layers = keras.layers


def fold_batch_norm(kernel, bn):
    """``(kernel * gamma / sigma, beta - mean * gamma / sigma)`` of a conv (no bias) followed by ``bn``."""
    gamma, beta, mean, variance = (_value(w) for w in (bn.gamma, bn.beta, bn.moving_mean, bn.moving_variance))
    scale = gamma / np.sqrt(variance + bn.epsilon)
    return np.asarray(kernel, np.float64) * scale, beta - mean * scale


def dirac(channels, kernel_size=3):
    """The identity convolution kernel: ``delta[c, c, i, i] = 1`` at the centre tap."""
    kernel = np.zeros((kernel_size, kernel_size, channels, channels))
    kernel[kernel_size // 2, kernel_size // 2] = np.eye(channels)
    return kernel


def _at_centre(kernel_1x1, kernel_size=3):
    """A 1x1 kernel zero-padded to ``kernel_size`` x ``kernel_size``."""
    pad = kernel_size // 2
    return np.pad(kernel_1x1, ((pad, pad), (pad, pad), (0, 0), (0, 0)))


def _value(weight):
    return np.asarray(weight.numpy(), np.float64)


class _FoldableBlock(layers.Layer):
    """Shared plumbing: padded 3x3 convolutions, output shape, MACs bookkeeping, config."""

    def __init__(self, filters, strides=1, deploy=False, **kwargs):
        super().__init__(**kwargs)
        if strides not in (1, 2):
            raise ValueError(f"{type(self).__name__} strides must be 1 or 2, got {strides}")
        self.filters, self.strides, self.deploy = filters, strides, deploy

    def _conv(self, filters, kernel_size, use_bias, name, strides=None):
        return layers.Conv2D(filters, kernel_size, strides or self.strides, padding="valid", use_bias=use_bias,
                             name=name, dtype=self.dtype_policy)

    def _bn(self, name):
        return layers.BatchNormalization(name=name, dtype=self.dtype_policy)

    def _output_size(self, size):
        return None if size is None else (size - 1) // self.strides + 1

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *(self._output_size(d) for d in input_shape[1:3]), self.filters)

    def build(self, input_shape):
        self.in_channels = int(input_shape[-1])
        self.out_pixels = int(np.prod([self._output_size(int(d)) for d in input_shape[1:3]]))
        self._build_layers((input_shape[0], None, None, self.in_channels))
        super().build(input_shape)

    def count_macs(self):
        return int(self.out_pixels * self._macs_per_pixel())

    def plain_layers(self):
        """The deploy form as ``[(layer, weights)]`` of new Keras built-in layers, applied in order:
        ``ZeroPadding2D(1)``, the ``valid`` convolution with its weights, ``ReLU``, per convolution."""
        if not self.deploy:
            raise ValueError(f"{self.name}: plain_layers needs the deploy form (models.reparameterize first)")
        plain = []
        for conv in self._deploy_convs():
            name = f"{self.name}_{conv.name}"
            plain += [(layers.ZeroPadding2D(1, name=f"{name}_pad"), []),
                      (layers.Conv2D.from_config({**conv.get_config(), "name": name}), conv.get_weights()),
                      (layers.ReLU(name=f"{name}_relu"), [])]
        return plain

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "strides": self.strides, "deploy": self.deploy}


def _pad(x):
    return tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])


@serializable
class RepVGGBlock(_FoldableBlock):
    """RepVGG block: 3x3 conv-BN + 1x1 conv-BN (+ identity BN) then ReLU; one 3x3 conv when deployed.

    Args:
        filters: output channels.
        strides: 1 or 2 (both convolutions).
        deploy: build the folded form (one 3x3 convolution with bias).
    """

    def _build_layers(self, shape):
        if self.deploy:
            self.conv = self._conv(self.filters, 3, True, "conv")
            self.conv.build(shape)
            return
        self.conv3, self.bn3 = self._conv(self.filters, 3, False, "conv3x3"), self._bn("conv3x3_bn")
        self.conv1, self.bn1 = self._conv(self.filters, 1, False, "conv1x1"), self._bn("conv1x1_bn")
        for conv, bn in ((self.conv3, self.bn3), (self.conv1, self.bn1)):
            conv.build(shape)
            bn.build((shape[0], None, None, self.filters))
        self.identity = None
        if self.strides == 1 and self.in_channels == self.filters:
            self.identity = self._bn("identity_bn")
            self.identity.build(shape)

    def call(self, inputs, training=None):
        if self.deploy:
            return tf.nn.relu(self.conv(_pad(inputs)))
        y = self.bn3(self.conv3(_pad(inputs)), training=training) + self.bn1(self.conv1(inputs), training=training)
        if self.identity is not None:
            y = y + self.identity(inputs, training=training)
        return tf.nn.relu(y)

    def _deploy_convs(self):
        return (self.conv,)

    def _macs_per_pixel(self):
        return (9 if self.deploy else 10) * self.in_channels * self.filters

    def fold(self):
        """``[kernel (3, 3, C_in, C_out), bias (C_out,)]`` of the equivalent deploy-form convolution."""
        if self.deploy:
            return self.get_weights()
        kernel, bias = fold_batch_norm(_value(self.conv3.kernel), self.bn3)
        kernel_1x1, bias_1x1 = fold_batch_norm(_value(self.conv1.kernel), self.bn1)
        kernel, bias = kernel + _at_centre(kernel_1x1), bias + bias_1x1
        if self.identity is not None:
            kernel_id, bias_id = fold_batch_norm(dirac(self.filters), self.identity)
            kernel, bias = kernel + kernel_id, bias + bias_id
        return [kernel.astype(np.float32), bias.astype(np.float32)]


@serializable
class RMResBlock(_FoldableBlock):
    """ResNet basic block that RMNet's Reserve-and-Merge turns into conv-ReLU-conv when deployed.

    The training form is conv3x3-BN-ReLU-conv3x3-BN plus the shortcut (identity, or a 1x1
    stride-``strides`` conv-BN when the shape changes), then ReLU. The input must be
    non-negative (a ReLU output) for the deploy form to be exact.

    Args:
        filters: output channels.
        strides: 1 or 2 (first convolution and projection shortcut).
        deploy: build the folded form (two biased 3x3 convolutions, ``filters + C_in`` channels between).
    """

    def _build_layers(self, shape):
        mid_shape = (shape[0], None, None, self.filters)
        if self.deploy:
            self.conv1 = self._conv(self.filters + self.in_channels, 3, True, "conv1")
            self.conv2 = self._conv(self.filters, 3, True, "conv2", strides=1)
            self.conv1.build(shape)
            self.conv2.build((shape[0], None, None, self.filters + self.in_channels))
            return
        self.conv1, self.bn1 = self._conv(self.filters, 3, False, "conv1"), self._bn("conv1_bn")
        self.conv2, self.bn2 = self._conv(self.filters, 3, False, "conv2", strides=1), self._bn("conv2_bn")
        self.conv1.build(shape)
        self.conv2.build(mid_shape)
        self.bn1.build(mid_shape)
        self.bn2.build(mid_shape)
        self.projection = None
        if self.strides > 1 or self.in_channels != self.filters:
            self.projection = self._conv(self.filters, 1, False, "projection")
            self.projection_bn = self._bn("projection_bn")
            self.projection.build(shape)
            self.projection_bn.build(mid_shape)

    def call(self, inputs, training=None):
        if self.deploy:
            return tf.nn.relu(self.conv2(_pad(tf.nn.relu(self.conv1(_pad(inputs))))))
        x = tf.nn.relu(self.bn1(self.conv1(_pad(inputs)), training=training))
        x = self.bn2(self.conv2(_pad(x)), training=training)
        shortcut = inputs if self.projection is None else self.projection_bn(self.projection(inputs),
                                                                             training=training)
        return tf.nn.relu(x + shortcut)

    def _deploy_convs(self):
        return self.conv1, self.conv2

    def _macs_per_pixel(self):
        if self.deploy:
            return 9 * (self.filters + self.in_channels) * (self.in_channels + self.filters)
        projection = 0 if self.projection is None else self.in_channels * self.filters
        return 9 * (self.in_channels + self.filters) * self.filters + projection

    def fold(self):
        """``[V_1, c_1, V_2, c_2]``: the reserving first and merging second deploy-form convolutions."""
        if self.deploy:
            return self.get_weights()
        kernel1, bias1 = fold_batch_norm(_value(self.conv1.kernel), self.bn1)
        kernel1 = np.concatenate([kernel1, dirac(self.in_channels)], axis=-1)
        bias1 = np.concatenate([bias1, np.zeros(self.in_channels)])
        kernel2, bias2 = fold_batch_norm(_value(self.conv2.kernel), self.bn2)
        if self.projection is None:
            merge = dirac(self.filters)
        else:
            kernel_p, bias_p = fold_batch_norm(_value(self.projection.kernel), self.projection_bn)
            merge, bias2 = _at_centre(kernel_p), bias2 + bias_p
        kernel2 = np.concatenate([kernel2, merge], axis=2)
        return [w.astype(np.float32) for w in (kernel1, bias1, kernel2, bias2)]
