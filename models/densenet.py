"""Densely connected networks as data: DenseNet, HarDNet and ThreshNet.

- DenseNet (Huang et al., "Densely Connected Convolutional Networks", CVPR 2017): in a dense
  block, layer k reads the concatenation of the block input and all k-1 earlier outputs; each
  layer is BN-ReLU-1x1 conv (4 x growth)-BN-ReLU-3x3 conv (growth). Transitions compress
  the channels (BN-ReLU-1x1 conv-2x2 average pooling). ``DENSENET_121`` equals
  ``keras.applications.DenseNet121`` parameter for parameter.
- HarDNet (Chao et al., "HarDNet: A Low Memory Traffic Network", ICCV 2019): harmonic
  connections, layer k reads layer k - 2^n for every n with 2^n dividing k (layer 0 is the
  block input); its width is growth x m^(links - 1), rounded to even; the block outputs the
  odd layers and the last one; layers are 3x3 conv-BN-ReLU; transitions are 1x1 conv-BN-ReLU
  then optional 2x2 max pooling.
- ThreshNet (Ju et al., "ThreshNet: An Efficient DenseNet Using Threshold Mechanism to Reduce
  Connections", IEEE Access 2022): a threshold over the depth of the network decides each
  layer's connections: blocks before the threshold keep all earlier connections (DenseNet
  layers), blocks from the threshold on keep only the harmonic ones (HarDNet layers).
  ``threshold=0`` is HarDNet and ``threshold=len(stages)`` the DenseNet of the same depth.
"""
from typing import NamedTuple

from keras_layers.keras_api import keras
from models.blocks import check_builder_args, classifier_head, conv_bn
from models.pretrained import load_weights

layers = keras.layers

BN_EPSILON = 1.001e-5  # keras.applications.DenseNet


class DenseStage(NamedTuple):
    """A DenseNet dense block of ``repeats`` layers adding ``growth`` channels each, followed
    (except after the last block) by a transition keeping ``compression`` of the channels."""

    repeats: int
    growth: int = 32
    compression: float = 0.5


class HarmonicStage(NamedTuple):
    """A HarDNet/ThreshNet block: ``repeats`` layers of base width ``growth``, then a 1x1
    convolution to ``channels`` and, if ``downsample``, 2x2 max pooling."""

    repeats: int
    growth: int
    channels: int
    downsample: bool


#                        n   k
DENSENET_121 = (DenseStage(6), DenseStage(12), DenseStage(24), DenseStage(16))

# ThreshNet79 of the paper (CIFAR-10): 3x3/2 conv 32, 3x3 conv 64, 3x3/2 max pool, five blocks.
#                           n   k     c   pool
THRESHNET_79 = (
    HarmonicStage(6, 32, 128, True),
    HarmonicStage(8, 32, 192, True),
    HarmonicStage(12, 32, 288, False),
    HarmonicStage(16, 40, 480, True),
    HarmonicStage(4, 160, 960, False),
)
THRESHNET_STEM = (32, 64)
THRESHNET_79_THRESHOLD = 3
GROWTH_MULTIPLIER = 1.7  # HarDNet's m


def harmonic_links(k):
    """Earlier layers that layer ``k`` (1-based; 0 is the block input) reads: k - 2^n, 2^n | k."""
    links, step = [], 1
    while k % step == 0:
        links.append(k - step)
        step *= 2
    return links


def dense_links(k):
    """Earlier layers that layer ``k`` of a dense block reads: all of them."""
    return list(range(k))


def _dense_layer(x, growth, name):
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_0_bn")(x)
    x = layers.ReLU(name=f"{name}_0_relu")(x)
    x = layers.Conv2D(4 * growth, 1, use_bias=False, name=f"{name}_1_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_1_bn")(x)
    x = layers.ReLU(name=f"{name}_1_relu")(x)
    return layers.Conv2D(growth, 3, padding="same", use_bias=False, name=f"{name}_2_conv")(x)


def _harmonic_width(k, growth, multiplier):
    width = growth * multiplier ** (len(harmonic_links(k)) - 1)
    return int(int(width + 1) / 2) * 2


def _concat(tensors, name):
    return tensors[0] if len(tensors) == 1 else layers.Concatenate(name=name)(tensors)


