"""Pretrained weights for the kit's builders: the ImageNet weights of ``keras.applications``
mapped onto the kit's layers, and the input preprocessing those weights were trained with.

``load_weights(model, arch, weights)`` fills a model built by one of the ``FAMILIES`` builders
(MobileNetV2, MobileNetV3-Large/-Small, ResNet-50, DenseNet-121) from

- ``"imagenet"``: the file ``keras.applications`` loads for the same architecture, width and
  top (same name and URL; ``imagenet_weights``), looked up in the Keras cache
  (``~/.keras/models``) and downloaded there when online;
- a path: a weights file of a ``keras.applications`` model (the released ``.h5`` files, the
  legacy HDF5 format tf_keras writes, or a Keras 3 ``.weights.h5``), or of a kit model.

The file's arrays are read with h5py rather than by ``Model.load_weights``: the kit names its
layers differently (``block3_expand`` for ``block_3_expand``), merges some of them
(MobileNetV3's squeeze-excite is one ``SqueezeExcite`` layer for two ``Conv2D``; its top
1x1 convolutions are ``Dense`` layers) and changes others (``mobilenet_v2(pointwise="wht1d")``),
and Keras loads a file only whole, into the architecture that wrote it. Here each family's
``rules`` translate the file's layer names to the kit's; every kit layer whose translated
arrays have its exact shapes (a 1x1 kernel feeds a ``Dense`` kernel) is loaded, the others keep
their initialization, and the model says which: ``model.pretrained`` is ``{"source": "imagenet"
or the path, "loaded": [layer names], "initialized": [layer names]}`` (None without weights).

Legacy HDF5 files name their layers; a Keras 3 ``.weights.h5`` numbers them by class in the
order of ``model.layers`` (``layers/conv2d_3``). Its names are recovered from a model with that
structure: the model being loaded, or the ``keras.applications`` model of the family.

``input_preprocessing(mode)`` gives the layers that turn pixels in [0, 255] into the input the
weights expect (``keras.applications.imagenet_utils.preprocess_input``'s modes).

References: ``keras.applications`` (keras/src/applications, tf_keras/src/applications); the
Keras 3 weights format (keras/src/saving/saving_lib.py) and the legacy HDF5 format
(keras/src/legacy/saving/legacy_h5_format.py).
"""
import os
import re
from typing import NamedTuple

import numpy as np

from keras_layers.keras_api import keras

IMAGENET_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"


class Family(NamedTuple):
    """How a builder's models take ``keras.applications`` weights.

    ``application``: the ``keras.applications`` builder of the same network. ``folder`` and
    ``file``: where its ImageNet weights are (``IMAGENET_URL`` + folder + file, the file name
    filled in with ``alpha``, ``size``, ``variant`` and ``top``: ``""`` with the classifier,
    ``no_top`` without). ``widths``: the ``(alpha, minimalistic)`` pairs with ImageNet weights;
    ``sizes``: the input sizes with their own file (others use the last). ``rules``: ``(pattern,
    kit name, part)`` translating a file's layer names (lower case, ``/`` as ``_``, ``BatchNorm``
    as ``bn``) to the kit's; a kit layer made of several file layers takes their arrays in part
    order; names no rule matches are kept (the kit's own files). ``top``: the classifier layers.
    """

    application: str
    folder: str
    file: str
    no_top: str
    widths: tuple = ((1.0, False),)
    sizes: tuple = (224,)
    rules: tuple = ()
    top: tuple = ("predictions",)


