"""MobileNetV3-Large and -Small (Howard et al., "Searching for MobileNetV3", ICCV 2019),
written as the paper's Tables 1 and 2 plus one builder.

Each ``Bneck`` record is one row of the table: kernel, expanded channels (the paper's "exp size"),
output channels, squeeze-excite, activation ("RE" ReLU, "HS" hard-swish), stride. Channel rounding, the
squeeze-excite width (a quarter of the expansion, rounded to 8), the 6x last 1x1 conv and
the bias-carrying 1x1 head (a Dense after pooling) follow ``keras.applications``, so
parameter counts equal ``keras.applications.MobileNetV3Large/Small``. As there, Small has
no squeeze-excite on its last 1x1 conv (Table 2 lists one), and stride-2 depthwise
convolutions use "same" padding (Keras pads explicitly; the weights are the same).

``minimalistic=True`` is a change of data: 3x3 kernels, no squeeze-excite, ReLU only. The
builder records the feature taps of the dense-prediction heads as it builds (``models.taps``;
``model.feature_taps``).
"""
from typing import NamedTuple

from keras_layers.activations import HardSwish, SqueezeExcite
from keras_layers.keras_api import keras
from models.blocks import check_builder_args, classifier_head, conv_bn, depthwise_bn, make_divisible
from models.pretrained import load_weights
from models.taps import TapRecorder

layers = keras.layers


class Bneck(NamedTuple):
    """One row of the MobileNetV3 tables: an inverted-residual bottleneck whose 1x1 expansion makes
    ``expanded`` channels (a count, the paper's "exp size", not an expansion ratio)."""

    kernel: int
    expanded: int
    channels: int
    se: bool
    activation: str
    stride: int


#                 k   exp   out   SE     NL  s
MOBILENET_V3_LARGE = (
    Bneck(3, 16, 16, False, "RE", 1),
    Bneck(3, 64, 24, False, "RE", 2),
    Bneck(3, 72, 24, False, "RE", 1),
    Bneck(5, 72, 40, True, "RE", 2),
    Bneck(5, 120, 40, True, "RE", 1),
    Bneck(5, 120, 40, True, "RE", 1),
    Bneck(3, 240, 80, False, "HS", 2),
    Bneck(3, 200, 80, False, "HS", 1),
    Bneck(3, 184, 80, False, "HS", 1),
    Bneck(3, 184, 80, False, "HS", 1),
    Bneck(3, 480, 112, True, "HS", 1),
    Bneck(3, 672, 112, True, "HS", 1),
    Bneck(5, 672, 160, True, "HS", 2),
    Bneck(5, 960, 160, True, "HS", 1),
    Bneck(5, 960, 160, True, "HS", 1),
)
MOBILENET_V3_SMALL = (
    Bneck(3, 16, 16, True, "RE", 2),
    Bneck(3, 72, 24, False, "RE", 2),
    Bneck(3, 88, 24, False, "RE", 1),
    Bneck(5, 96, 40, True, "HS", 2),
    Bneck(5, 240, 40, True, "HS", 1),
    Bneck(5, 240, 40, True, "HS", 1),
    Bneck(5, 120, 48, True, "HS", 1),
    Bneck(5, 144, 48, True, "HS", 1),
    Bneck(5, 288, 96, True, "HS", 2),
    Bneck(5, 576, 96, True, "HS", 1),
    Bneck(5, 576, 96, True, "HS", 1),
)
STEM_CHANNELS = 16
HEAD_EXPANSION = 6  # the last 1x1 conv: 960 = 6 * 160 (Large), 576 = 6 * 96 (Small)
LAST_CHANNELS = {"large": 1280, "small": 1024}
SE_RATIO = 0.25


def minimalistic_blocks(blocks):
    """The minimalistic variant of a table: 3x3 kernels, no squeeze-excite, ReLU."""
    return tuple(block._replace(kernel=3, se=False, activation="RE") for block in blocks)


def _activation(x, kind, name):
    if kind == "HS":
        return HardSwish(name=f"{name}_hswish")(x)
    if kind == "RE":
        return layers.ReLU(name=f"{name}_relu")(x)
    raise ValueError(f"unknown activation {kind!r}: expected 'RE' or 'HS'")


def bneck(x, block, in_channels, filters, name, taps=None):
    """MobileNetV3 bottleneck: 1x1 expand (when the expanded width differs from the input) ->
    k x k depthwise -> optional squeeze-excite -> linear 1x1 projection, identity shortcut
    when the shape is kept. ``in_channels`` is the table's input width, so the expansion
    ratio ``block.expanded / in_channels`` scales with ``alpha`` as in Keras. ``taps`` (a
    ``models.taps.TapRecorder``) records the block's output and expansion."""
    shortcut, channels = x, x.shape[-1]
    expanded = make_divisible(channels * (block.expanded / in_channels))
    expanded_map = None
    if block.expanded != in_channels:
        x = expanded_map = _activation(conv_bn(x, expanded, 1, name=f"{name}_expand"), block.activation,
                                       f"{name}_expand")
    x = depthwise_bn(x, block.kernel, block.stride, name=f"{name}_depthwise")
    x = _activation(x, block.activation, f"{name}_depthwise")
    if block.se:
        x = SqueezeExcite(make_divisible(expanded * SE_RATIO), name=f"{name}_se")(x)
    x = conv_bn(x, filters, 1, name=f"{name}_project")
    if block.stride == 1 and channels == filters:
        x = layers.Add(name=f"{name}_add")([shortcut, x])
    if taps is not None:
        taps.block(shortcut, x, expanded=expanded_map)
    return x


