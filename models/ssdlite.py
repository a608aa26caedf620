"""SSDLite (Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018,
section 6.2; Howard et al., "Searching for MobileNetV3", ICCV 2019, section 6.1.1): SSD with
every regular convolution of its prediction layers replaced by a depthwise-separable one.

Feature levels: the backbone's stride-16 tap (MobileNetV2: the expansion layer of block 13;
MobileNetV3: the expansion layer of the 13th (Large) / 9th (Small) bottleneck) and its
stride-32 tap (the last 1x1 layer before pooling), then ``EXTRA_DEPTHS`` extra levels, each
1x1 conv to half the depth -> 3x3 depthwise stride 2 -> 1x1 conv to the depth (BN + ReLU6).
Each level predicts, per cell and default box (``models.anchors``), four box offsets and
``classes + 1`` class logits (index 0 = background) through 3x3 depthwise (BN, ReLU6) -> 1x1
convolution. The model takes pixels in [0, 255], preprocessed inside as its backbone's registry
entry says (``models.pretrained.input_preprocessing``), and returns one tensor ``(N, A, 4 + classes + 1)``:
encoded boxes (``models.box_coding``) then class logits, anchors in ``default_boxes`` order.
"""
import math

from keras_layers.keras_api import keras
from models.anchors import AnchorConfig, boxes_per_cell, default_boxes
from models.backbones import backbone_features
from models.blocks import conv_bn, depthwise_bn
from models.pretrained import inherit_report, input_preprocessing

layers = keras.layers


DETECTION_TAPS = ("stride16_expanded", "last")  # roles of models.backbones.TAP_ROLES
EXTRA_DEPTHS = (512, 256, 256, 128)  # the SSDLite extra levels after the stride-32 tap
MIN_DEPTH = 16
MAX_CONCAT_INPUTS = 5  # XNNPACK runs a CONCATENATION of at most 5 inputs; more leave it for TFLite's kernel


def _extra_level(x, depth, name):
    x = conv_bn(x, max(MIN_DEPTH, depth // 2), 1, activation="relu6", name=f"{name}_reduce")
    x = depthwise_bn(x, 3, stride=2, activation="relu6", name=f"{name}_depthwise")
    return conv_bn(x, depth, 1, activation="relu6", name=f"{name}_project")


def _predictor(x, outputs_per_box, boxes, name):
    """3x3 depthwise (BN, ReLU6) -> 1x1 convolution with bias, flattened to (N, H*W*boxes, outputs)."""
    x = depthwise_bn(x, 3, activation="relu6", name=f"{name}_depthwise")
    x = layers.Conv2D(boxes * outputs_per_box, 1, name=name)(x)
    return layers.Reshape((-1, outputs_per_box), name=f"{name}_flat")(x)


def _concatenate_anchors(tensors, name):
    """Concatenate along the anchors, nested so that no op has more than ``MAX_CONCAT_INPUTS`` inputs."""
    if len(tensors) <= MAX_CONCAT_INPUTS:
        return layers.Concatenate(axis=1, name=name)(tensors)
    size = math.ceil(len(tensors) / math.ceil(len(tensors) / MAX_CONCAT_INPUTS))
    return _concatenate_anchors([_concatenate_anchors(tensors[i:i + size], f"{name}_{i // size}")
                                 for i in range(0, len(tensors), size)], name)


def ssdlite(backbone="mobilenet_v2", input_shape=(320, 320, 3), alpha=1.0, classes=80,
            extra_depths=EXTRA_DEPTHS, anchors=AnchorConfig(), taps=DETECTION_TAPS, backbone_weights=None, name=None):
    """Build an SSDLite detector over a zoo backbone.

    Args:
        backbone: an architecture whose builder records feature taps (``models.backbones.feature_tap_names``).
        input_shape: (height, width, 3); pixels in [0, 255].
        alpha: width multiplier of the backbone and the extra levels.
        classes: object classes (the head adds background as class 0).
        extra_depths: depths of the extra stride-2 levels (the papers: 512, 256, 256, 128).
        anchors: the default-box settings (``models.anchors.AnchorConfig``, or its fields as a dict, as a
            run's config records them).
        taps: the backbone feature maps the head reads (roles of ``models.backbones.TAP_ROLES``
            or layer names), finest first; the papers' are the stride-16 and stride-32 ones.
        backbone_weights: None, ``"imagenet"`` or the path of a weights file for the backbone's
            builder (``models.pretrained``).
    Returns:
        A ``keras.Model`` with output ``(N, A, 4 + classes + 1)``; its ``pretrained`` attribute
        reports the loaded backbone layers and the initialized ones (the head's among them).
    """
    from models.registry import architecture  # here: the registry imports this module
    if classes < 1:
        raise ValueError(f"classes must be >= 1, got {classes}")
    anchors = AnchorConfig(**anchors) if isinstance(anchors, dict) else anchors
    features = backbone_features(backbone, input_shape, taps, alpha=alpha, weights=backbone_weights)
    inputs = x = keras.Input(shape=input_shape, name="pixels")
    for layer in input_preprocessing(architecture(backbone).preprocessing):
        x = layer(x)
    levels = features(x)
    levels = list(levels) if isinstance(levels, (list, tuple)) else [levels]
    for index, depth in enumerate(extra_depths):
        levels.append(_extra_level(levels[-1], max(MIN_DEPTH, int(depth * alpha)), name=f"extra{index}"))
    boxes, scores = [], []
    for level, (x, count) in enumerate(zip(levels, boxes_per_cell(len(levels), anchors))):
        boxes.append(_predictor(x, 4, count, name=f"box_level{level}"))
        scores.append(_predictor(x, classes + 1, count, name=f"class_level{level}"))
    outputs = layers.Concatenate(axis=-1, name="detections")([
        _concatenate_anchors(boxes, "box_encodings"), _concatenate_anchors(scores, "class_logits")])
    model = keras.Model(inputs, outputs, name=name or f"ssdlite_{features.name.removesuffix('_features')}")
    return inherit_report(model, features)


def feature_sizes(model):
    """``[(H, W), ...]`` of the feature levels of an SSDLite model (built here or loaded)."""
    sizes, level = [], 0
    while any(layer.name == f"box_level{level}" for layer in model.layers):
        shape = model.get_layer(f"box_level{level}").output.shape
        sizes.append((int(shape[1]), int(shape[2])))
        level += 1
    if not sizes:
        raise ValueError(f"model {model.name!r} is not an SSDLite detector: it has no box_level0 layer")
    return sizes


def model_anchors(model, anchors=AnchorConfig()):
    """The default boxes an SSDLite model predicts against, ``(A, 4)`` center form."""
    return default_boxes(feature_sizes(model), anchors)


def num_classes(model):
    """Object classes of an SSDLite model (background excluded)."""
    return int(model.outputs[0].shape[-1]) - 5