_BLOCK = r"(?:block|expanded_conv)_(\d+)_(expand|depthwise|project)(_bn)?"
FAMILIES = {
    "mobilenet_v2": Family(
        "MobileNetV2", "mobilenet_v2/", "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{alpha}_{size}{top}.h5",
        "_no_top", widths=tuple((alpha, False) for alpha in (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)),
        sizes=(96, 128, 160, 192, 224),
        rules=(("conv1", "stem"), ("bn_conv1", "stem_bn"), (_BLOCK, r"block\1_\2\3"), ("conv_1", "head"),
               ("conv_1_bn", "head_bn"), ("logits", "predictions"))),  # the released files' top is "Logits"
    **{f"mobilenet_v3_{size}": Family(
        f"MobileNetV3{size.title()}", "mobilenet_v3/", "weights_mobilenet_v3_{variant}_224_{alpha}_float{top}.h5",
        "_no_top_v2", widths=((0.75, False), (1.0, False), (1.0, True)),
        rules=(("conv", "stem"), ("conv_bn", "stem_bn"), (_BLOCK, r"block\1_\2\3"),
               (r"expanded_conv_(\d+)_squeeze_excite_conv", r"block\1_se", 0),
               (r"expanded_conv_(\d+)_squeeze_excite_conv_1", r"block\1_se", 1),
               ("conv_1", "head"), ("conv_1_bn", "head_bn"), ("conv_2", "head_dense"), ("logits", "predictions")),
        top=("head_dense", "predictions")) for size in ("large", "small")},
    "resnet50": Family("ResNet50", "resnet/", "resnet50_weights_tf_dim_ordering_tf_kernels{top}.h5", "_notop"),
    "densenet121": Family("DenseNet121", "densenet/", "densenet121_weights_tf_dim_ordering_tf_kernels{top}.h5",
                          "_notop", rules=((r"conv(\d)_block(\d+)_(\d)_(conv|bn)", r"conv\1_layer\2_\3_\4"),)),
}

# preprocess_input's modes: (scale, offset) of pixels in [0, 255], per RGB channel where a tuple,
# and whether the channels are reversed first (the caffe models read BGR).
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
PREPROCESSING = {
    "tf": (1 / 127.5, -1.0, False),  # [-1, 1]: the MobileNets
    "caffe": (1.0, (-103.939, -116.779, -123.68), True),  # BGR minus the ImageNet means: ResNet
    "torch": (tuple(1 / (255 * std) for std in IMAGENET_STD),  # (x / 255 - mean) / std: DenseNet
              tuple(-mean / std for mean, std in zip(IMAGENET_MEAN, IMAGENET_STD)), False),
}


def input_preprocessing(mode="tf"):
    """The layers that take pixels in [0, 255] (RGB) to the input of a ``mode`` network.

    ``"tf"``: ``Rescaling`` to [-1, 1]; ``"torch"``: a per-channel ``Rescaling``; ``"caffe"``: a
    fixed 1x1 convolution that reverses the channels and subtracts the means (exact in float,
    a TFLite ``CONV_2D`` in float and int8).
    """
    if mode not in PREPROCESSING:
        raise ValueError(f"unknown preprocessing {mode!r}: expected one of {', '.join(PREPROCESSING)}")
    scale, offset, reverse = PREPROCESSING[mode]
    if not reverse:
        name = "scale_to_unit" if mode == "tf" else f"{mode}_normalize"
        return [keras.layers.Rescaling(scale, offset=offset, name=name)]
    kernel = (scale * np.eye(3)[::-1]).reshape(1, 1, 3, 3)
    return [keras.layers.Conv2D(3, 1, trainable=False, name=f"{mode}_to_bgr",
                                kernel_initializer=keras.initializers.Constant(kernel.tolist()),
                                bias_initializer=keras.initializers.Constant(list(offset)))]


def imagenet_weights(arch, alpha=1.0, size=224, include_top=True, minimalistic=False):
    """The path of the ``keras.applications`` ImageNet weights for ``arch`` (a key of ``FAMILIES``),
    from the Keras cache or downloaded into it; a one-line ``OSError`` naming the file and its URL
    when it is neither cached nor reachable."""
    family = FAMILIES[arch]
    if (float(alpha), bool(minimalistic)) not in family.widths:
        widths = ", ".join(f"{a}{' minimalistic' if m else ''}" for a, m in family.widths)
        raise ValueError(f"{arch} has ImageNet weights for alpha {widths}; got alpha={alpha}"
                         f"{' minimalistic' if minimalistic else ''}")
    variant = arch.removeprefix("mobilenet_v3_") + ("_minimalistic" if minimalistic else "")
    fname = family.file.format(alpha=float(alpha), size=size if size in family.sizes else family.sizes[-1],
                               variant=variant, top="" if include_top else family.no_top)
    url = IMAGENET_URL + family.folder + fname
    try:
        return keras.utils.get_file(fname, url, cache_subdir="models")
    except Exception as error:  # get_file raises a bare Exception when the download fails
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise OSError(f"ImageNet weights {fname} are not in the Keras cache (models/ under KERAS_HOME or ~/.keras) "
                      f"and could not be downloaded ({reason}): download {url} and pass its path as the weights "
                      f"(weights=PATH; mobilekit: --weights PATH)") from error


