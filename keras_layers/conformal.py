"""ConformalLayers (Sousa, Fernandes and Vasconcelos, "ConformalLayers: A non-linear sequential
neural network with associative layers", SIBGRAPI 2021).

A sequence of convolutions (no bias), average pooling, dropout (the identity at inference) and
the ReSPro activation collapses into ONE operator, so the cost of inference does not grow with
depth.

ReSPro (Reflection, Scaling, Projection). A point x of R^n (n: all the features of one sample)
has the conformal embedding X = x + e_o + 1/2 |x|^2 e_inf. ReSPro is the linear map of the
conformal space that keeps the Euclidean part and sets the e_o coefficient to
alpha/2 X_o + 1/alpha X_inf, followed by the projection back to R^n (division by that coefficient):

    f(x) = x / (alpha/2 + |x|^2 / (2 alpha)) = 2 alpha x / (alpha^2 + |x|^2)

i.e. the stereographic projection of x onto the sphere of radius alpha about the origin (an
inversion: the reflection in a sphere), scaled by 1/alpha and projected orthogonally onto R^n.
|f(x)| <= 1, with equality on the sphere |x| = alpha; f(x) -> 0 as |x| -> 0 or infinity.

Associativity. Keep each point in homogeneous coordinates (x, w) and project only at the end,
as the paper does. A linear layer L acts on the Euclidean part, (x, w) -> (Lx, w); ReSPro acts on
the homogeneous coordinate only, (x, w) -> (x, alpha/2 w + |x|^2 / (2 alpha)), a rank-3 tensor (a
quadratic form) in the conformal coordinates. (Projecting after every activation, as ReSPro on its
own does, is a different function, and one that does not compose.) With P_k the product of the linear layers before the
k-th ReSPro and P the product of all of them, a network of D activations is

    y = P x,    w = c w_0 + x^T Q x,    output = y / w
    c = prod_k alpha_k / 2,    Q = sum_k beta_k P_k^T P_k,    beta_k = 1 / (2 alpha_k) prod_{j>k} alpha_j / 2

The input enters as the point x / |x| on the unit sphere (w_0 = |x|, as in the reference
implementation). Valid convolutions and average pooling compose into one valid convolution
(kernel size 1 + sum_i (k_i - 1) s_1 ... s_{i-1}, stride the product of the strides s_i), and Q is
a dense n x n matrix. The composed operator costs that convolution (its kernel grows with depth as
its output shrinks) plus n^2 multiply-adds for x^T Q x, however deep the sequence: it beats the
layer by layer evaluation when the layers cost more than that (deep or wide sequences on small
inputs).

alpha: fixed per activation, or (``alpha=None``, automatic, as in the reference implementation) an
upper bound of the norm of the activation's input when the previous activation's output has norm
<= 1: Young's convolution inequality |k * x|_2 <= |k|_1 |x|_2 bounds each convolution by the
Frobenius norm of the matrix of its per-channel-pair kernel L1 norms (the reference takes the
largest column sum of that matrix, which is not a bound for several input channels); average
pooling and dropout (at inference) do not increase the norm.

``ConformalLayers`` evaluates layer by layer while training (exact gradients, dropout active) and
through the composed operator at inference (``inference="composed"``; ``"layers"`` keeps the layer
by layer evaluation). The composed operator is stored as non-trainable weights: it is computed when
the layer is built and by ``compose()``, which must be called after the weights change (training,
``set_weights``); the ``Recompose`` callback does it before every evaluation and prediction in
``fit``/``evaluate``/``predict``.
"""
import math

import numpy as np
import tensorflow as tf

from keras_layers.keras_api import keras, serializable
from keras_layers.protocol import Composable, implements

INFERENCE_MODES = ("composed", "layers")


def _squared_norm(x, axis, keepdims=False):
    """Sum of x^2 over ``axis``, as x * x: TFLite's SQUARE has no int8 kernel."""
    return tf.reduce_sum(x * x, axis=axis, keepdims=keepdims)


def _project(x, homogeneous):
    """x / w per sample, as x * (1 / w): TFLite's int8 DIV over a whole feature map is slow."""
    return x * tf.reshape(1.0 / homogeneous, [-1, 1, 1, 1])


@serializable
class ReSPro(keras.layers.Layer):
    """The ReSPro activation f(x) = 2 alpha x / (alpha^2 + |x|^2), |x| over all features of a sample.

    Inside ``ConformalLayers`` it acts on the homogeneous coordinate (module docstring) and
    ``alpha=None`` is the automatic bound; on its own, ``alpha=None`` means 1 (the bound for inputs
    of norm <= 1).
    """

    def __init__(self, alpha=None, **kwargs):
        super().__init__(**kwargs)
        if alpha is not None and not alpha > 0:
            raise ValueError(f"ReSPro alpha must be positive or None (automatic), got {alpha}")
        self.alpha = None if alpha is None else float(alpha)

    def call(self, inputs):
        alpha = 1.0 if self.alpha is None else self.alpha
        squared_norm = _squared_norm(inputs, axis=list(range(1, len(inputs.shape))), keepdims=True)
        return inputs * (2.0 * alpha / (alpha * alpha + squared_norm))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


