"""Binary and low-bit ResNets, one builder over a table of precisions, and capsule heads.

``binary_resnet`` reads a ResNet stage table (``models.resnet``) and a ``Precision`` record:
the first convolution and the classifier stay in float (as in every binary-network paper);
each inner 3x3 convolution of a ``binary`` block has its own parameter-free shortcut (Bi-Real
Net, Liu et al. 2018), so a binarized path never carries the whole signal:

    y = act(BN(QuantConv(x)) + shortcut(x))       shortcut: keras_layers.poke.reshape_shortcut

The variants (``VARIANTS``) differ only by data:

    float     float convolutions (the baseline)
    bwn       binary weights alpha sign(W), float inputs (Rastegari et al., 2016)
    xnor      binary weights and inputs, XNOR-Net scales alpha and K (Rastegari et al., 2016)
    qnn       1-bit weights, 2-bit activations in [0, 1] (Hubara et al., QNN, 2017)
    pokebnn   PokeConv units (Zhang et al., 2022): per-conv and block shortcuts, DPReLU,
              4-bit squeeze-excite, activation clipping bound 3 (``keras_layers.poke``)
    rep_xnor  xnor with RepTran (Shi et al., RepBNN, 2022): feature maps beta = 2 times wider by
              replication, each binary convolution a ``RepConv`` with the plain network's
              kernel entries and binary MACs (``keras_layers.repbnn``); only the batch norms,
              PReLUs and the classifier see the wider maps

``capsule_mobilenet_v2`` and ``capsule_resnet50`` put an XnODR or XnIDR capsule head
(``keras_layers.capsules``) on the ``include_top=False`` backbones, the capsule FC layer
replacing the dense classifier as in Sun et al.: backbone features -> 1x1 convolution to
primary capsules (squashed) -> XnODR / XnIDR to one capsule per class -> capsule lengths as
class scores. The primary-capsule sizes are arguments (the paper's are not reproduced here).
"""
from typing import NamedTuple, Optional

from keras_layers.binary import QuantConv2D, QuantDepthwiseConv2D
from keras_layers.capsules import XNIDR, XNODR, CapsuleLength, Squash
from keras_layers.keras_api import keras
from keras_layers.poke import POKE_INPUT_QUANTIZER as POKE_SIGN
from keras_layers.poke import DPReLU, PokeConv, ReshapeShortcut
from keras_layers.repbnn import RepConv
from models.blocks import check_builder_args, classifier_head
from models.mobilenet_v2 import mobilenet_v2
from models.pretrained import inherit_report
from models.resnet import RESNET_18, RESNET_20, Stage, resnet50

layers = keras.layers

BN_KWARGS = {"momentum": 0.9, "epsilon": 1e-5}


class Precision(NamedTuple):
    """How the inner convolutions of a binary ResNet compute.

    block: ``binary`` (QuantConv + BN + own shortcut + activation) or ``poke`` (PokeConv units).
    input_quantizer, kernel_quantizer, scale: as ``keras_layers.binary.QuantConv2D`` (PokeConv
        units take the two quantizers and have no scale).
    activation: after each shortcut addition of a ``binary`` block: ``relu`` or ``prelu``
        (PokeConv units always use DPReLU; ``poke`` rows say so for the record).
    replicas: beta of RepTran (1: no replication).
    """

    block: str
    input_quantizer: object
    kernel_quantizer: object
    scale: Optional[str]
    activation: str = "prelu"
    replicas: int = 1


#                            block     input quantizer kernel      scale   activation beta
VARIANTS = {
    "float":    Precision("binary", None,           None,       None,   "relu"),
    "bwn":      Precision("binary", None,           "ste_sign", "bwn",  "relu"),
    "xnor":     Precision("binary", "ste_sign",     "ste_sign", "xnor", "prelu"),
    "qnn":      Precision("binary", "uniform_2bit", "ste_sign", None,   "prelu"),
    "pokebnn":  Precision("poke",   POKE_SIGN,      "ste_sign", None,   "dprelu"),
    "rep_xnor": Precision("binary", "ste_sign",     "ste_sign", "xnor", "prelu",   2),
}
CAPSULE_LAYERS = {"xnodr": XNODR, "xnidr": XNIDR}
# The 6n+2 CIFAR family with n = 1: one basic block per stage (the digits table's network).
RESNET_8 = (Stage("basic", 1, 16, 1), Stage("basic", 1, 32, 2), Stage("basic", 1, 64, 2))


class Stem(NamedTuple):
    """The first layer: a float ``kernel`` x ``kernel`` convolution with ``strides``, then 3x3/2
    max pooling when ``pool``; or, with ``poke``, PokeBNN's PokeInit (``_poke_init``). It makes
    ``channels`` maps (None: the first stage's)."""

    kernel: int
    strides: int
    pool: bool
    poke: bool = False
    channels: Optional[int] = None


