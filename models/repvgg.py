"""RepVGG (Ding et al., "RepVGG: Making VGG-style ConvNets Great Again", CVPR 2021) and the
RMNet plain ResNet (Meng et al., "RMNet: Equivalently Removing Residual Connection from
Networks", 2021), as block tables plus one builder.

Each row of a table is a stage: output channels, repeats, stride of its first block.
``REPVGG_A0`` is the paper's Table 2 with a = 0.75, b = 2.5 (stage 1 is the stride-2 stem,
``min(64, 64a)`` channels; then 1, 2, 4, 14, 1 layers); its deploy form has the paper's
8.30M parameters at 1000 classes. ``RM_RESNET20`` is the CIFAR ResNet-20 of He et al.
(3x3 stem of 16 channels, three stages of three basic blocks) with 1x1 projection shortcuts;
``models.reparameterize`` turns it into a plain conv-ReLU network (RMNet).
"""
from keras_layers.keras_api import keras
from keras_layers.reparam import RepVGGBlock, RMResBlock
from models.blocks import Stage, check_builder_args, classifier_head, conv_bn

#                c    n  s
REPVGG_A0 = (
    Stage(48, 1, 2),
    Stage(48, 2, 2),
    Stage(96, 4, 2),
    Stage(192, 14, 2),
    Stage(1280, 1, 2),
)
RM_RESNET20 = (
    Stage(16, 3, 1),
    Stage(32, 3, 2),
    Stage(64, 3, 2),
)


def _plain_network(builder, block, stages, stem, input_shape, alpha, include_top, weights, classes, pooling,
                   classifier_activation, deploy, name):
    check_builder_args(builder, input_shape, weights, include_top, classes, alpha)
    inputs = keras.Input(shape=input_shape)
    x = stem(inputs)
    for stage_id, stage in enumerate(stages):
        for repeat in range(stage.repeats):
            x = block(max(1, round(stage.channels * alpha)), strides=stage.stride if repeat == 0 else 1,
                      deploy=deploy, name=f"stage{stage_id}_block{repeat}")(x)
    return keras.Model(inputs, classifier_head(x, include_top, classes, pooling, classifier_activation), name=name)


def repvgg(input_shape=(224, 224, 3), alpha=1.0, include_top=True, weights=None, classes=1000, pooling=None,
           classifier_activation="softmax", stages=REPVGG_A0, deploy=False, name="repvgg"):
    """Build a RepVGG network of ``RepVGGBlock`` stages (``keras.applications`` signature).

    Args:
        alpha: width multiplier of every stage's channels.
        stages: the block table (default ``REPVGG_A0``).
        deploy: build the folded form (one 3x3 convolution per block) directly.
    Returns:
        A ``keras.Model``; ``models.reparameterize`` folds a trained training-form one.
    """
    return _plain_network("repvgg", RepVGGBlock, stages, lambda x: x, input_shape, alpha, include_top, weights,
                          classes, pooling, classifier_activation, deploy, name)


def rm_resnet(input_shape=(32, 32, 3), alpha=1.0, include_top=True, weights=None, classes=10, pooling=None,
              classifier_activation="softmax", stages=RM_RESNET20, deploy=False, name="rm_resnet"):
    """Build a CIFAR-style ResNet of ``RMResBlock`` stages after a 3x3 conv-BN-ReLU stem.

    Arguments as ``repvgg``; ``deploy=True`` builds the RMNet (residual-free) form.
    """
    stem_channels = max(1, round(stages[0].channels * alpha))
    return _plain_network("rm_resnet", RMResBlock, stages,
                          lambda x: conv_bn(x, stem_channels, 3, activation="relu", name="stem"),
                          input_shape, alpha, include_top, weights, classes, pooling, classifier_activation,
                          deploy, name)
