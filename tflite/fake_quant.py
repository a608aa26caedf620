"""Fake-quantization layers for quantization-aware training of Keras 3 models (``tflite.qat``).

Jacob et al., "Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only
Inference" (CVPR 2018), sections 3 and 3.2; Krishnamoorthi, "Quantizing deep convolutional
networks for efficient inference: A whitepaper" (2018), sections 3.1-3.3. The int8 scheme is
TFLite's:

    weights      per output channel c (dense layers and the kernels inside kit layers: per
                 tensor), symmetric, narrow range:
                 s_c = max|w_c| / 127,   w~ = s_c * clip(round(w / s_c), -127, 127)
    activations  per tensor, asymmetric, a range [a, b] that holds 0:
                 s = (b - a) / 255,  z = -128 - round(a / s),
                 x~ = s * (clip(round(x / s) + z, -128, 127) - z)

Both go through TensorFlow's ``FakeQuantWithMinMaxVars`` / ``...PerChannel`` ops: their gradient is
the straight-through estimator (1 inside the range, 0 outside), and ``TFLiteConverter`` reads their
ranges as the quantization parameters of the int8 file, so the file computes what training saw.
Activation ranges are calibrated on sample data first (``ActivationQuantizer.observing``: the
min / max seen, as post-training quantization would set them), then follow exponential moving
averages of each training batch's min / max.

Batch norm is folded into the convolution before its weights are quantized, as the converter folds
it (Jacob et al., section 3.2): with the moving statistics mu, sigma^2 and gamma, beta,

    w_f = w * gamma / sqrt(sigma^2 + eps),   b_f = beta + (b - mu) * gamma / sqrt(sigma^2 + eps)

The statistics stay frozen during QAT (Krishnamoorthi, section 3.3: freezing them is what makes
fine-tuning under quantization converge; gamma and beta still train), so training and inference
compute the same folded convolution.
"""
import contextlib

import tensorflow as tf

from keras_layers.keras_api import keras, serializable
from keras_layers.protocol import KERNEL_ATTRIBUTES, is_kit_layer

NUM_BITS = 8
RANGE_FLOOR = 1e-8  # a kernel channel of zeros still gets a non-zero scale
FUSED_ACTIVATIONS = ("relu", "relu6", "linear")  # the activations TFLite fuses into a convolution


def quantize_kernel(kernel, depthwise=False, per_channel=True):
    """``kernel`` fake-quantized, symmetric, narrow range: per output channel (its last axis; a
    depthwise kernel's ``in * multiplier`` channels), or per tensor (``per_channel=False``: a dense
    kernel, which the converter transposes and can only quantize per tensor). The range is not
    differentiated."""
    shape = kernel.shape
    channels = tf.reshape(kernel, [*shape[:-2], -1]) if depthwise else kernel
    axes = list(range(channels.shape.rank - 1)) if per_channel else None
    bound = tf.stop_gradient(tf.maximum(tf.reduce_max(tf.abs(channels), axis=axes), RANGE_FLOOR))
    quantize = (tf.quantization.fake_quant_with_min_max_vars_per_channel if per_channel
                else tf.quantization.fake_quant_with_min_max_vars)
    quantized = quantize(channels, -bound, bound, num_bits=NUM_BITS, narrow_range=True)
    return tf.reshape(quantized, shape) if depthwise else quantized


@serializable
class ActivationQuantizer(keras.layers.Layer):
    """Per-tensor asymmetric int8 fake quantization of an activation (module docstring).

    ``observing`` (set by ``tflite.qat.calibrate``) widens the range to every value seen in
    inference mode; in training the range follows an exponential moving average (``momentum``) of
    each batch's min / max, unless ``train_range`` is False (a range calibration alone should set).
    """

    def __init__(self, momentum=0.99, train_range=True, **kwargs):
        super().__init__(**kwargs)
        self.momentum = float(momentum)
        self.train_range = bool(train_range)
        self.observing = False

    def build(self, input_shape):
        self.range_min = self.add_weight(name="range_min", shape=(), initializer="zeros", trainable=False)
        self.range_max = self.add_weight(name="range_max", shape=(), initializer="zeros", trainable=False)
        self.observed = self.add_weight(name="observed", shape=(), initializer="zeros", trainable=False)
        super().build(input_shape)

    def call(self, inputs, training=None):
        batch_min = tf.minimum(tf.reduce_min(inputs), 0.0)
        batch_max = tf.maximum(tf.reduce_max(inputs), 0.0)
        if self.observing:
            self._observe(batch_min, batch_max, tf.minimum(self.range_min, batch_min),
                          tf.maximum(self.range_max, batch_max))
        elif training and self.train_range:
            m = self.momentum
            self._observe(batch_min, batch_max, m * self.range_min + (1 - m) * batch_min,
                          m * self.range_max + (1 - m) * batch_max)
        return tf.quantization.fake_quant_with_min_max_vars(inputs, self.range_min, self.range_max,
                                                            num_bits=NUM_BITS, narrow_range=False)

    def _observe(self, batch_min, batch_max, new_min, new_max):
        """The range becomes (new_min, new_max), or the batch's own where nothing was seen before."""
        seen = self.observed > 0
        self.range_min.assign(tf.where(seen, new_min, batch_min))
        self.range_max.assign(tf.where(seen, new_max, batch_max))
        self.observed.assign(1.0)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "train_range": self.train_range}


def kernel_owners(layer):
    """(layer, attribute) of every convolution / dense kernel ``layer`` computes with: its own, then
    those of the layers it holds, in build order (``keras_layers.protocol.KERNEL_ATTRIBUTES``)."""
    layers = [layer, *layer._flatten_layers(include_self=False, recursive=True)]
    return [(owner, name) for owner in layers for name in KERNEL_ATTRIBUTES if getattr(owner, name, None) is not None]


