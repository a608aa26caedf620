"""MobileNetV2 (Sandler et al., "MobileNetV2: Inverted Residuals and Linear
Bottlenecks", CVPR 2018), written as the paper's Table 2 plus one builder.

Each row of ``MOBILENET_V2`` is a stage: expansion t, output channels c, repeats n,
stride s of the first block, and the layer of its 1x1 steps. Channel rounding and the widened
last layer follow the reference implementation, so parameter counts equal
``keras.applications.MobileNetV2``. The builder records the feature taps of the dense-prediction
heads as it builds (``models.taps``; ``model.feature_taps``).

``MOBILENET_V2_WHT`` is the network of Pan, Badawi and Cetin ("Fast Walsh-Hadamard Transform
and Smooth-Thresholding Based Binary Layers in Deep Neural Networks", CVPRW 2021): the 1x1
convolutions of the last five bottlenecks and the last 1x1 layer become 1D-WHT layers
(``keras_layers.wht.WHT1D``), taking the CIFAR-10 network (1.0, 32x32, 10 classes) from the
paper's 2.270M parameters to 540K.
"""
from typing import NamedTuple

from keras_layers.keras_api import keras
from models.blocks import check_builder_args, classifier_head, conv_bn, inverted_residual, make_divisible, pointwise_bn
from models.pretrained import load_weights
from models.taps import TapRecorder


class Stage(NamedTuple):
    """One row of an inverted-residual table: ``repeats`` blocks, the first with ``stride``."""

    expansion: int
    channels: int
    repeats: int
    stride: int
    kernel: int = 3
    pointwise: str = "conv"


#               t    c   n  s
MOBILENET_V2 = (
    Stage(1, 16, 1, 1),
    Stage(6, 24, 2, 2),
    Stage(6, 32, 3, 2),
    Stage(6, 64, 4, 2),
    Stage(6, 96, 3, 1),
    Stage(6, 160, 3, 2),
    Stage(6, 320, 1, 1),
)
MOBILENET_V2_WHT = (
    *MOBILENET_V2[:4],
    Stage(6, 96, 2, 1),
    Stage(6, 96, 1, 1, pointwise="wht1d"),
    Stage(6, 160, 3, 2, pointwise="wht1d"),
    Stage(6, 320, 1, 1, pointwise="wht1d"),
)
TABLES = {"conv": MOBILENET_V2, "wht1d": MOBILENET_V2_WHT}  # by the layer of the last 1x1 step
STEM_CHANNELS = 32
LAST_CHANNELS = 1280


def mobilenet_v2(
    input_shape=(224, 224, 3),
    alpha=1.0,
    include_top=True,
    weights=None,
    classes=1000,
    pooling=None,
    classifier_activation="softmax",
    pointwise="conv",
    stages=None,
    name=None,
):
    """Build MobileNetV2 with the ``keras.applications`` signature.

    Args:
        input_shape: (height, width, channels), channels last.
        alpha: width multiplier applied to every layer (the last layer only grows).
        include_top: add global average pooling and the ``classes``-way Dense layer.
        weights: ``None``, ``"imagenet"`` (``keras.applications``' weights for alpha 0.35, 0.5,
            0.75, 1.0, 1.3 or 1.4; the file of the input size when it is 96, 128, 160, 192 or 224,
            else 224's) or the path of a weights file (``models.pretrained.load_weights``). Layers
            the weights do not fit (another alpha, ``classes`` or ``pointwise``) keep their
            initialization.
        classes: number of classes of the top layer.
        pooling: ``None``, ``"avg"`` or ``"max"`` when ``include_top`` is False.
        classifier_activation: activation of the top layer (``None`` for logits).
        pointwise: ``"conv"``, or ``"wht1d"`` for the WHT network (``MOBILENET_V2_WHT`` and a
            WHT1D last 1x1 layer).
        stages: the block table (default: ``TABLES[pointwise]``); a variant network is a
            different table.
    Returns:
        A ``keras.Model`` whose ``feature_taps`` attribute maps the roles of
        ``models.taps.TAP_ROLES`` to layer names and whose ``pretrained`` attribute reports the
        loaded and initialized layers (``models.pretrained``; None without weights).
    """
    check_builder_args("mobilenet_v2", input_shape, weights, include_top, classes, alpha)
    if pointwise not in TABLES:
        raise ValueError(f"pointwise must be one of {', '.join(TABLES)}, got {pointwise!r}")
    inputs = keras.Input(shape=input_shape)
    taps = TapRecorder(inputs)
    x = conv_bn(inputs, make_divisible(STEM_CHANNELS * alpha), 3, stride=2, activation="relu6", name="stem")
    block_id = 0
    for stage in TABLES[pointwise] if stages is None else stages:
        filters = make_divisible(int(stage.channels * alpha))
        for repeat in range(stage.repeats):
            stride = stage.stride if repeat == 0 else 1
            x = inverted_residual(x, stage.expansion, filters, stride, stage.kernel, pointwise=stage.pointwise,
                                  name=f"block{block_id}", taps=taps)
            block_id += 1
    last_channels = make_divisible(LAST_CHANNELS * alpha) if alpha > 1.0 else LAST_CHANNELS
    x = pointwise_bn(x, last_channels, pointwise, activation="relu6", name="head")
    taps.last(x)
    outputs = classifier_head(x, include_top, classes, pooling, classifier_activation)
    suffix = "" if pointwise == "conv" else f"_{pointwise}"
    model = taps.attach(keras.Model(inputs, outputs, name=name or f"mobilenetv2_{alpha:0.2f}_{input_shape[0]}{suffix}"))
    return load_weights(model, "mobilenet_v2", weights, alpha, include_top)
