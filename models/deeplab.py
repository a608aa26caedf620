"""Segmentation heads on the zoo's backbones: Mobile DeepLabv3 and LR-ASPP.

Mobile DeepLabv3 (Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks",
CVPR 2018, section 6.3) is DeepLabv3 (Chen et al., 2017) on the second last feature map of
MobileNetV2 (the 320-channel last bottleneck) at output stride 16 or 8. Its head is atrous
spatial pyramid pooling: parallel branches over the feature map F,

    1x1 conv(F),  3x3 conv with dilation r(F) for r in rates,  upsample(1x1 conv(mean(F))),

each ``channels`` wide with batch norm and ReLU, concatenated, projected by a 1x1 conv, then
a 1x1 conv to class logits, bilinearly resized to the input and a softmax. The paper's
"reduced" head (its fastest row, and the released model) has no atrous branches
(``rates=()``); the full ASPP uses rates (6, 12, 18) at stride 16, doubled at stride 8.

LR-ASPP (Howard et al., "Searching for MobileNetV3", ICCV 2019, section 6.3, Figure 10)
reads the stride-16 last layer H (atrous backbone) and the stride-8 features L:

    logits = resize(conv1x1(relu(bn(conv1x1(H))) * sigmoid(conv1x1(mean(H))))) + conv1x1(L)

resized to the input. The squeeze branch here is global average pooling (the paper's
49x49 pooling with stride (16, 20) is sized for 1024x2048 Cityscapes crops).

Both builders return a ``keras.Model`` mapping images to per-pixel class probabilities
``(N, H, W, classes)``; inputs are what the backbone takes ([-1, 1] for the MobileNets). Their
``backbone_weights`` (None, ``"imagenet"`` or a path; ``models.pretrained``) go to the backbone's
builder; the model's ``pretrained`` attribute reports the loaded backbone layers and the
initialized ones (the head's among them).
"""
from typing import NamedTuple

from keras_layers.keras_api import keras
from models.backbones import backbone_features
from models.blocks import conv_bn
from models.pretrained import inherit_report

layers = keras.layers


class ASPP(NamedTuple):
    """Atrous spatial pyramid pooling: branch width and the dilation rates at output stride 16."""

    channels: int = 256
    rates: tuple = ()


MOBILE_DEEPLAB_ASPP = {"reduced": ASPP(256, ()), "full": ASPP(256, (6, 12, 18))}