def load_weights(model, arch, weights, alpha=1.0, include_top=True, minimalistic=False):
    """Load ``weights`` (None, ``"imagenet"`` or a path) into ``model``, built by builder ``arch``
    (a key of ``FAMILIES``), and attach the ``pretrained`` report; returns ``model``."""
    if weights is None:
        model.pretrained = None
        return model
    if not isinstance(weights, (str, os.PathLike)):
        raise ValueError(f"weights must be None, 'imagenet' or the path of a weights file, got {weights!r}")
    path = str(weights)
    if path == "imagenet":
        path = imagenet_weights(arch, alpha, model.inputs[0].shape[1], include_top, minimalistic)
    arrays = read_weights(path, model, arch)
    loaded = []
    for layer in weighted_layers(model):
        source = arrays.get(layer.name)
        if source is not None and len(source) == len(layer.weights) and all(
                _fits(array, weight) for array, weight in zip(source, layer.weights)):
            layer.set_weights([np.reshape(array, weight.shape) for array, weight in zip(source, layer.weights)])
            loaded.append(layer.name)
    if not loaded:
        raise ValueError(f"weights file {path} matches no layer of {model.name}: expected weights of {arch} "
                         f"(keras.applications' {FAMILIES[arch].application} or the kit's)")
    return attach_report(model, str(weights), loaded)


def _fits(array, weight):
    """Same shape, or a 1x1 convolution kernel for a ``Dense`` kernel."""
    return tuple(array.shape) in (tuple(weight.shape), (1, 1, *weight.shape))


def weighted_layers(model):
    """The layers of ``model`` that have weights, those of nested models included."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from weighted_layers(layer)
        elif layer.weights:
            yield layer


def attach_report(model, source, loaded):
    """Set ``model.pretrained``: ``loaded`` (the names present in ``model``) and the other weighted
    layers as ``initialized``; None when ``source`` is None. Returns ``model``."""
    if source is None:
        model.pretrained = None
        return model
    names = [layer.name for layer in weighted_layers(model)]
    model.pretrained = {"source": source, "loaded": [name for name in names if name in set(loaded)],
                        "initialized": [name for name in names if name not in set(loaded)]}
    return model


CLASSIFIER = "predictions"  # the kit's name for a classifier's last (class-scoring) layer


def restart_classifier(model):
    """Re-initialize ``model``'s classifier layer (``CLASSIFIER``) when pretrained weights filled it,
    and list it as initialized: fine-tuning starts a new classifier even when a weights file's
    top has the same number of classes (other classes, or the same ones of another data set).
    Returns ``model``."""
    report = getattr(model, "pretrained", None)
    if not report or CLASSIFIER not in report["loaded"]:
        return model
    layer = next(layer for layer in weighted_layers(model) if layer.name == CLASSIFIER)
    layer.kernel.assign(layer.kernel_initializer(layer.kernel.shape))
    if layer.use_bias:
        layer.bias.assign(layer.bias_initializer(layer.bias.shape))
    return attach_report(model, report["source"], [name for name in report["loaded"] if name != CLASSIFIER])


def inherit_report(model, part):
    """``attach_report`` for ``model`` built around ``part`` (a backbone): ``part``'s loaded layers."""
    report = getattr(part, "pretrained", None)
    return attach_report(model, report and report["source"], report["loaded"] if report else [])


def read_weights(path, model, arch):
    """``{kit layer name: [arrays in the layer's weight order]}`` from the weights file ``path``
    for ``model`` of family ``arch``."""
    import h5py

    if not os.path.isfile(path):
        raise ValueError(f"weights file {path} does not exist: expected 'imagenet' or the path of a .h5 weights file")
    try:
        file = h5py.File(path, "r")
    except OSError as error:
        raise ValueError(f"weights file {path} is not an HDF5 weights file ({error}): expected a .h5 file "
                         "saved by Keras") from None
    with file:
        root = file["model_weights"] if "model_weights" in file else file
        if "layer_names" in root.attrs:
            named = _legacy_arrays(root)
        elif "layers" in root:
            named = _keras3_arrays(root["layers"], model, arch, path)
        else:
            raise ValueError(f"weights file {path} holds no Keras weights: expected the layer_names of a legacy "
                             ".h5 file or the layers group of a .weights.h5 file")
    parts = {}
    for name, arrays in named:
        kit_name, part = _translate(name, FAMILIES[arch].rules)
        parts.setdefault(kit_name, {})[part] = arrays
    return {name: [array for part in sorted(by_part) for array in by_part[part]] for name, by_part in parts.items()}


