"""A small MGIC network (Eliasof et al., "MGIC: Multigrid-in-Channels Neural Network
Architectures"): a ResNet-like stack whose blocks are ``keras_layers.mgic.MGICBlock`` V-cycles.

Each row of a table is a stage: channels (``group_size * 2^L``), repeats of the block, stride
of the transition that enters it. A transition is a stride-s 3x3 depthwise conv-BN and a
grouped 1x1 conv-BN-ReLU to the stage's channels (groups of ``group_size`` inputs), so every
layer's parameters grow linearly with width, like the blocks'.
"""
from keras_layers.keras_api import keras
from keras_layers.mgic import MGICBlock
from models.blocks import BN_KWARGS, Stage, check_builder_args, classifier_head, conv_bn, depthwise_bn

layers = keras.layers


#             c   n  s
MGIC_CIFAR = (
    Stage(32, 2, 1),
    Stage(64, 2, 2),
    Stage(128, 2, 2),
)


def mgic_net(input_shape=(32, 32, 3), alpha=1, include_top=True, weights=None, classes=10, pooling=None,
             classifier_activation="softmax", stages=MGIC_CIFAR, group_size=8, name="mgic_net"):
    """Build an MGIC network (``keras.applications`` signature).

    Args:
        alpha: width multiplier of every stage's channels: a power of 2 (1, 2, 4, ...), which keeps
            them ``group_size * 2^L``.
        stages: the block table (default ``MGIC_CIFAR``).
        group_size: channels per group of every grouped convolution.
    """
    check_builder_args("mgic_net", input_shape, weights, include_top, classes, alpha)
    if alpha < 1 or alpha != int(alpha) or int(alpha) & (int(alpha) - 1):
        raise ValueError(f"alpha (the width multiplier of mgic_net) must be a power of 2 (1, 2, 4, ...), "
                         f"got {alpha!r}")
    inputs = keras.Input(shape=input_shape)
    x = conv_bn(inputs, group_size, 3, activation="relu", name="stem")
    for stage_id, stage in enumerate(stages):
        prefix = f"stage{stage_id}"
        channels = stage.channels * int(alpha)
        x = depthwise_bn(x, 3, stage.stride, name=f"{prefix}_transition_depthwise")
        x = layers.Conv2D(channels, 1, groups=max(1, x.shape[-1] // group_size), use_bias=False,
                          name=f"{prefix}_transition")(x)
        x = layers.BatchNormalization(name=f"{prefix}_transition_bn", **BN_KWARGS)(x)
        x = layers.ReLU(name=f"{prefix}_transition_relu")(x)
        for repeat in range(stage.repeats):
            x = MGICBlock(group_size, name=f"{prefix}_block{repeat}")(x)
    return keras.Model(inputs, classifier_head(x, include_top, classes, pooling, classifier_activation), name=name)
