"""Backbones with feature taps: named intermediate feature maps of the zoo's classifiers.

The builders of the MobileNets (and GhostNet) record, as they build, which layer's output plays
each role of ``TAP_ROLES`` (``models.taps``): ``stride4``/``stride8``/``stride16`` (the last
block output at that stride), ``stride16_expanded`` (the expansion of the first stride-32 block,
still at stride 16: SSDLite's first feature map; ``stride8_expanded`` the same for the first
stride-16 block, at stride 8), ``final`` (the last bottleneck, Mobile DeepLabv3's "second last
feature map") and ``last`` (the last 1x1 layer). ``feature_tap_names(model)`` returns them; any
builder of the registry that records them plugs into the heads.

``output_stride`` below 32 turns the backbone atrous, as DeepLab does (Chen et al., "Rethinking
Atrous Convolution for Semantic Image Segmentation", 2017): a convolution that would take the
feature map past the output stride keeps stride 1, and every later convolution with a kernel
larger than 1x1 dilates by ``input_stride / output_stride``. Parameters do not change. The dilated
layers become ``keras_layers.dilated``'s, which convert to dilated TFLite builtins that XNNPACK runs
(Keras' own convert to ``SPACE_TO_BATCH_ND`` / ``BATCH_TO_SPACE_ND``, which it does not).
"""
import math

from keras_layers.dilated import DilatedConv2D, DilatedDepthwiseConv2D
from keras_layers.keras_api import keras
from models.pretrained import inherit_report

layers = keras.layers

OUTPUT_STRIDES = (8, 16, 32)
DILATED = {layers.Conv2D: DilatedConv2D, layers.DepthwiseConv2D: DilatedDepthwiseConv2D}


def _input_stride(layer, input_height):
    """The stride of ``layer``'s input relative to the image (a power of two)."""
    height = layer.input.shape[1]
    return 2 ** round(math.log2(input_height / height))


def atrous(model, output_stride):
    """A copy of ``model`` (same weights) whose feature maps stop shrinking at ``output_stride``."""
    if output_stride not in OUTPUT_STRIDES:
        raise ValueError(f"output_stride must be one of {OUTPUT_STRIDES}, got {output_stride}")
    input_height = model.inputs[0].shape[1]

    def clone(layer):
        config, kind = layer.get_config(), layer.__class__
        if isinstance(layer, (layers.Conv2D, layers.DepthwiseConv2D)):
            stride_in = _input_stride(layer, input_height)
            if stride_in >= output_stride:
                config["strides"] = (1, 1)
                if max(config["kernel_size"]) > 1 and stride_in > output_stride:
                    config["dilation_rate"] = (stride_in // output_stride,) * 2
                    kind = DILATED.get(kind, kind)
        return kind.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone)
    for source, target in zip(model.layers, copy.layers):
        target.set_weights(source.get_weights())
    if getattr(model, "feature_taps", None):
        copy.feature_taps = dict(model.feature_taps)  # clone_model keeps the layer names
    expected = math.ceil(input_height / output_stride)
    smallest = min(layer.output.shape[1] for layer in copy.layers if len(layer.output.shape) == 4)
    if output_stride < 32 and smallest < expected:
        raise ValueError(f"{model.name} downsamples inside a composite layer; it cannot run at output stride "
                         f"{output_stride}")
    return copy


def feature_tap_names(model):
    """``{role: layer name}``: the feature taps ``model``'s builder recorded (roles of ``TAP_ROLES``)."""
    taps = getattr(model, "feature_taps", None)
    if not taps:
        raise ValueError(f"model {model.name!r} has no feature taps: its builder records none (the MobileNets' "
                         f"and GhostNet's do)")
    return dict(taps)


def feature_taps(model, layer_names):
    """A model from ``model``'s input to the outputs of ``layer_names`` (in that order)."""
    missing = [name for name in layer_names if name not in {layer.name for layer in model.layers}]
    if missing:
        raise ValueError(f"{model.name} has no layer named {', '.join(missing)}")
    return keras.Model(model.inputs, [model.get_layer(name).output for name in layer_names],
                       name=f"{model.name}_features")


def backbone_features(arch, input_shape, taps, alpha=1.0, output_stride=32, weights=None, **builder_args):
    """Build ``arch`` without its top and return a model giving the feature maps ``taps``.

    Args:
        arch: an architecture of the registry whose builder records feature taps
            (``models.registry.backbones()``).
        taps: roles (of ``TAP_ROLES``, as the builder recorded them: ``feature_tap_names``) or
            layer names, in output order.
        output_stride: 32 (as built), 16 or 8 (atrous; see ``atrous``).
        weights: the builder's ``weights`` (None, ``"imagenet"`` or a path; ``models.pretrained``),
            loaded before the backbone turns atrous (the weight shapes do not change).
    Returns:
        A ``keras.Model`` with one output per tap; its ``pretrained`` attribute reports the
        loaded and initialized layers it keeps.
    """
    from models.registry import backbones, build  # here: the registry imports the heads, which import us

    if arch not in backbones():
        raise ValueError(f"architecture {arch!r} has no feature taps: expected one of {', '.join(backbones())}")
    built = build(arch, input_shape=input_shape, alpha=alpha, include_top=False, weights=weights, **builder_args)
    names = feature_tap_names(built)
    model = built if output_stride == 32 else atrous(built, output_stride)
    return inherit_report(feature_taps(model, [names.get(tap, tap) for tap in taps]), built)