def _translate(name, rules):
    """``(kit name, part)`` of a file's layer name (block 0 of the MobileNets has no number there)."""
    name = name.lower().replace("/", "_").replace("batchnorm", "bn")
    name = re.sub(r"^expanded_conv_(?!\d)", "expanded_conv_0_", name)
    for pattern, kit_name, *part in rules:
        match = re.fullmatch(pattern, name)
        if match:
            return match.expand(kit_name), (part or [0])[0]
    return name, 0


def _text(value):
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def _legacy_arrays(root):
    """``[(layer name, arrays)]`` of a legacy HDF5 weights group (named layers and weights)."""
    named = []
    for name in map(_text, root.attrs["layer_names"]):
        weight_names = [_text(weight) for weight in root[name].attrs["weight_names"]]
        if weight_names:
            named.append((name, [np.asarray(root[name][weight]) for weight in weight_names]))
    return named


def _saving_keys(model):
    """``{key: layer}`` for the weighted layers of ``model`` as Keras 3 names them in a weights
    file: the class name in snake case, numbered from the second layer of a class on."""
    used, keys = {}, {}
    for layer in model.layers:
        name = re.sub("([a-z])([A-Z])", r"\1_\2", re.sub("(.)([A-Z][a-z]+)", r"\1_\2", type(layer).__name__)).lower()
        used[name] = used.get(name, -1) + 1
        if layer.weights:
            keys[f"{name}_{used[name]}" if used[name] else name] = layer
    return keys


def _has_arrays(group):
    return group.visititems(lambda _, item: True if hasattr(item, "shape") else None) is not None


def _keras3_arrays(layers_group, model, arch, path):
    """``[(layer name, arrays)]`` of a Keras 3 weights file, its keys resolved by the first model of
    the same structure: ``model`` (the file's top may be missing, or, when ``model`` has none,
    be of a class ``model`` lacks), else the ``keras.applications`` model of ``arch`` (standard
    or minimalistic, its top optional)."""
    stored = {key for key in layers_group if _has_arrays(layers_group[key])}
    family = FAMILIES[arch]

    def tops(keys):
        return {key for key, layer in keys.items() if _translate(layer.name, family.rules)[0] in family.top}

    def fits(keys, extra_classes_ok):
        missing, extra = set(keys) - stored, stored - set(keys)
        classes = {re.sub(r"_\d+$", "", key) for key in keys}
        return missing <= tops(keys) and (not extra or extra_classes_ok and all(
            re.sub(r"_\d+$", "", key) not in classes for key in extra))

    def references():
        application = getattr(keras.applications, family.application)
        for minimalistic in (False, True) if family.application.startswith("MobileNetV3") else (False,):
            options = {"minimalistic": minimalistic} if minimalistic else {}
            yield application(input_shape=(64, 64, 3), weights=None, **options)

    candidates = ((model, not tops(_saving_keys(model))), *((reference, False) for reference in references()))
    for candidate, extra_classes_ok in candidates:
        keys = _saving_keys(candidate)
        if fits(keys, extra_classes_ok):
            return [(keys[key].name, _group_arrays(layers_group[key], keys[key])) for key in sorted(stored & set(keys))]
    raise ValueError(f"weights file {path} has layers of another structure than {model.name} and keras.applications' "
                     f"{family.application}: expected a Keras 3 weights file of either (or a legacy .h5 file)")


def _group_arrays(group, layer):
    """The arrays of ``layer`` under its group of a Keras 3 weights file, in ``layer.weights``
    order: its own variables (``vars/0``, ...), then those of its sublayers (groups named by
    attribute) in the order of their first weight in ``layer.weights``."""
    arrays = [np.asarray(group["vars"][str(i)]) for i in range(len(group["vars"]))] if "vars" in group else []
    positions = {id(weight): i for i, weight in enumerate(layer.weights)}
    children = [name for name in group if name != "vars" and getattr(layer, name, None) is not None
                and getattr(layer, name).weights]
    for name in sorted(children, key=lambda child: positions.get(id(getattr(layer, child).weights[0]), 0)):
        arrays += _group_arrays(group[name], getattr(layer, name))
    return arrays