def _check_composable(layer):
    """Raise unless ``layer`` is ReSPro or a linear map that composes exactly (module docstring)."""
    if isinstance(layer, (ReSPro, keras.layers.Dropout)):
        return
    config = layer.get_config()
    convolution = (isinstance(layer, keras.layers.Conv2D)
                   and not isinstance(layer, (keras.layers.DepthwiseConv2D, keras.layers.Conv2DTranspose))
                   and not config["use_bias"] and config["activation"] == "linear" and config["groups"] == 1
                   and tuple(config["dilation_rate"]) == (1, 1))
    if not (convolution or isinstance(layer, keras.layers.AveragePooling2D)):
        raise ValueError(f"ConformalLayers cannot compose {type(layer).__name__} {layer.name!r}: expected "
                         "Conv2D (use_bias=False, no activation, groups=1, no dilation), AveragePooling2D, "
                         "Dropout or ReSPro")
    if config["padding"] != "valid" or config.get("data_format") == "channels_first":
        raise ValueError(f"ConformalLayers needs padding='valid' and channels_last in {layer.name!r}, got "
                         f"padding={config['padding']!r}, data_format={config.get('data_format')!r}")


def _young_bound(kernel):
    """Upper bound of |conv(x)|_2 / |x|_2 for a (kh, kw, C_in, C_out) kernel (module docstring)."""
    return tf.sqrt(tf.reduce_sum(tf.square(tf.reduce_sum(tf.abs(kernel), axis=[0, 1]))))


def _as_convolution(layer, channels):
    """(kernel, strides) of ``layer`` as a valid convolution on ``channels`` channels; None for dropout."""
    if isinstance(layer, keras.layers.Conv2D):
        return layer.get_weights()[0].astype(np.float64), tuple(layer.strides)
    if isinstance(layer, keras.layers.AveragePooling2D):
        height, width = layer.pool_size
        window = np.full((height, width, 1, 1), 1.0 / (height * width))
        return window * np.eye(channels), tuple(layer.strides)
    return None


def _chain(first, second):
    """The valid convolution equal to ``first`` followed by ``second``, each (kernel, strides)."""
    (k1, s1), (k2, s2) = first, second
    size = [(k2.shape[axis] - 1) * s1[axis] + k1.shape[axis] for axis in (0, 1)]
    kernel = np.zeros((*size, k1.shape[2], k2.shape[3]))
    for i in range(k2.shape[0]):
        for j in range(k2.shape[1]):
            kernel[i * s1[0]:i * s1[0] + k1.shape[0], j * s1[1]:j * s1[1] + k1.shape[1]] += k1 @ k2[i, j]
    return kernel, (s1[0] * s2[0], s1[1] * s2[1])


def _add_gram(quadratic, kernel, strides, weight):
    """quadratic += weight P^T P, P the valid convolution (kernel, strides), quadratic of shape (H, W, C) * 2."""
    height, width = quadratic.shape[:2]
    kh, kw = kernel.shape[:2]
    gram = weight * np.einsum("abcm,defm->abcdef", kernel, kernel)
    for y in range(0, height - kh + 1, strides[0]):
        for x in range(0, width - kw + 1, strides[1]):
            quadratic[y:y + kh, x:x + kw, :, y:y + kh, x:x + kw, :] += gram


