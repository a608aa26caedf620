"""G-GhostNet (Han et al., "GhostNets on Heterogeneous Devices via Cheap Operations", IJCV
2022): RegNetX (Radosavovic et al., "Designing Network Design Spaces", CVPR 2020) whose deep
stages are G-Ghost stages, written as a stage table plus one builder.

A RegNetX is a 3x3/2 stem of 32 channels and four stages of X blocks (1x1 conv-BN-ReLU,
3x3 group conv with groups of ``group_width`` channels, the stage's stride 2 on the first
block, BN-ReLU, 1x1 conv-BN, residual, ReLU). Each row of a table is a stage: repeats n (the
depth), output channels C (the width), group width g, and whether it is a G-Ghost stage. A
G-Ghost stage of n blocks keeps the first block (full width C, stride 2) and the last one
(full width); the n - 2 blocks between them work on r = floor(C (1 - lambda) / g') g' channels
only (g' = int(0.75 g): the authors' release shrinks their groups), and
``keras_layers.g_ghost.GGhostCheapMix`` makes the other C - r from the first block's output.
The authors make stages of more than two blocks G-Ghost stages, with lambda = 0.5.

``G_GHOST_REGNETX_3_2GF`` is RegNetX-3.2GF (depths 2, 6, 15, 2; widths 96, 192, 432, 1008;
group width 48) so built: at 224x224 and 1000 classes about 10.5M parameters and 1.8B
multiply-adds, the authors' table for G-Ghost-RegNetX-3.2GF (77.8% top-1), against
15.3M / 3.2G for the RegNetX-3.2GF (``REGNETX_3_2GF``, ``keras.applications.RegNetX032``
layer for layer) it is made from. ``G_GHOST_REGNETX_200MF`` / ``REGNETX_200MF`` are the same on
RegNetX-200MF (depths 1, 1, 4, 7; widths 24, 56, 152, 368; group width 8;
``keras.applications.RegNetX002``), the size the kit's digits zoo can afford.
"""
from typing import NamedTuple

from keras_layers.g_ghost import GGhostCheapMix
from keras_layers.keras_api import keras
from models.blocks import check_builder_args, classifier_head

layers = keras.layers

BN_KWARGS = {"epsilon": 1e-5, "momentum": 0.9}  # keras.applications.RegNet
STEM_CHANNELS = 32
CHEAP_RATIO = 0.5  # lambda
CHEAP_GROUP_WIDTH = 0.75  # group width of the blocks between a G-Ghost stage's first and last


class Stage(NamedTuple):
    """``repeats`` X blocks of ``channels`` outputs in groups of ``group_width``; stride 2 first."""

    repeats: int
    channels: int
    group_width: int
    g_ghost: bool


#                        n    C     g   G-Ghost
G_GHOST_REGNETX_3_2GF = (
    Stage(2, 96, 48, False),
    Stage(6, 192, 48, True),
    Stage(15, 432, 48, True),
    Stage(2, 1008, 48, False),
)
REGNETX_3_2GF = tuple(stage._replace(g_ghost=False) for stage in G_GHOST_REGNETX_3_2GF)
G_GHOST_REGNETX_200MF = (  # the smallest RegNetX (keras.applications.RegNetX002), for small budgets
    Stage(1, 24, 8, False),
    Stage(1, 56, 8, False),
    Stage(4, 152, 8, True),
    Stage(7, 368, 8, True),
)
REGNETX_200MF = tuple(stage._replace(g_ghost=False) for stage in G_GHOST_REGNETX_200MF)


def _conv_bn(x, filters, kernel, stride=1, groups=1, relu=True, name="conv"):
    x = layers.Conv2D(filters, kernel, strides=stride, padding="same", groups=groups, use_bias=False,
                      name=name)(x)
    x = layers.BatchNormalization(name=f"{name}_bn", **BN_KWARGS)(x)
    return layers.ReLU(name=f"{name}_relu")(x) if relu else x