def mobilenet_v3(
    blocks,
    last_channels,
    input_shape=(224, 224, 3),
    alpha=1.0,
    minimalistic=False,
    include_top=True,
    weights=None,
    classes=1000,
    pooling=None,
    dropout_rate=0.2,
    classifier_activation="softmax",
    name="mobilenetv3",
    builder="mobilenet_v3",
):
    """Build a MobileNetV3 from a ``Bneck`` table (see ``mobilenet_v3_large`` for the args;
    ``builder`` names the builder in error messages)."""
    check_builder_args(builder, input_shape, weights, include_top, classes, alpha)
    if minimalistic:
        blocks = minimalistic_blocks(blocks)
    stem_activation = "RE" if minimalistic else "HS"
    inputs = keras.Input(shape=input_shape)
    taps = TapRecorder(inputs)
    x = _activation(conv_bn(inputs, STEM_CHANNELS, 3, stride=2, name="stem"), stem_activation, "stem")
    in_channels = STEM_CHANNELS
    for block_id, block in enumerate(blocks):
        x = bneck(x, block, in_channels, make_divisible(block.channels * alpha), name=f"block{block_id}", taps=taps)
        in_channels = block.channels
    x = conv_bn(x, make_divisible(x.shape[-1] * HEAD_EXPANSION), 1, name="head")
    x = _activation(x, stem_activation, "head")
    taps.last(x)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dense(make_divisible(last_channels * alpha) if alpha > 1.0 else last_channels, name="head_dense")(x)
        x = _activation(x, stem_activation, "head_dense")
        if dropout_rate > 0:
            x = layers.Dropout(dropout_rate, name="dropout")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    else:
        x = classifier_head(x, False, classes, pooling, classifier_activation)
    suffix = "_minimalistic" if minimalistic else ""
    model = taps.attach(keras.Model(inputs, x, name=f"{name}{suffix}_{alpha:0.2f}_{input_shape[0]}"))
    return load_weights(model, builder, weights, alpha, include_top, minimalistic)


def mobilenet_v3_large(input_shape=(224, 224, 3), alpha=1.0, minimalistic=False, include_top=True, weights=None,
                       classes=1000, pooling=None, dropout_rate=0.2, classifier_activation="softmax",
                       blocks=MOBILENET_V3_LARGE):
    """Build MobileNetV3-Large with the ``keras.applications`` signature.

    Args:
        input_shape: (height, width, channels), channels last.
        alpha: width multiplier of the blocks (the stem stays 16; the 1280-wide head only grows).
        minimalistic: 3x3 kernels, no squeeze-excite and ReLU instead of hard-swish.
        include_top: add pooling, the 1280-wide hidden layer and the ``classes``-way layer.
        weights: ``None``, ``"imagenet"`` (``keras.applications``' 224 weights for alpha 0.75 or
            1.0, minimalistic at 1.0 only) or the path of a weights file
            (``models.pretrained.load_weights``). Layers the weights do not fit keep their
            initialization.
        classes: number of classes of the top layer.
        pooling: ``None``, ``"avg"`` or ``"max"`` when ``include_top`` is False.
        dropout_rate: dropout before the top layer.
        classifier_activation: activation of the top layer (``None`` for logits).
        blocks: the block table; a variant network is a different table.
    Returns:
        A ``keras.Model`` whose ``feature_taps`` attribute maps the roles of
        ``models.taps.TAP_ROLES`` to layer names and whose ``pretrained`` attribute reports the
        loaded and initialized layers (``models.pretrained``; None without weights).
    """
    return mobilenet_v3(blocks, LAST_CHANNELS["large"], input_shape, alpha, minimalistic, include_top, weights,
                        classes, pooling, dropout_rate, classifier_activation, name="mobilenetv3large",
                        builder="mobilenet_v3_large")


def mobilenet_v3_small(input_shape=(224, 224, 3), alpha=1.0, minimalistic=False, include_top=True, weights=None,
                       classes=1000, pooling=None, dropout_rate=0.2, classifier_activation="softmax",
                       blocks=MOBILENET_V3_SMALL):
    """Build MobileNetV3-Small with the ``keras.applications`` signature (args as for Large;
    the hidden top layer is 1024 wide)."""
    return mobilenet_v3(blocks, LAST_CHANNELS["small"], input_shape, alpha, minimalistic, include_top, weights,
                        classes, pooling, dropout_rate, classifier_activation, name="mobilenetv3small",
                        builder="mobilenet_v3_small")
