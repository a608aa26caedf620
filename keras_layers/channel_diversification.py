"""Channel Diversification Block (Patel and Wang, "A Discriminative Channel Diversification
Network for Image Classification", arXiv:2112.05861, 2021).

A light channel attention placed once, at the end of a backbone (before global pooling),
that favours spatially distinguishable channels (a clear peak rather than a flat response),
weighted by how strongly each channel is activated, and relates channels to one another at
the global level. For a feature map X of shape (H, W, C):

    a_c = mean_{h,w} X_{h,w,c}                        channel activation
    d_c = max_{h,w} X_{h,w,c} - a_c                   spatial distinguishability (peak over mean)
    p   = softmax_c(d)                                global competition between the channels
    w_c = C * p_c * sigmoid(gamma_c * a_c + beta_c)   attention (mean 1 when the gates are 1)
    Y   = X * (1 + w)                                 features kept, distinguishable ones boosted

gamma and beta (2C parameters, initialised to 1 and 0) are the only weights. The paper's
exact equations were not available to us; this is the mechanism its abstract describes.
"""
import tensorflow as tf

from keras_layers.keras_api import keras, serializable


@serializable
class ChannelDiversification(keras.layers.Layer):
    """Channel Diversification Block on a channels-last (batch, H, W, C) feature map."""

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.gamma = self.add_weight(name="gamma", shape=(channels,), initializer="ones")
        self.beta = self.add_weight(name="beta", shape=(channels,), initializer="zeros")
        self.feature_shape = tuple(int(d) for d in input_shape[1:])
        super().build(input_shape)

    def call(self, inputs):
        activation = tf.reduce_mean(inputs, axis=[1, 2], keepdims=True)
        distinguishability = tf.reduce_max(inputs, axis=[1, 2], keepdims=True) - activation
        channels = tf.cast(tf.shape(inputs)[-1], inputs.dtype)
        gate = tf.sigmoid(self.gamma * activation + self.beta)
        weights = channels * tf.nn.softmax(distinguishability, axis=-1) * gate
        return inputs * (1.0 + weights)

    def compute_output_shape(self, input_shape):
        return input_shape

    def count_macs(self):
        """The rescaling of the feature map (H*W*C) plus the per-channel gate (C)."""
        height, width, channels = self.feature_shape
        return height * width * channels + channels

    def get_config(self):
        return super().get_config()
