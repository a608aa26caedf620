"""Building blocks shared by the architectures (functional-API helpers), the plain stage record
and the argument checks every builder runs.

Batch normalization uses the ``keras.applications`` settings (epsilon 1e-3,
momentum 0.999) so that builders match those models layer for layer.

The block tables of all families use one vocabulary for their records' fields: ``channels``
(output channels), ``repeats`` (blocks in the stage), ``stride`` (of the first block, or of the
transition that enters the stage), ``expansion`` (ratio of a block's inner width to its input
width; the MobileNetV3 and GhostNet rows give the inner width itself, as their papers do, and
call it ``expanded``), ``kernel`` (depthwise / spatial kernel size).
"""
from typing import NamedTuple

from keras_layers.keras_api import keras
from keras_layers.wht import WHT1D
from models.pretrained import FAMILIES

layers = keras.layers


class Stage(NamedTuple):
    """A stage of a plain block table: ``repeats`` blocks of ``channels`` outputs, the first (or the
    transition that enters the stage) with ``stride``."""

    channels: int
    repeats: int
    stride: int


def check_builder_args(builder, input_shape, weights, include_top, classes, alpha=None):
    """Reject arguments the kit's builders do not support, with a one-line reason naming ``builder``.

    ``alpha`` (the width multiplier, where the builder has one) must be > 0. Only the builders of
    ``models.pretrained.FAMILIES`` take ``weights`` other than None.
    """
    if weights is not None and builder not in FAMILIES:
        raise ValueError(f"{builder} has no pretrained weights: expected weights=None (weights exist for "
                         f"{', '.join(FAMILIES)})")
    if input_shape is None or len(input_shape) != 3:
        raise ValueError(f"input_shape must be (height, width, channels), got {input_shape!r}")
    if min(input_shape[:2]) < 32:
        raise ValueError(f"input_shape {tuple(input_shape)} is too small: height and width must be >= 32")
    if input_shape[2] is not None and input_shape[2] < 1:
        raise ValueError(f"input_shape {tuple(input_shape)} has no channels: expected at least 1 (3 for RGB)")
    if include_top and classes < 1:
        raise ValueError(f"classes must be >= 1, got {classes}")
    if alpha is not None and not alpha > 0:
        raise ValueError(f"alpha (the width multiplier of {builder}) must be > 0, got {alpha!r}")


BN_KWARGS = {"epsilon": 1e-3, "momentum": 0.999}
# What a pointwise (1x1) layer of a block can be: the convolution, or the 1D block-WHT layer
# of Pan et al. that replaces it with one trainable threshold per transform coefficient.
POINTWISE = {
    "conv": lambda filters, name: layers.Conv2D(filters, 1, padding="same", use_bias=False, name=name),
    "wht1d": lambda filters, name: WHT1D(filters, name=name),
}


def make_divisible(value, divisor=8, min_value=None):
    """Round a channel count to a multiple of ``divisor``, losing at most 10%.

    The rule of the TF-slim MobileNet code that ``keras.applications`` reproduces.
    """
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def activation_layer(name, layer_name):
    """A named activation layer: ``relu6``, ``relu`` or ``linear`` (None)."""
    if name == "relu6":
        return layers.ReLU(6.0, name=layer_name)
    if name == "relu":
        return layers.ReLU(name=layer_name)
    raise ValueError(f"unknown activation {name!r}: expected 'relu6' or 'relu'")


def bn_activation(x, activation, name):
    """BatchNorm (``{name}_bn``) -> optional named activation (``{name}_{activation}``)."""
    x = layers.BatchNormalization(name=f"{name}_bn", **BN_KWARGS)(x)
    return x if activation is None else activation_layer(activation, f"{name}_{activation}")(x)


def conv_bn(x, filters, kernel, stride=1, activation=None, name="conv"):
    """Conv2D (no bias) -> BatchNorm -> optional activation."""
    x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False, name=name)(x)
    return bn_activation(x, activation, name)


def pointwise_bn(x, filters, kind="conv", activation=None, name="conv"):
    """A ``POINTWISE`` layer (1x1 convolution or WHT1D, no bias) -> BatchNorm -> optional activation."""
    if kind not in POINTWISE:
        raise ValueError(f"unknown pointwise layer {kind!r}: expected one of {', '.join(POINTWISE)}")
    return bn_activation(POINTWISE[kind](filters, name)(x), activation, name)


def depthwise_bn(x, kernel, stride=1, activation=None, name="depthwise"):
    """DepthwiseConv2D (no bias) -> BatchNorm -> optional activation."""
    x = layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False, name=name)(x)
    return bn_activation(x, activation, name)


def inverted_residual(x, expansion, filters, stride, kernel=3, activation="relu6", pointwise="conv",
                      name="block", taps=None):
    """MobileNetV2 inverted residual with linear bottleneck (Sandler et al., 2018).

    1x1 expansion by ``expansion`` (skipped when it is 1) -> k x k depthwise with
    ``stride`` -> linear 1x1 projection to ``filters``; identity shortcut when the
    shape is unchanged. ``pointwise`` picks the layer of both 1x1 steps (``POINTWISE``).
    ``taps`` (a ``models.taps.TapRecorder``) records the block's output and expansion.
    """
    in_channels = x.shape[-1]
    shortcut, expanded = x, None
    if expansion != 1:
        x = expanded = pointwise_bn(x, expansion * in_channels, pointwise, activation=activation,
                                    name=f"{name}_expand")
    x = depthwise_bn(x, kernel, stride, activation=activation, name=f"{name}_depthwise")
    x = pointwise_bn(x, filters, pointwise, name=f"{name}_project")
    if stride == 1 and in_channels == filters:
        x = layers.Add(name=f"{name}_add")([shortcut, x])
    if taps is not None:
        taps.block(shortcut, x, expanded=expanded)
    return x


def classifier_head(x, include_top, classes, pooling, classifier_activation):
    """The ``keras.applications`` head: pooling and, with ``include_top``, a Dense layer."""
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        return layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name="max_pool")(x)
    if pooling is not None:
        raise ValueError(f"pooling must be None, 'avg' or 'max', got {pooling!r}")
    return x
