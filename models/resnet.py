"""ResNet (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016), written as
stage tables plus one builder.

Each row of a table is a stage: block kind (``basic``: two 3x3 convolutions; ``bottleneck``:
1x1, 3x3, 1x1, the 3x3 a quarter of the output width), repeats, output channels, stride of the
first block. ImageNet networks (Table 1 of the paper) use the 7x7/2 stem and max pooling;
CIFAR networks (section 4.2: 6n+2 layers, widths 16/32/64) use one 3x3 convolution.

Shortcuts where the shape changes: option ``"B"`` (1x1 projection + BN; the ImageNet models)
or option ``"A"`` (parameter-free: subsample by the stride, zero-pad the new channels; the
paper's CIFAR models, whose counts are 0.27M for ResNet-20 and 0.85M for ResNet-56).

ResNet-50 follows ``keras.applications.ResNet50`` layer for layer (stride on the first 1x1,
biased convolutions, BN epsilon 1.001e-5, explicit stem padding), so parameter counts are equal.
"""
from typing import NamedTuple

from keras_layers.keras_api import keras
from models.blocks import check_builder_args, classifier_head
from models.pretrained import load_weights

layers = keras.layers

BN_EPSILON = 1.001e-5  # keras.applications.ResNet50


class Stage(NamedTuple):
    """One stage: ``repeats`` blocks of ``kind`` with ``channels`` outputs, the first with ``stride``
    (a block's inner convolutions are ``channels // BOTTLENECK[kind]`` wide)."""

    kind: str
    repeats: int
    channels: int
    stride: int


#                kind          n   c    s
RESNET_20 = (Stage("basic", 3, 16, 1), Stage("basic", 3, 32, 2), Stage("basic", 3, 64, 2))
RESNET_56 = (Stage("basic", 9, 16, 1), Stage("basic", 9, 32, 2), Stage("basic", 9, 64, 2))
RESNET_18 = (
    Stage("basic", 2, 64, 1),
    Stage("basic", 2, 128, 2),
    Stage("basic", 2, 256, 2),
    Stage("basic", 2, 512, 2),
)
RESNET_50 = (
    Stage("bottleneck", 3, 256, 1),
    Stage("bottleneck", 4, 512, 2),
    Stage("bottleneck", 6, 1024, 2),
    Stage("bottleneck", 3, 2048, 2),
)
BOTTLENECK = {"basic": 1, "bottleneck": 4}  # output channels / inner channels of a block


def _conv_bn(x, filters, kernel, stride, use_bias, relu, name):
    x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=use_bias, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x) if relu else x


