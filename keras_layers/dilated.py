"""Dilated (atrous) convolutions that reach TFLite as one dilated ``CONV_2D`` / ``DEPTHWISE_CONV_2D``.

Atrous convolution (Chen et al., "Rethinking Atrous Convolution for Semantic Image Segmentation",
2017) samples a k x k kernel ``rate`` pixels apart. Keras lowers a dilated convolution through
``tf.nn.convolution`` / ``tf.nn.depthwise_conv2d``, which rewrite it as
``SpaceToBatchND -> convolution -> BatchToSpaceND``; TFLite's converter keeps that triple when the
batch size is not fixed (its dilated-convolution fusion fires only on a static batch), batch norm is
then no longer folded into the convolution, and XNNPACK runs neither ``SPACE_TO_BATCH_ND`` nor
``BATCH_TO_SPACE_ND``: every dilated layer of an atrous backbone splits the graph and leaves
XNNPACK, in float and int8 alike.

These layers compute the same convolution with the one TensorFlow op that carries the dilation as an
attribute (``Conv2D`` / ``DepthwiseConv2dNative`` with ``dilations``), which converts to the dilated
TFLite builtin, and keep the Keras layers' weights, configs and outputs. TensorFlow's CPU kernels
without oneDNN (an AMD CPU, or ``TF_ENABLE_ONEDNN_OPTS=0``) have no dilated gradient for either op
and no dilated forward pass for ``DepthwiseConv2dNative``, so:

- both layers take their gradient from the space-to-batch formulation (``tf.nn.convolution`` /
  ``tf.nn.depthwise_conv2d``), the same function;
- the depthwise layer computes through the space-to-batch formulation where this machine's
  TensorFlow cannot run the dilated op, and traces the single op inside ``single_dilated_ops()``,
  which the kit's converters enter: converting runs no TensorFlow kernel, so the file has the one
  dilated builtin whatever machine converts it;
- the ops' dilated kernels are float32 only, so other dtypes (float64 gradient checks, mixed
  precision) compute through the space-to-batch formulation altogether.
"""
import contextlib
import contextvars
import functools

import tensorflow as tf

from keras_layers.keras_api import keras, serializable

_TRACING_FOR_CONVERSION = contextvars.ContextVar("tracing_for_conversion", default=False)


@contextlib.contextmanager
def single_dilated_ops():
    """Trace the dilated layers as their single dilated op, for a converter (which runs no
    TensorFlow kernel), even where this machine's TensorFlow has no kernel for it."""
    token = _TRACING_FOR_CONVERSION.set(True)
    try:
        yield
    finally:
        _TRACING_FOR_CONVERSION.reset(token)


@functools.cache
def _dilated_depthwise_runs_here():
    """Whether this machine's TensorFlow has a dilated ``DepthwiseConv2dNative`` kernel (oneDNN has one)."""
    with tf.init_scope():
        try:
            tf.raw_ops.DepthwiseConv2dNative(input=tf.zeros((1, 3, 3, 1)), filter=tf.zeros((2, 2, 1, 1)),
                                             strides=[1, 1, 1, 1], padding="VALID", dilations=[1, 2, 2, 1])
        except (tf.errors.UnimplementedError, tf.errors.InvalidArgumentError):
            return False
    return True


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


def _single_op_with_space_to_batch_gradient(single_op, space_to_batch, x, kernel):
    """``single_op(x, kernel)`` whose gradient is that of ``space_to_batch``, the same function."""
    @tf.custom_gradient
    def convolve(x, kernel):
        def grad(upstream):
            with tf.GradientTape() as tape:
                tape.watch([x, kernel])
                reference = space_to_batch(x, kernel)
            return tape.gradient(reference, [x, kernel], output_gradients=upstream)

        return single_op(x, kernel), grad

    return convolve(x, kernel)


@serializable
class DilatedConv2D(keras.layers.Conv2D):
    """``keras.layers.Conv2D`` (stride 1, channels last) written as one dilated ``Conv2D`` op, with
    the space-to-batch gradient."""

    def call(self, inputs):
        _check_dilated(self)
        padding, rate = self.padding.upper(), list(self.dilation_rate)
        kernel = tf.cast(self.kernel, inputs.dtype)

        def space_to_batch(x, kernel):
            return tf.nn.convolution(x, kernel, padding=padding, dilations=rate)

        if inputs.dtype != tf.float32:
            return _finish(self, space_to_batch(inputs, kernel))

        def single_op(x, kernel):
            return tf.nn.conv2d(x, kernel, strides=1, padding=padding, dilations=rate)

        return _finish(self, _single_op_with_space_to_batch_gradient(single_op, space_to_batch, inputs, kernel))


@serializable
class DilatedDepthwiseConv2D(keras.layers.DepthwiseConv2D):
    """``keras.layers.DepthwiseConv2D`` (stride 1, channels last) written as one dilated
    ``DepthwiseConv2dNative`` op, with the space-to-batch gradient."""

    def call(self, inputs):
        _check_dilated(self)
        padding, rate = self.padding.upper(), list(self.dilation_rate)
        kernel = tf.cast(tf.convert_to_tensor(_depthwise_kernel(self)), inputs.dtype)

        def space_to_batch(x, kernel):
            return tf.nn.depthwise_conv2d(x, kernel, [1, 1, 1, 1], padding, dilations=rate)

        single_op_runs = _TRACING_FOR_CONVERSION.get() or _dilated_depthwise_runs_here()
        if inputs.dtype != tf.float32 or not single_op_runs:
            return _finish(self, space_to_batch(inputs, kernel))

        def single_op(x, kernel):
            return tf.raw_ops.DepthwiseConv2dNative(input=x, filter=kernel, strides=[1, 1, 1, 1], padding=padding,
                                                    dilations=[1, *rate, 1])

        return _finish(self, _single_op_with_space_to_batch_gradient(single_op, space_to_batch, inputs, kernel))