STEMS = {
    "cifar": Stem(3, 1, False),
    "strided": Stem(3, 2, False),  # small inputs upsampled to 32x32 (8x8 digits): a quarter of the MACs
    "imagenet": Stem(7, 2, True, channels=64),
    "poke": Stem(4, 4, False, True, 64),  # PokeInit: the ImageNet stem's stride 4
    "poke_strided": Stem(2, 2, False, True),  # PokeInit at the ``strided`` stem's stride 2
}
POKE_INIT_KERNELS = "dorefa_8bit"  # PokeInit's convolutions are 8-bit


def _poke_init(x, stem, channels):
    """PokeInit (Zhang et al., PokeBNN, 2022): a ``kernel`` x ``kernel`` convolution with stride
    ``kernel`` (no input pixel is read twice) to ``channels / 2`` maps, BN, DPReLU, then a 3x3
    convolution grouped by input map (a depthwise convolution with depth multiplier 2) to
    ``channels``, BN, DPReLU; both with 8-bit kernels. The released PokeBNN code leaves the
    group count a hyper-parameter; one input map per group of two outputs is the choice here."""
    groups = max(1, channels // 2)
    x = QuantConv2D(groups, stem.kernel, stem.strides, padding="valid", kernel_quantizer=POKE_INIT_KERNELS,
                    kernel_clip=None, name="stem_conv")(x)
    x = DPReLU(name="stem_dprelu")(layers.BatchNormalization(name="stem_bn", **BN_KWARGS)(x))
    x = QuantDepthwiseConv2D(3, depth_multiplier=channels // groups, kernel_quantizer=POKE_INIT_KERNELS,
                             kernel_clip=None, name="stem_group_conv")(x)
    return DPReLU(name="stem_group_dprelu")(layers.BatchNormalization(name="stem_group_bn", **BN_KWARGS)(x))


def _check_variant(variant):
    if variant not in VARIANTS:
        raise ValueError(f"unknown binary variant {variant!r}: expected one of {', '.join(VARIANTS)}")
    return VARIANTS[variant]


def _conv(filters, kernel, strides, output_replicas, kernel_quantizer, **quantization):
    """A ``QuantConv2D``, or a ``RepConv`` making filters / output_replicas maps when replicating.

    Float kernels (``kernel_quantizer=None``) are not clipped.
    """
    clip = None if kernel_quantizer is None else 1.0
    if output_replicas == 1:
        return QuantConv2D(filters, kernel, strides, kernel_quantizer=kernel_quantizer, kernel_clip=clip,
                           **quantization)
    return RepConv(filters, kernel, strides, output_replicas=output_replicas, kernel_quantizer=kernel_quantizer,
                   kernel_clip=clip, **quantization)


def _stem(x, stem, channels, replicas):
    """The stem ``stem`` (a ``Stem``); with RepTran its ``channels`` maps are replicated ``replicas`` times."""
    if stem.poke:
        return _poke_init(x, stem, channels * replicas)
    x = _conv(channels * replicas, stem.kernel, stem.strides, replicas, name="stem_conv", kernel_quantizer=None)(x)
    x = layers.ReLU(name="stem_relu")(layers.BatchNormalization(name="stem_bn", **BN_KWARGS)(x))
    if stem.pool:
        x = layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    return x


def _activation(kind, name):
    return layers.ReLU(name=name) if kind == "relu" else layers.PReLU(shared_axes=[1, 2], name=name)


def _binary_unit(x, channels, strides, precision, name):
    """act(BN(QuantConv(x)) + shortcut(x)); with RepTran the convolution is a RepConv."""
    beta = precision.replicas
    conv = _conv(beta * channels, 3, strides, beta * beta, name=f"{name}_conv",
                 input_quantizer=precision.input_quantizer, kernel_quantizer=precision.kernel_quantizer,
                 scale=precision.scale)
    y = layers.BatchNormalization(name=f"{name}_bn", **BN_KWARGS)(conv(x))
    shortcut = x if strides == 1 and x.shape[-1] == beta * channels else \
        ReshapeShortcut(beta * channels, strides, name=f"{name}_shortcut")(x)
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return _activation(precision.activation, f"{name}_{precision.activation}")(y)


def _basic_block(x, channels, strides, precision, name):
    """Two 3x3 units; PokeConv units add the ResNet shortcut in the second one."""
    if precision.block == "poke":
        quantizers = {"input_quantizer": precision.input_quantizer, "kernel_quantizer": precision.kernel_quantizer}
        y = PokeConv(channels, 3, strides, name=f"{name}_1", **quantizers)(x)
        return PokeConv(channels, 3, 1, block_strides=strides, zero_gamma=True, name=f"{name}_2", **quantizers)([y, x])
    y = _binary_unit(x, channels, strides, precision, f"{name}_1")
    return _binary_unit(y, channels, 1, precision, f"{name}_2")


def binary_resnet(input_shape=(32, 32, 3), include_top=True, weights=None, classes=10, pooling=None,
                  classifier_activation="softmax", stages=RESNET_20, stem="cifar", variant="xnor", name=None):
    """A binary / low-bit ResNet of basic blocks with the ``keras.applications`` signature.

    Args:
        input_shape, include_top, weights, classes, pooling, classifier_activation: as in
            ``keras.applications`` (``weights`` must be None).
        stages: a basic-block stage table (``RESNET_20``, ``RESNET_18`` of ``models.resnet``, ``RESNET_8``).
        stem: a key of ``STEMS``: ``cifar`` (3x3), ``strided`` (3x3/2), ``imagenet`` (7x7/2, max pooling),
            ``poke`` (PokeInit, stride 4) or ``poke_strided`` (PokeInit, stride 2).
        variant: a key of ``VARIANTS``.
    """
    check_builder_args("binary_resnet", input_shape, weights, include_top, classes)
    precision = _check_variant(variant)
    if stem not in STEMS:
        raise ValueError(f"stem must be one of {', '.join(STEMS)}, got {stem!r}")
    if any(stage.kind != "basic" for stage in stages):
        raise ValueError(f"binary ResNets use basic blocks, got {[stage.kind for stage in stages]}")
    inputs = keras.Input(shape=input_shape)
    x = _stem(inputs, STEMS[stem], STEMS[stem].channels or stages[0].channels, precision.replicas)
    for stage_id, stage in enumerate(stages, start=2):
        for repeat in range(stage.repeats):
            x = _basic_block(x, stage.channels, stage.stride if repeat == 0 else 1, precision,
                             name=f"conv{stage_id}_block{repeat + 1}")
    outputs = classifier_head(x, include_top, classes, pooling, classifier_activation)
    return keras.Model(inputs, outputs, name=name or f"binary_resnet_{variant}")


def binary_resnet20(input_shape=(32, 32, 3), classes=10, variant="xnor", **kwargs):
    """CIFAR ResNet-20 (3 stages of 3 basic blocks, widths 16/32/64) in ``variant`` precision."""
    return binary_resnet(input_shape, classes=classes, stages=RESNET_20, stem="cifar", variant=variant,
                         name=f"resnet20_{variant}", **kwargs)


def binary_resnet18(input_shape=(224, 224, 3), classes=1000, variant="xnor", **kwargs):
    """ImageNet ResNet-18 (4 stages of 2 basic blocks, widths 64-512) in ``variant`` precision;
    the PokeBNN variant starts with PokeInit instead of the 7x7 convolution and max pooling."""
    stem = "poke" if variant == "pokebnn" else "imagenet"
    return binary_resnet(input_shape, classes=classes, stages=RESNET_18, stem=stem, variant=variant,
                         name=f"resnet18_{variant}", **kwargs)


def _check_head(capsule_layer="xnodr", classifier_activation="softmax", **_):
    if capsule_layer not in CAPSULE_LAYERS:
        raise ValueError(f"unknown capsule layer {capsule_layer!r}: expected one of {', '.join(CAPSULE_LAYERS)}")
    if classifier_activation not in ("softmax", None):
        raise ValueError(f"capsule heads take classifier_activation 'softmax' or None, got {classifier_activation!r}")


def capsule_head(features, classes, capsule_layer="xnodr", primary_types=8, primary_dim=8, capsule_dim=16,
                 routings=3, classifier_activation="softmax"):
    """Primary capsules from a feature map, then an XnODR / XnIDR layer with one capsule per class.

    ``classifier_activation="softmax"`` returns the capsule lengths normalized to sum to one
    (softmax of the log-lengths); None returns the lengths.
    """
    _check_head(capsule_layer, classifier_activation)
    x = layers.Conv2D(primary_types * primary_dim, 1, name="primary_capsules_conv")(features)
    x = layers.Reshape((-1, primary_dim), name="primary_capsules")(x)
    x = Squash(name="primary_capsules_squash")(x)
    x = CAPSULE_LAYERS[capsule_layer](classes, capsule_dim, routings, name=f"{capsule_layer}_capsules")(x)
    return CapsuleLength(normalize=classifier_activation == "softmax", name="predictions")(x)


def _with_capsule_head(backbone, classes, name, **head):
    model = keras.Model(backbone.input, capsule_head(backbone.output, classes, **head), name=name)
    return inherit_report(model, backbone)


def capsule_mobilenet_v2(input_shape=(224, 224, 3), alpha=1.0, classes=10, weights=None, capsule_layer="xnodr",
                         **head):
    """MobileNetV2 (``include_top=False``) with an XnODR / XnIDR capsule head (``capsule_head``)."""
    _check_head(capsule_layer, **head)
    backbone = mobilenet_v2(input_shape, alpha, include_top=False, weights=weights)
    return _with_capsule_head(backbone, classes, f"mobilenetv2_{capsule_layer}", capsule_layer=capsule_layer,
                              **head)


def capsule_resnet50(input_shape=(224, 224, 3), classes=10, weights=None, capsule_layer="xnodr", **head):
    """ResNet-50 (``include_top=False``) with an XnODR / XnIDR capsule head (``capsule_head``)."""
    _check_head(capsule_layer, **head)
    backbone = resnet50(input_shape, include_top=False, weights=weights)
    return _with_capsule_head(backbone, classes, f"resnet50_{capsule_layer}", capsule_layer=capsule_layer, **head)