def _zero_pad_shortcut(x, filters, stride, name):
    """Option A: keep every ``stride``-th pixel and zero-pad channels up to ``filters``.

    The channel axis is padded by moving it to a spatial position (transpose, ZeroPadding2D,
    transpose back): standard layers, builtin TFLite ops, no parameters.
    """
    if stride > 1:
        x = layers.MaxPooling2D(1, strides=stride, name=f"{name}_subsample")(x)
    extra = filters - x.shape[-1]
    x = layers.Permute((3, 1, 2), name=f"{name}_to_cfirst")(x)
    x = layers.ZeroPadding2D(((extra // 2, extra - extra // 2), (0, 0)), name=f"{name}_pad")(x)
    return layers.Permute((2, 3, 1), name=f"{name}_to_clast")(x)


def residual_block(x, kind, filters, stride, shortcut, use_bias, name):
    """A basic or bottleneck block (post-activation, v1) with ``filters`` outputs; shortcut ``"A"`` or ``"B"``."""
    channels = filters // BOTTLENECK[kind]  # of the inner convolutions
    if stride == 1 and x.shape[-1] == filters:
        residual = x
    elif shortcut == "A":
        residual = _zero_pad_shortcut(x, filters, stride, f"{name}_0")
    else:
        residual = _conv_bn(x, filters, 1, stride, use_bias, False, f"{name}_0")
    if kind == "basic":
        x = _conv_bn(x, channels, 3, stride, use_bias, True, f"{name}_1")
        x = _conv_bn(x, filters, 3, 1, use_bias, False, f"{name}_2")
    else:
        x = _conv_bn(x, channels, 1, stride, use_bias, True, f"{name}_1")
        x = _conv_bn(x, channels, 3, 1, use_bias, True, f"{name}_2")
        x = _conv_bn(x, filters, 1, 1, use_bias, False, f"{name}_3")
    x = layers.Add(name=f"{name}_add")([residual, x])
    return layers.ReLU(name=f"{name}_out")(x)


def resnet(
    input_shape=(224, 224, 3),
    include_top=True,
    weights=None,
    classes=1000,
    pooling=None,
    classifier_activation="softmax",
    stages=RESNET_50,
    stem="imagenet",
    shortcut="B",
    use_bias=False,
    name="resnet",
):
    """Build a ResNet from a stage table with the ``keras.applications`` signature.

    Args:
        input_shape, include_top, classes, pooling, classifier_activation: as in ``keras.applications``.
        weights: ``None``; for ``resnet50``, ``"imagenet"`` (``keras.applications.ResNet50``'s
            weights) or the path of a weights file (``models.pretrained.load_weights``).
        stages: the stage table (``RESNET_20``, ``RESNET_56``, ``RESNET_18``, ``RESNET_50``).
        stem: ``"imagenet"`` (7x7/2 convolution of 64, 3x3/2 max pooling) or ``"cifar"``
            (3x3 convolution as wide as the first stage's inner convolutions).
        shortcut: ``"B"`` (projection) or ``"A"`` (zero padding) where the shape changes.
        use_bias: biased convolutions (True reproduces ``keras.applications.ResNet50``).
    Returns:
        A ``keras.Model`` whose ``pretrained`` attribute reports the loaded and initialized layers
        (``models.pretrained``; None without weights).
    """
    check_builder_args(name, input_shape, weights, include_top, classes)
    if stem not in ("imagenet", "cifar") or shortcut not in ("A", "B"):
        raise ValueError(f"stem must be 'imagenet' or 'cifar' and shortcut 'A' or 'B', got {stem!r}, {shortcut!r}")
    if any(stage.kind not in BOTTLENECK for stage in stages):
        raise ValueError(f"block kinds must be one of {sorted(BOTTLENECK)}, got {[s.kind for s in stages]}")
    inputs = keras.Input(shape=input_shape)
    if stem == "imagenet":
        x = layers.ZeroPadding2D(3, name="conv1_pad")(inputs)
        x = layers.Conv2D(64, 7, strides=2, use_bias=use_bias, name="conv1_conv")(x)
        x = layers.BatchNormalization(epsilon=BN_EPSILON, name="conv1_bn")(x)
        x = layers.ReLU(name="conv1_relu")(x)
        x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
        x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    else:
        x = _conv_bn(inputs, stages[0].channels // BOTTLENECK[stages[0].kind], 3, 1, use_bias, True, "conv1")
    for stage_id, stage in enumerate(stages, start=2):
        for repeat in range(stage.repeats):
            stride = stage.stride if repeat == 0 else 1
            x = residual_block(x, stage.kind, stage.channels, stride, shortcut, use_bias,
                               name=f"conv{stage_id}_block{repeat + 1}")
    outputs = classifier_head(x, include_top, classes, pooling, classifier_activation)
    return load_weights(keras.Model(inputs, outputs, name=name), name, weights, include_top=include_top)


def resnet20(input_shape=(32, 32, 3), classes=10, **kwargs):
    """CIFAR ResNet-20 (3 stages of 3 basic blocks, option-A shortcuts): 0.27M parameters."""
    return resnet(input_shape, classes=classes, stages=RESNET_20, stem="cifar", shortcut="A", name="resnet20",
                  **kwargs)


def resnet56(input_shape=(32, 32, 3), classes=10, **kwargs):
    """CIFAR ResNet-56 (3 stages of 9 basic blocks, option-A shortcuts): 0.85M parameters."""
    return resnet(input_shape, classes=classes, stages=RESNET_56, stem="cifar", shortcut="A", name="resnet56",
                  **kwargs)


def resnet18(input_shape=(224, 224, 3), **kwargs):
    """ImageNet ResNet-18 (projection shortcuts, unbiased convolutions): 11.69M parameters."""
    return resnet(input_shape, stages=RESNET_18, name="resnet18", **kwargs)


def resnet50(input_shape=(224, 224, 3), **kwargs):
    """ImageNet ResNet-50, parameter for parameter ``keras.applications.ResNet50``: 25.64M; takes
    ``weights="imagenet"`` (its inputs preprocessed as for ``keras.applications``: "caffe")."""
    return resnet(input_shape, stages=RESNET_50, use_bias=True, name="resnet50", **kwargs)
