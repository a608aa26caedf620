"""Hard activations and hard-sigmoid squeeze-excite (Howard et al., "Searching for
MobileNetV3", ICCV 2019, section 5.2; Hu et al., "Squeeze-and-Excitation Networks", 2018).

    hard_sigmoid(x) = relu6(x + 3) / 6        hard_swish(x) = x * hard_sigmoid(x)

Written with TensorFlow ops so they build under both Keras generations (tf_keras has no
``hard_swish`` activation, and its ``hard_sigmoid`` is a different curve) and convert to
the TFLite builtins HARD_SWISH / ADD, RELU6, MUL.
"""
import math

import tensorflow as tf

from keras_layers.keras_api import keras, serializable


def hard_sigmoid(x):
    return tf.nn.relu6(x + 3.0) * (1.0 / 6.0)


@serializable
class HardSigmoid(keras.layers.Layer):
    """``relu6(x + 3) / 6``, the piecewise-linear sigmoid of MobileNetV3."""

    def call(self, inputs):
        return hard_sigmoid(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape


@serializable
class HardSwish(keras.layers.Layer):
    """``x * relu6(x + 3) / 6``, the piecewise-linear swish of MobileNetV3."""

    def call(self, inputs):
        return inputs * hard_sigmoid(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape


@serializable
class SqueezeExcite(keras.layers.Layer):
    """Squeeze-and-excite with a hard-sigmoid gate, as in MobileNetV3 and GhostNet.

    Global average pool -> 1x1 conv to ``squeeze_channels`` (bias) -> ReLU -> 1x1 conv back
    to the input channels (bias) -> hard sigmoid -> rescale the input. Its cost is that of
    the two 1x1 convolutions on the pooled vector (the rescaling is not counted, as for
    batch norm and activations in ``models.profile``).
    """

    def __init__(self, squeeze_channels, **kwargs):
        super().__init__(**kwargs)
        self.squeeze_channels = int(squeeze_channels)
        self.reduce = keras.layers.Conv2D(self.squeeze_channels, 1, name="reduce", dtype=self.dtype_policy)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.expand = keras.layers.Conv2D(channels, 1, name="expand", dtype=self.dtype_policy)
        self.reduce.build((None, 1, 1, channels))
        self.expand.build((None, 1, 1, self.squeeze_channels))
        super().build(input_shape)

    def call(self, inputs):
        x = tf.reduce_mean(inputs, axis=[1, 2], keepdims=True)
        x = self.expand(tf.nn.relu(self.reduce(x)))
        return inputs * hard_sigmoid(x)

    def compute_output_shape(self, input_shape):
        return input_shape

    def count_macs(self):
        return 2 * math.prod(self.reduce.kernel.shape)

    def get_config(self):
        return {**super().get_config(), "squeeze_channels": self.squeeze_channels}
