"""Small networks with nonlocal PIDE blocks (Bohn, Griebel, Kannan: "Deep Neural Networks and
PIDE discretizations", 2022): MobileNetV2-style inverted residuals for local features, and a
residual PIDE step (``keras_layers.pide``) after the stages that ask for one, so that every
pixel of the map sees every other one, at a cost linear in height + width per pixel.

Each row of a table is a stage: expansion t, output channels c, repeats n, stride s of the first
block (MobileNetV2's notation), and whether a PIDE block follows it. ``operator`` picks the
nonlocal operator of every PIDE block (``OPERATORS``; None drops them, the local baseline).
The classifier ends in a 1x1 conv and the ``keras.applications`` head; the segmenter decodes
its stride-8 bottleneck with bilinear upsampling and encoder skips to per-pixel softmax.
"""
from typing import NamedTuple

from keras_layers.keras_api import keras
from keras_layers.pide import FractionalLaplacian, GlobalWeightedLaplacian, InverseFractionalLaplacian
from models.blocks import (check_builder_args, classifier_head, conv_bn, depthwise_bn, inverted_residual,
                           make_divisible)

layers = keras.layers

OPERATORS = {
    "fractional": FractionalLaplacian,
    "inverse": InverseFractionalLaplacian,
    "weighted": GlobalWeightedLaplacian,
}


class Stage(NamedTuple):
    """``repeats`` inverted residuals (expansion, channels, stride of the first), then a PIDE block if ``pide``."""

    expansion: int
    channels: int
    repeats: int
    stride: int
    pide: bool


#                  t   c  n  s  pide
PIDE_CLASSIFIER = (
    Stage(1, 16, 1, 1, False),
    Stage(6, 24, 2, 2, True),
    Stage(6, 32, 2, 2, True),
    Stage(6, 64, 2, 2, False),
)

#                  t   c  n  s  pide     (output stride 8)
PIDE_SEGMENTER = (
    Stage(1, 16, 1, 1, False),
    Stage(6, 24, 2, 2, False),
    Stage(6, 32, 2, 2, False),
    Stage(6, 64, 2, 1, True),
)


def _check_operator(operator):
    if operator is not None and operator not in OPERATORS:
        raise ValueError(f"operator must be None or one of {', '.join(OPERATORS)}, got {operator!r}")


def _encoder(inputs, stages, alpha, operator):
    """Stem (3x3 stride 2) and the stages; returns the output and the last map of every stride."""
    x = conv_bn(inputs, make_divisible(32 * alpha), 3, stride=2, activation="relu6", name="stem")
    stride, features = 2, {}
    for stage_id, stage in enumerate(stages):
        for repeat in range(stage.repeats):
            x = inverted_residual(x, stage.expansion, make_divisible(stage.channels * alpha),
                                  stage.stride if repeat == 0 else 1, name=f"stage{stage_id}_block{repeat}")
        if stage.pide and operator is not None:
            x = OPERATORS[operator](name=f"stage{stage_id}_pide")(x)
        stride *= stage.stride
        features[stride] = x
    return x, features


def pide_classifier(input_shape=(32, 32, 3), alpha=1.0, include_top=True, weights=None, classes=10, pooling=None,
                    classifier_activation="softmax", operator="fractional", stages=PIDE_CLASSIFIER,
                    last_filters=256, name="pide_classifier"):
    """Build the PIDE classifier (``keras.applications`` signature).

    Args:
        alpha: width multiplier of every stage (and of ``last_filters`` when > 1).
        operator: nonlocal operator of the PIDE blocks (``OPERATORS``), or None for none.
        stages: the stage table (default ``PIDE_CLASSIFIER``).
        last_filters: channels of the 1x1 conv before the head.
    """
    check_builder_args("pide_classifier", input_shape, weights, include_top, classes, alpha)
    _check_operator(operator)
    inputs = keras.Input(shape=input_shape)
    x, _ = _encoder(inputs, stages, alpha, operator)
    x = conv_bn(x, make_divisible(last_filters * max(alpha, 1.0)), 1, activation="relu6", name="last")
    return keras.Model(inputs, classifier_head(x, include_top, classes, pooling, classifier_activation), name=name)


def pide_segmenter(input_shape=(64, 64, 3), alpha=1.0, weights=None, classes=4, classifier_activation="softmax",
                   operator="fractional", stages=PIDE_SEGMENTER, name="pide_segmenter"):
    """Build the PIDE segmenter: per-pixel class probabilities at the input resolution.

    The encoder is ``_encoder`` over ``stages`` (default ``PIDE_SEGMENTER``, PIDE block at the
    stride-8 bottleneck). Each decoder step upsamples x2 (bilinear), concatenates the encoder
    map of that stride and fuses with a 1x1 conv and a 3x3 depthwise conv (BN, ReLU6); 1x1
    logits at stride 2 are upsampled to the input size. Height and width must be multiples of
    the encoder's output stride.
    """
    check_builder_args("pide_segmenter", input_shape, weights, True, classes, alpha)
    _check_operator(operator)
    output_stride = 2
    for stage in stages:
        output_stride *= stage.stride
    if input_shape[0] % output_stride or input_shape[1] % output_stride:
        raise ValueError(f"input_shape {tuple(input_shape)}: height and width must be multiples of the output "
                         f"stride {output_stride}")
    inputs = keras.Input(shape=input_shape)
    x, features = _encoder(inputs, stages, alpha, operator)
    stride = output_stride
    while stride > 2:
        stride //= 2
        skip = features[stride]
        x = layers.UpSampling2D(2, interpolation="bilinear", name=f"decoder{stride}_up")(x)
        x = layers.Concatenate(name=f"decoder{stride}_concat")([x, skip])
        x = conv_bn(x, skip.shape[-1], 1, activation="relu6", name=f"decoder{stride}_fuse")
        x = depthwise_bn(x, 3, activation="relu6", name=f"decoder{stride}_depthwise")
    x = layers.Conv2D(classes, 1, name="logits")(x)
    x = layers.UpSampling2D(2, interpolation="bilinear", name="logits_up")(x)
    return keras.Model(inputs, layers.Activation(classifier_activation, name="predictions")(x), name=name)