def _storage(layer, name):
    """The instance attribute behind ``layer.<name>`` (Keras 3 serves ``kernel`` from ``_kernel``)."""
    return f"_{name}" if isinstance(getattr(type(layer), name, None), property) else name


@contextlib.contextmanager
def substituted(values):
    """Give each ``(layer, attribute)`` of ``values`` the tensor it maps to, for the duration.

    Set past Keras' attribute tracking, so that the layers' variables stay as they were."""
    saved = {}
    try:
        for (layer, name), value in values.items():
            storage = _storage(layer, name)
            saved[(layer, storage)] = layer.__dict__[storage]
            object.__setattr__(layer, storage, value)
        yield
    finally:
        for (layer, storage), value in saved.items():
            object.__setattr__(layer, storage, value)


def _is_depthwise(layer, name):
    return name == "depthwise_kernel" or isinstance(layer, keras.layers.DepthwiseConv2D)


@serializable
class QuantizedLayer(keras.layers.Layer):
    """``layer`` computing with fake-quantized kernels, the batch norm after it folded in, the
    activation after that applied, and its output fake-quantized (module docstring).

    Args:
        layer: a Conv2D, DepthwiseConv2D or Dense (or a subclass), its kernel quantized per output
            channel (Dense: per tensor); or a kit layer, the kernels of the layers it holds quantized
            per tensor.
        batch_norm: a BatchNormalization over ``layer``'s output channels, folded into its kernel
            (``layer`` must then be a convolution or dense layer with a linear activation).
        activation: a layer applied last, before the output quantizer (TFLite fuses ReLU / ReLU6).
        quantize_output: fake-quantize the output (False: a range the converter calibrates).
        train_range: whether the output range trains (``ActivationQuantizer``).
    Where a Keras layer's own activation is not one TFLite fuses (``FUSED_ACTIVATIONS``: a dense
    softmax), its pre-activation output is quantized too, as the int8 file holds it.
    """

    def __init__(self, layer, batch_norm=None, activation=None, quantize_output=True, train_range=True, **kwargs):
        super().__init__(**kwargs)
        self.layer = _deserialized(layer)
        self.batch_norm = _deserialized(batch_norm)
        self.activation = _deserialized(activation)
        self.quantize_output = bool(quantize_output)
        self.train_range = bool(train_range)
        own = None if is_kit_layer(self.layer) else getattr(self.layer, "activation", None)
        self.inner_activation = own if own is not None and own.__name__ not in FUSED_ACTIVATIONS else None
        self.inner_quantizer = ActivationQuantizer(name="pre_activation") if self.inner_activation else None
        self.output_quantizer = ActivationQuantizer(train_range=train_range, name="output") if quantize_output else None

    def build(self, input_shape):
        if not self.layer.built:
            self.layer.build(input_shape)
        shape = self.layer.compute_output_shape(input_shape)
        for sub in (self.batch_norm, self.activation, self.inner_quantizer, self.output_quantizer):
            if sub is not None and not sub.built:
                sub.build(shape)
        super().build(input_shape)

    def folded_weights(self):
        """The kernel of ``layer`` with the batch norm folded in, and the bias the folding adds
        after ``layer``'s own (None without a batch norm)."""
        kernel, norm = self.layer.kernel, self.batch_norm
        if norm is None:
            return kernel, None
        scale = norm.gamma if norm.scale else tf.ones_like(norm.moving_variance)
        scale = scale * tf.math.rsqrt(norm.moving_variance + norm.epsilon)
        offset = norm.beta if norm.center else tf.zeros_like(norm.moving_mean)
        bias = self.layer.bias if self.layer.use_bias else tf.zeros_like(norm.moving_mean)
        shift = offset + (bias - norm.moving_mean) * scale - (bias if self.layer.use_bias else 0.0)
        return kernel * tf.reshape(scale, kernel.shape[-2:] if _is_depthwise(self.layer, "kernel") else [-1]), shift

    def _per_channel(self, layer):
        """Per-channel weights for the wrapped convolution itself; per tensor for a dense kernel and
        for the kernels inside a kit layer (which may reshape or transpose them before use, where the
        converter cannot keep a channel axis)."""
        return layer is self.layer and not isinstance(layer, keras.layers.Dense) and not is_kit_layer(layer)

    def call(self, inputs, training=None):
        owners = kernel_owners(self.layer)
        kernels = {key: getattr(*key) for key in owners}
        shift = None
        if self.batch_norm is not None:
            kernels[(self.layer, "kernel")], shift = self.folded_weights()
        quantized = {(layer, name): quantize_kernel(value, _is_depthwise(layer, name), self._per_channel(layer))
                     for (layer, name), value in kernels.items()}
        if self.inner_activation is not None:
            quantized[(self.layer, "activation")] = keras.activations.linear
        with substituted(quantized):
            outputs = self.layer(inputs)
        if shift is not None:
            outputs = outputs + shift
        if self.inner_activation is not None:
            outputs = self.inner_activation(self.inner_quantizer(outputs, training=training))
        if self.activation is not None:
            outputs = self.activation(outputs)
        if self.output_quantizer is not None:
            outputs = self.output_quantizer(outputs, training=training)
        return outputs

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)

    def get_config(self):
        serialize = lambda layer: None if layer is None else keras.layers.serialize(layer)  # noqa: E731
        return {**super().get_config(), "layer": serialize(self.layer), "batch_norm": serialize(self.batch_norm),
                "activation": serialize(self.activation), "quantize_output": self.quantize_output,
                "train_range": self.train_range}


def _deserialized(layer):
    return keras.layers.deserialize(layer) if isinstance(layer, dict) else layer