@serializable
class ConformalLayers(keras.layers.Layer):
    """A sequence of Conv2D (no bias, valid), AveragePooling2D (valid), Dropout and ReSPro that
    composes into one operator at inference (module docstring), on (batch, H, W, C) inputs.

    Args:
        layers: the sequence, e.g. ``[Conv2D(32, 3, use_bias=False), ReSPro(), AveragePooling2D()]``.
        inference: ``"composed"`` (one convolution plus a quadratic form) or ``"layers"`` (layer by
            layer, as in training).
    """

    def __init__(self, layers, inference="composed", **kwargs):
        super().__init__(**kwargs)
        if inference not in INFERENCE_MODES:
            raise ValueError(f"ConformalLayers inference must be one of {', '.join(INFERENCE_MODES)}, "
                             f"got {inference!r}")
        for layer in layers:
            _check_composable(layer)
        self.sequence = list(layers)
        self.inference = inference

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(f"ConformalLayers {self.name!r} expects (batch, H, W, C) inputs, got shape {input_shape}")
        shape = tuple(input_shape)
        self.feature_shapes = [shape[1:]]
        for layer in self.sequence:
            if not layer.built:
                layer.build(shape)
            shape = tuple(layer.compute_output_shape(shape))
            self.feature_shapes.append(shape[1:])
        if self.inference == "composed":
            kernel, self.strides, scale, quadratic = self._composition()
            for name, value in (("composed_kernel", kernel), ("homogeneous_scale", scale), ("quadratic", quadratic)):
                setattr(self, name, self.add_weight(name=name, shape=np.shape(value), initializer="zeros",
                                                    trainable=False))
            self._assign(kernel, scale, quadratic)
        super().build(input_shape)

    def _alphas(self):
        """alpha of each ReSPro, in order: its own, or the automatic bound (module docstring)."""
        alphas, bound = [], 1.0
        for layer in self.sequence:
            if isinstance(layer, ReSPro):
                alphas.append(bound if layer.alpha is None else layer.alpha)
                bound = 1.0
            elif isinstance(layer, keras.layers.Conv2D):
                bound = bound * _young_bound(layer.kernel)
        return alphas

    def _products(self):
        """(P, [(P_k, alpha_k) at each ReSPro]), each P as a valid convolution (kernel, strides)."""
        alphas = iter(float(alpha) for alpha in self._alphas())
        product = (np.eye(self.feature_shapes[0][-1])[None, None], (1, 1))
        terms = []
        for layer in self.sequence:
            if isinstance(layer, ReSPro):
                terms.append((product, next(alphas)))
            elif (convolution := _as_convolution(layer, product[0].shape[-1])) is not None:
                product = _chain(product, convolution)
        return product, terms

    def _composition(self):
        """(kernel and strides of P, c, Q as an (n, n) matrix) from the current weights, in float64."""
        (kernel, strides), terms = self._products()
        quadratic, scale = np.zeros(self.feature_shapes[0] * 2), 1.0
        for (kernel_k, strides_k), alpha in reversed(terms):
            _add_gram(quadratic, kernel_k, strides_k, scale / (2 * alpha))
            scale *= alpha / 2
        n = math.prod(self.feature_shapes[0])
        return kernel, strides, scale, quadratic.reshape(n, n)

    def _assign(self, kernel, scale, quadratic):
        for variable, value in ((self.composed_kernel, kernel), (self.homogeneous_scale, scale),
                                (self.quadratic, quadratic)):
            variable.assign(tf.cast(value, variable.dtype))

    def compose(self):
        """Recompute the composed operator from the current weights (after training)."""
        if self.inference == "composed":
            kernel, _, scale, quadratic = self._composition()
            self._assign(kernel, scale, quadratic)

    def call(self, inputs, training=None):
        if training or self.inference == "layers":
            return self._call_layers(inputs, training)
        flat = tf.reshape(inputs, [-1, self.quadratic.shape[0]])
        homogeneous = (self.homogeneous_scale * tf.sqrt(_squared_norm(flat, axis=-1))
                       + tf.reduce_sum(flat * tf.matmul(flat, self.quadratic), axis=-1))
        outputs = tf.nn.conv2d(inputs, self.composed_kernel, self.strides, "VALID")
        return _project(outputs, homogeneous)

    def _call_layers(self, inputs, training):
        alphas = iter(self._alphas())
        x = inputs
        homogeneous = tf.sqrt(_squared_norm(x, axis=[1, 2, 3]))
        for layer in self.sequence:
            if isinstance(layer, ReSPro):
                alpha = next(alphas)
                homogeneous = alpha / 2 * homogeneous + _squared_norm(x, axis=[1, 2, 3]) / (2 * alpha)
            else:
                x = layer(x, training=training)
        return _project(x, homogeneous)

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.sequence:
            shape = tuple(layer.compute_output_shape(shape))
        return shape

    def count_macs(self, inference=None):
        """MACs at batch 1 of the composed operator (one convolution, |x| and x^T Q x) or, with
        ``inference="layers"``, of the layer by layer evaluation (convolutions, |x| and each |x_k|^2)."""
        n = math.prod(self.feature_shapes[0])
        if (inference or self.inference) == "composed":
            kernel = self._products()[0][0]
            return math.prod(self.feature_shapes[-1][:-1]) * math.prod(kernel.shape) + n * n + 2 * n
        macs = n
        for layer, shape in zip(self.sequence, self.feature_shapes[1:]):
            if isinstance(layer, keras.layers.Conv2D):
                macs += math.prod(shape[:-1]) * math.prod(layer.kernel.shape)
            elif isinstance(layer, ReSPro):
                macs += math.prod(shape)
        return macs

    def get_config(self):
        configs = [keras.layers.serialize(layer) for layer in self.sequence]
        unbuilt = [{key: value for key, value in config.items() if key != "build_config"} for config in configs]
        return {**super().get_config(), "layers": unbuilt, "inference": self.inference}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["layers"] = [keras.layers.deserialize(layer) for layer in config["layers"]]
        return cls(**config)


class Recompose(keras.callbacks.Callback):
    """Recompose every layer of the model with a composed operator (``ConformalLayers``: the
    ``Composable`` hook of ``keras_layers.protocol``) before it is evaluated or predicts, and after
    training, so that the composed operator follows the trained weights."""

    def _recompose(self, logs=None):
        stack = list(self.model.layers)
        while stack:
            layer = stack.pop()
            if implements(layer, Composable):
                layer.compose()
            stack.extend(getattr(layer, "layers", []))

    on_test_begin = on_predict_begin = on_train_end = _recompose