def _conv_bn_relu(x, filters, kernel, name, dilation=1):
    if dilation == 1:
        return conv_bn(x, filters, kernel, activation="relu", name=name)
    x = layers.Conv2D(filters, kernel, padding="same", dilation_rate=dilation, use_bias=False, name=name)(x)
    x = layers.BatchNormalization(name=f"{name}_bn", epsilon=1e-3)(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _image_pooling(features, filters, name):
    """Global average pooling -> 1x1 conv/BN/ReLU, spread back over the feature map's size by a bilinear
    resize of the 1x1 map (the same values as tiling; XNNPACK runs RESIZE_BILINEAR, not the
    TILE / EXPAND_DIMS / SHAPE ops that ``UpSampling2D`` converts to)."""
    height, width = features.shape[1:3]
    pooled = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_mean")(features)
    pooled = _conv_bn_relu(pooled, filters, 1, name=f"{name}_conv")
    return layers.Resizing(height, width, interpolation="bilinear", name=f"{name}_tile")(pooled)


def _to_input_size(logits, input_shape, activation, name):
    """Class logits resized bilinearly to the input, then the activation (None: logits)."""
    x = layers.Resizing(input_shape[0], input_shape[1], interpolation="bilinear", name=f"{name}_resize")(logits)
    return x if activation is None else layers.Activation(activation, name=f"{name}_probabilities")(x)


def _check(input_shape, classes):
    if (input_shape is None or len(input_shape) != 3 or min(input_shape[:2]) < 32
            or (input_shape[2] is not None and input_shape[2] < 1)):
        raise ValueError(f"input_shape must be (height, width, channels) with sides >= 32 and channels >= 1, got "
                         f"{input_shape!r}")
    if classes < 2:
        raise ValueError(f"a segmenter needs classes >= 2 (background included), got {classes}")


def mobile_deeplabv3(input_shape=(513, 513, 3), classes=21, alpha=1.0, output_stride=16, aspp="reduced",
                     backbone="mobilenet_v2", classifier_activation="softmax", backbone_weights=None, name=None):
    """Mobile DeepLabv3 on ``backbone``'s last bottleneck (``final`` tap).

    Args:
        input_shape: (height, width, channels).
        classes: number of classes, background included (Pascal VOC: 21).
        alpha: the backbone's width multiplier.
        output_stride: 16 or 8 (atrous backbone).
        aspp: ``"reduced"`` (no atrous branches, the MobileNetV2 paper's fast head), ``"full"``
            (rates 6, 12, 18 at stride 16) or an ``ASPP`` record.
        classifier_activation: ``"softmax"``, or ``None`` for logits.
        backbone_weights: the backbone's weights: None, ``"imagenet"`` or a path.
    """
    _check(input_shape, classes)
    if output_stride not in (8, 16):
        raise ValueError(f"Mobile DeepLabv3 runs at output stride 16 or 8, got {output_stride}")
    spec = MOBILE_DEEPLAB_ASPP.get(aspp, aspp)
    if not isinstance(spec, ASPP):
        raise ValueError(f"aspp must be one of {', '.join(MOBILE_DEEPLAB_ASPP)} or an ASPP record, got {aspp!r}")
    features = backbone_features(backbone, input_shape, ["final"], alpha=alpha, output_stride=output_stride,
                                 weights=backbone_weights)
    x = features.outputs[0]
    branches = [_conv_bn_relu(x, spec.channels, 1, name="aspp_1x1")]
    for rate in spec.rates:
        dilation = rate * 16 // output_stride
        branches.append(_conv_bn_relu(x, spec.channels, 3, name=f"aspp_rate{dilation}", dilation=dilation))
    branches.append(_image_pooling(x, spec.channels, name="aspp_pool"))
    x = _conv_bn_relu(layers.Concatenate(name="aspp_concat")(branches), spec.channels, 1, name="aspp_project")
    logits = layers.Conv2D(classes, 1, name="deeplab_logits")(x)
    outputs = _to_input_size(logits, input_shape, classifier_activation, name="deeplab")
    default = f"mobile_deeplabv3_{backbone}_{alpha:0.2f}_os{output_stride}_{'aspp' if spec.rates else 'reduced'}"
    return inherit_report(keras.Model(features.inputs, outputs, name=name or default), features)


def lr_aspp(input_shape=(512, 512, 3), classes=19, alpha=1.0, output_stride=16, channels=128,
            backbone="mobilenet_v3_large", classifier_activation="softmax", backbone_weights=None, name=None):
    """LR-ASPP (Lite Reduced ASPP) on ``backbone``'s stride-8 features and its last layer.

    Args:
        input_shape: (height, width, channels).
        classes: number of classes, background included.
        alpha: the backbone's width multiplier.
        output_stride: stride of the high-level features: 16 (the paper) or 32.
        channels: width of the high-level branch (the paper: 128).
        classifier_activation: ``"softmax"``, or ``None`` for logits.
        backbone_weights: the backbone's weights: None, ``"imagenet"`` or a path.
    """
    _check(input_shape, classes)
    if output_stride not in (16, 32):
        raise ValueError(f"LR-ASPP reads high-level features at output stride 16 or 32, got {output_stride}")
    features = backbone_features(backbone, input_shape, ["stride8", "last"], alpha=alpha, output_stride=output_stride,
                                 weights=backbone_weights)
    low, high = features.outputs
    x = _conv_bn_relu(high, channels, 1, name="lraspp_high")
    gate = layers.GlobalAveragePooling2D(keepdims=True, name="lraspp_mean")(high)
    gate = layers.Conv2D(channels, 1, activation="sigmoid", name="lraspp_gate")(gate)
    x = layers.Multiply(name="lraspp_scale")([x, gate])
    x = layers.Resizing(low.shape[1], low.shape[2], interpolation="bilinear", name="lraspp_up")(x)
    x = layers.Conv2D(classes, 1, name="lraspp_high_logits")(x)
    low_logits = layers.Conv2D(classes, 1, name="lraspp_low_logits")(low)
    logits = layers.Add(name="lraspp_add")([x, low_logits])
    outputs = _to_input_size(logits, input_shape, classifier_activation, name="lraspp")
    model = keras.Model(features.inputs, outputs, name=name or f"lr_aspp_{backbone}_{alpha:0.2f}_os{output_stride}")
    return inherit_report(model, features)
