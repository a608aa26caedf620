"""GhostNet (Han et al., "GhostNet: More Features from Cheap Operations", CVPR 2020),
written as the paper's Table 1 plus one builder.

Each ``GBneck`` record is one G-bneck row of Table 1: kernel, expanded channels (#exp), output
channels (#out), squeeze-excite, stride. Table 1 does not list kernels; GhostNet "follows
the basic architecture of MobileNetV3", whose 5x5 depthwise rows (the 40- and 160-channel
stages) it keeps. As in the authors' release, the width multiplier rounds channels to
multiples of 4, squeeze-excite squeezes the expansion by 4, and the head is pooling, a
1x1 conv (a Dense with bias) to 1280 with ReLU, dropout and the classifier. GhostNet 1.0x
at 224: about 5.2M parameters and 141M MACs (``models.profile``). The builder records the
block-output feature taps (``models.taps``; ``model.feature_taps``: the stride roles, ``final``
and ``last``; a G-bneck's expansion is inside its layer, so there are no ``*_expanded`` taps).
"""
from typing import NamedTuple

from keras_layers.ghost import GhostBottleneck
from keras_layers.keras_api import keras
from models.blocks import check_builder_args, classifier_head, conv_bn, make_divisible
from models.taps import TapRecorder

layers = keras.layers


class GBneck(NamedTuple):
    """One G-bneck row of GhostNet's Table 1 (``expanded``: the channel count #exp, not a ratio)."""

    kernel: int
    expanded: int
    channels: int
    se: bool
    stride: int


#          k  #exp  #out  SE     s
GHOSTNET = (
    GBneck(3, 16, 16, False, 1),
    GBneck(3, 48, 24, False, 2),
    GBneck(3, 72, 24, False, 1),
    GBneck(5, 72, 40, True, 2),
    GBneck(5, 120, 40, True, 1),
    GBneck(3, 240, 80, False, 2),
    GBneck(3, 200, 80, False, 1),
    GBneck(3, 184, 80, False, 1),
    GBneck(3, 184, 80, False, 1),
    GBneck(3, 480, 112, True, 1),
    GBneck(3, 672, 112, True, 1),
    GBneck(5, 672, 160, True, 2),
    GBneck(5, 960, 160, False, 1),
    GBneck(5, 960, 160, True, 1),
    GBneck(5, 960, 160, False, 1),
    GBneck(5, 960, 160, True, 1),
)
STEM_CHANNELS = 16
HEAD_CHANNELS = 960
LAST_CHANNELS = 1280
SE_RATIO = 0.25
DIVISOR = 4


def ghostnet(
    input_shape=(224, 224, 3),
    alpha=1.0,
    include_top=True,
    weights=None,
    classes=1000,
    pooling=None,
    dropout_rate=0.2,
    classifier_activation="softmax",
    blocks=GHOSTNET,
    name=None,
):
    """Build GhostNet with the ``keras.applications`` signature.

    Args:
        input_shape: (height, width, channels), channels last.
        alpha: width multiplier of every layer but the 1280-wide top hidden layer.
        include_top: add pooling, the 1280-wide hidden layer and the ``classes``-way layer.
        weights: only ``None`` (no pretrained weights for this architecture).
        classes: number of classes of the top layer.
        pooling: ``None``, ``"avg"`` or ``"max"`` when ``include_top`` is False.
        dropout_rate: dropout before the top layer.
        classifier_activation: activation of the top layer (``None`` for logits).
        blocks: the G-bneck table; a variant network is a different table.
    Returns:
        A ``keras.Model`` whose ``feature_taps`` attribute maps roles of ``models.taps.TAP_ROLES``
        to layer names.
    """
    check_builder_args("ghostnet", input_shape, weights, include_top, classes, alpha)
    inputs = keras.Input(shape=input_shape)
    taps = TapRecorder(inputs)
    x = conv_bn(inputs, make_divisible(STEM_CHANNELS * alpha, DIVISOR), 3, stride=2, activation="relu", name="stem")
    for block_id, block in enumerate(blocks):
        mid = make_divisible(block.expanded * alpha, DIVISOR)
        se_channels = make_divisible(mid * SE_RATIO, DIVISOR) if block.se else 0
        y = GhostBottleneck(mid, make_divisible(block.channels * alpha, DIVISOR), block.kernel, block.stride,
                            se_channels, name=f"block{block_id}")(x)
        taps.block(x, y)
        x = y
    x = conv_bn(x, make_divisible(HEAD_CHANNELS * alpha, DIVISOR), 1, activation="relu", name="head")
    taps.last(x)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dense(LAST_CHANNELS, activation="relu", name="head_dense")(x)
        if dropout_rate > 0:
            x = layers.Dropout(dropout_rate, name="dropout")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    else:
        x = classifier_head(x, False, classes, pooling, classifier_activation)
    return taps.attach(keras.Model(inputs, x, name=name or f"ghostnet_{alpha:0.2f}_{input_shape[0]}"))
