"""Dilated (atrous) convolutions that reach TFLite as one dilated ``CONV_2D`` / ``DEPTHWISE_CONV_2D``.

Atrous convolution (Chen et al., "Rethinking Atrous Convolution for Semantic Image Segmentation",
2017) samples a k x k kernel ``rate`` pixels apart. Keras lowers a dilated convolution through
``tf.nn.convolution`` / ``tf.nn.depthwise_conv2d``, which rewrite it as
``SpaceToBatchND -> convolution -> BatchToSpaceND``; TFLite's converter keeps that triple (its
dilated-convolution fusion does not fire on these graphs), batch norm is then no longer folded into
the convolution, and XNNPACK runs neither ``SPACE_TO_BATCH_ND`` nor ``BATCH_TO_SPACE_ND``: every
dilated layer of an atrous backbone splits the graph and leaves XNNPACK, in float and int8 alike.

These layers compute the same convolution with the one TensorFlow op that carries the dilation as an
attribute (``Conv2D`` / ``DepthwiseConv2dNative`` with ``dilations``), which converts to the dilated
TFLite builtin, and keep the Keras layers' weights, configs and outputs (bit-identical in float). The
gradient of ``DepthwiseConv2dNative`` ignores ``dilations`` on CPU, so the depthwise layer takes its
gradient from ``tf.nn.depthwise_conv2d`` (space-to-batch), whose forward pass is the same function;
the op's dilated kernel is float32 only, so other dtypes (float64 gradient checks, mixed precision)
compute through ``tf.nn.depthwise_conv2d`` altogether.
"""
import tensorflow as tf

from keras_layers.keras_api import keras, serializable


def _depthwise_kernel(layer):
    """The depthwise kernel (``kernel`` in Keras 3, ``depthwise_kernel`` in tf_keras)."""
    return layer.depthwise_kernel if hasattr(layer, "depthwise_kernel") else layer.kernel


def _finish(layer, outputs):
    if layer.use_bias:
        outputs = tf.nn.bias_add(outputs, tf.cast(layer.bias, outputs.dtype))
    return layer.activation(outputs) if layer.activation is not None else outputs


def _check_dilated(layer):
    if layer.data_format != "channels_last" or max(layer.strides) > 1:
        raise ValueError(f"{layer.__class__.__name__} {layer.name!r} needs channels_last data and stride 1 "
                         f"(strides {layer.strides}, {layer.data_format})")


@serializable
class DilatedConv2D(keras.layers.Conv2D):
    """``keras.layers.Conv2D`` (stride 1, channels last) written as one dilated ``Conv2D`` op."""

    def call(self, inputs):
        _check_dilated(self)
        kernel = tf.cast(self.kernel, inputs.dtype)
        outputs = tf.nn.conv2d(inputs, kernel, strides=1, padding=self.padding.upper(),
                               dilations=list(self.dilation_rate))
        return _finish(self, outputs)


@serializable
class DilatedDepthwiseConv2D(keras.layers.DepthwiseConv2D):
    """``keras.layers.DepthwiseConv2D`` (stride 1, channels last) written as one dilated
    ``DepthwiseConv2dNative`` op, with the space-to-batch gradient."""

    def call(self, inputs):
        _check_dilated(self)
        padding, rate = self.padding.upper(), list(self.dilation_rate)
        kernel = tf.cast(tf.convert_to_tensor(_depthwise_kernel(self)), inputs.dtype)
        if inputs.dtype != tf.float32:
            return _finish(self, tf.nn.depthwise_conv2d(inputs, kernel, [1, 1, 1, 1], padding, dilations=rate))

        @tf.custom_gradient
        def depthwise(x, kernel):
            def grad(upstream):
                with tf.GradientTape() as tape:
                    tape.watch([x, kernel])
                    reference = tf.nn.depthwise_conv2d(x, kernel, [1, 1, 1, 1], padding, dilations=rate)
                return tape.gradient(reference, [x, kernel], output_gradients=upstream)

            return tf.raw_ops.DepthwiseConv2dNative(input=x, filter=kernel, strides=[1, 1, 1, 1], padding=padding,
                                                    dilations=[1, *rate, 1]), grad

        return _finish(self, depthwise(inputs, kernel))