def connected_block(x, depth, growth, harmonic, multiplier=GROWTH_MULTIPLIER, name="block"):
    """A dense (``harmonic=False``) or harmonic block of ``depth`` layers.

    Layer k reads the concatenation ``{name}_layer{k}_in`` of the outputs named by
    ``dense_links`` or ``harmonic_links``. A dense block outputs every layer and its input; a
    harmonic block its odd layers and the last one.
    """
    outputs = [x]
    for k in range(1, depth + 1):
        links = harmonic_links(k) if harmonic else dense_links(k)
        inputs = _concat([outputs[j] for j in links], f"{name}_layer{k}_in")
        if harmonic:
            width = _harmonic_width(k, growth, multiplier)
            outputs.append(conv_bn(inputs, width, 3, activation="relu", name=f"{name}_layer{k}"))
        else:
            outputs.append(_dense_layer(inputs, growth, f"{name}_layer{k}"))
    kept = [y for j, y in enumerate(outputs) if j % 2 == 1 or j == depth] if harmonic else outputs
    return _concat(kept, f"{name}_out")


def densenet(
    input_shape=(224, 224, 3),
    include_top=True,
    weights=None,
    classes=1000,
    pooling=None,
    classifier_activation="softmax",
    stages=DENSENET_121,
    name="densenet121",
):
    """Build DenseNet (default DenseNet-121) with the ``keras.applications`` signature.

    ``stages`` is the block table: (repeats, growth, compression) per dense block. ``weights``:
    ``None``, or for DenseNet-121 ``"imagenet"`` (``keras.applications.DenseNet121``'s weights, its
    inputs preprocessed as there: "torch") or the path of a weights file
    (``models.pretrained.load_weights``); the model's ``pretrained`` attribute reports the loaded
    and initialized layers.
    """
    check_builder_args(name, input_shape, weights, include_top, classes)
    inputs = keras.Input(shape=input_shape)
    x = layers.ZeroPadding2D(3, name="conv1_pad")(inputs)
    x = layers.Conv2D(64, 7, strides=2, use_bias=False, name="conv1_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name="conv1_bn")(x)
    x = layers.ReLU(name="conv1_relu")(x)
    x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    for index, stage in enumerate(stages):
        x = connected_block(x, stage.repeats, stage.growth, harmonic=False, name=f"conv{index + 2}")
        if index < len(stages) - 1:
            prefix = f"pool{index + 2}"
            x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{prefix}_bn")(x)
            x = layers.ReLU(name=f"{prefix}_relu")(x)
            x = layers.Conv2D(int(x.shape[-1] * stage.compression), 1, use_bias=False, name=f"{prefix}_conv")(x)
            x = layers.AveragePooling2D(2, strides=2, name=f"{prefix}_pool")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name="bn")(x)
    x = layers.ReLU(name="relu")(x)
    outputs = classifier_head(x, include_top, classes, pooling, classifier_activation)
    return load_weights(keras.Model(inputs, outputs, name=name), name, weights, include_top=include_top)


def threshnet(
    input_shape=(32, 32, 3),
    include_top=True,
    weights=None,
    classes=10,
    pooling=None,
    classifier_activation="softmax",
    stages=THRESHNET_79,
    threshold=THRESHNET_79_THRESHOLD,
    stem=THRESHNET_STEM,
    name=None,
):
    """Build ThreshNet (default ThreshNet79 for CIFAR-10) with the ``keras.applications`` signature.

    Blocks ``0 .. threshold-1`` are dense, the rest harmonic: ``threshold=0`` gives HarDNet and
    ``threshold=len(stages)`` the DenseNet of the same depth, for side-by-side comparisons.
    """
    check_builder_args(name or "threshnet", input_shape, weights, include_top, classes)
    if not 0 <= threshold <= len(stages):
        raise ValueError(f"threshold must be between 0 and {len(stages)} (the number of blocks), got {threshold}")
    inputs = keras.Input(shape=input_shape)
    x = conv_bn(inputs, stem[0], 3, stride=2, activation="relu", name="stem1")
    x = conv_bn(x, stem[1], 3, activation="relu", name="stem2")
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    for index, stage in enumerate(stages):
        x = connected_block(x, stage.repeats, stage.growth, harmonic=index >= threshold, name=f"block{index + 1}")
        x = conv_bn(x, stage.channels, 1, activation="relu", name=f"transition{index + 1}")
        if stage.downsample:
            x = layers.MaxPooling2D(2, strides=2, padding="same", name=f"transition{index + 1}_pool")(x)
    outputs = classifier_head(x, include_top, classes, pooling, classifier_activation)
    return keras.Model(inputs, outputs, name=name or f"threshnet_t{threshold}")


def hardnet(input_shape=(32, 32, 3), stages=THRESHNET_79, **kwargs):
    """HarDNet: every block harmonic (``threshnet`` with ``threshold=0``)."""
    return threshnet(input_shape, stages=stages, threshold=0, name=kwargs.pop("name", "hardnet"), **kwargs)