def x_block(x, filters, group_width, stride=1, name="block"):
    """RegNet X block; the shortcut is a 1x1 conv-BN where the stride or width changes."""
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = _conv_bn(x, filters, 1, stride, relu=False, name=f"{name}_skip")
    y = _conv_bn(x, filters, 1, name=f"{name}_conv_1x1_1")
    y = _conv_bn(y, filters, 3, stride, groups=filters // min(filters, group_width), name=f"{name}_conv_3x3")
    y = _conv_bn(y, filters, 1, relu=False, name=f"{name}_conv_1x1_2")
    return layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([shortcut, y]))


def intrinsic_channels(stage, cheap_ratio):
    """``(r, g')``: the channels of a G-Ghost stage made by its blocks, a multiple of g', the group
    width of the blocks between its first and last."""
    group_width = int(stage.group_width * CHEAP_GROUP_WIDTH)
    return int(stage.channels * (1 - cheap_ratio) / group_width) * group_width, group_width


def g_ghost_stage(x, stage, cheap_ratio=CHEAP_RATIO, name="stage"):
    """A G-Ghost stage: first block, n - 2 blocks on r channels, cheap + mix operations, last block."""
    first = x_block(x, stage.channels, stage.group_width, 2, name=f"{name}_block0")
    intrinsic, group_width = intrinsic_channels(stage, cheap_ratio)
    intermediate = [first[:, :, :, :intrinsic]]  # explicit slices: tf_keras cannot save an Ellipsis
    for block in range(1, stage.repeats - 1):
        intermediate.append(x_block(intermediate[-1], intrinsic, group_width, name=f"{name}_block{block}"))
    x = GGhostCheapMix(name=f"{name}_cheap_mix")([first, *intermediate[1:]])
    return x_block(x, stage.channels, stage.group_width, name=f"{name}_block{stage.repeats - 1}")


def _check_stages(stages, cheap_ratio):
    if not 0 < cheap_ratio < 1:
        raise ValueError(f"cheap_ratio must be in (0, 1), got {cheap_ratio}")
    for stage in stages:
        if stage.g_ghost and stage.repeats < 3:
            raise ValueError(f"a G-Ghost stage needs repeats >= 3 (first, middle, last block), got {stage}")
        if stage.g_ghost and not 0 < intrinsic_channels(stage, cheap_ratio)[0] < stage.channels:
            raise ValueError(f"cheap_ratio {cheap_ratio} leaves no intrinsic or no ghost channels in {stage}")


def g_ghostnet(input_shape=(224, 224, 3), include_top=True, weights=None, classes=1000, pooling=None,
               classifier_activation="softmax", stages=G_GHOST_REGNETX_3_2GF, cheap_ratio=CHEAP_RATIO,
               name="g_ghostnet"):
    """Build a G-GhostNet, or a RegNetX with ``stages=REGNETX_3_2GF`` (``keras.applications`` signature).

    Args:
        stages: the stage table (default ``G_GHOST_REGNETX_3_2GF``).
        cheap_ratio: lambda, the share of a G-Ghost stage's channels made by cheap operations.
    Returns:
        A ``keras.Model``.
    """
    check_builder_args("g_ghostnet", input_shape, weights, include_top, classes)
    _check_stages(stages, cheap_ratio)
    inputs = keras.Input(shape=input_shape)
    x = _conv_bn(inputs, STEM_CHANNELS, 3, 2, name="stem")
    for stage_id, stage in enumerate(stages):
        if stage.g_ghost:
            x = g_ghost_stage(x, stage, cheap_ratio, name=f"stage{stage_id}")
            continue
        for block in range(stage.repeats):
            x = x_block(x, stage.channels, stage.group_width, 2 if block == 0 else 1,
                        name=f"stage{stage_id}_block{block}")
    return keras.Model(inputs, classifier_head(x, include_top, classes, pooling, classifier_activation), name=name)
