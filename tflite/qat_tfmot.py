"""Quantization-aware training (QAT) with the TensorFlow Model Optimization Toolkit (TFMOT), for tf_keras
models: ``mobilekit export --qat-backend tfmot`` and the comparison row of ``mobilekit optimize``
(``tflite.qat`` trains Keras 3 models quantization-aware in the same process).

QAT (Jacob et al., "Quantization and Training of Neural Networks for Efficient
Integer-Arithmetic-Only Inference", CVPR 2018; the survey of Roth et al., section on
quantization) inserts fake-quantization nodes into the float model and fine-tunes it, so
that the weights adapt to the int8 grid the TFLite model will use:

    q(x) = clip(round(x / s) + z, -128, 127),     x~ = s (q(x) - z)

weights per output channel, symmetric (z = 0) with s = max|w| / 127; activations per tensor,
asymmetric, s and z from moving averages of the observed min / max. Gradients pass the
rounding unchanged (straight-through estimator). Hard-swish and squeeze-excite networks
(MobileNetV3) lose accuracy under post-training int8 because their activation ranges are
wide and skewed; training through the quantizers recovers it.

Keras generation: TFMOT 0.8 quantizes only tf_keras (Keras 2) models. The functions here
must therefore run in a process started with ``TF_USE_LEGACY_KERAS=1`` (the kit's one Keras
switch, ``keras_layers.keras_api``). A Keras 3 process (the ``mobilekit`` CLI) runs the QAT
job in a child process with that variable set (``run_legacy``), and the two exchange only
weights: the child rebuilds the model from the run's config with the same builder (the
builders in ``models/`` produce the same layers, names and weight order under both Keras
generations) and loads the weights file written by Keras 3. This is robust where loading a
Keras 3 ``.keras`` file into tf_keras is not (the formats differ).

TFMOT's own registry covers the builtin layers; the kit's custom layers get a
``KitLayerQuantizeConfig``: the kernels of the convolution / dense sub-layers they hold are
fake-quantized (as TFMOT does for Conv2D) and so is the layer's output, so every tensor
between layers carries a trained range. The kit's models wrap the backbone in a model with
the input scaling (``models.train.with_preprocessing``); TFMOT cannot quantize nested
models, so ``flatten_preprocessing`` re-applies the backbone's layers after the scaling in
one flat graph first.
"""
import os
import subprocess
import sys

from keras_layers.keras_api import LEGACY_KERAS, keras
from keras_layers.protocol import KERNEL_ATTRIBUTES, calibrated_output, is_kit_layer

# Layers TFMOT has no registry entry for, quantized at their output only (no weights).
OUTPUT_ONLY = ("Rescaling",)


def tfmot_quantize():
    """``tfmot.quantization.keras`` (only under tf_keras: see the module docstring)."""
    if not LEGACY_KERAS:
        raise ValueError("quantization-aware training needs tf_keras: run with TF_USE_LEGACY_KERAS=1 "
                         "(or through tflite.qat_tfmot.run_legacy)")
    import tensorflow_model_optimization as tfmot

    return tfmot.quantization.keras


def _kernel_owners(layer):
    """(sub-layer, attribute) of every convolution / dense kernel inside ``layer``, in build order."""
    owners = []
    for sub in layer._flatten_layers(include_self=False, recursive=True):
        owners += [(sub, name) for name in KERNEL_ATTRIBUTES if getattr(sub, name, None) is not None]
    return owners


def _make_config_class():
    quantize = tfmot_quantize()
    quantizers = quantize.quantizers

    class KitLayerQuantizeConfig(quantize.QuantizeConfig):
        """Fake-quantize the kernels of a kit layer's sub-layers (8 bit, symmetric, per tensor,
        narrow range, last value) and its output (8 bit, asymmetric, moving average), the
        quantizers TFMOT's default scheme uses for Conv2D and activations."""

        def __init__(self, quantize_kernels=True, quantize_output=True):
            self.quantize_kernels = bool(quantize_kernels)
            self.quantize_output = bool(quantize_output)

        def _owners(self, layer):
            return _kernel_owners(layer) if self.quantize_kernels else []

        def get_weights_and_quantizers(self, layer):
            return [(getattr(sub, name), quantizers.LastValueQuantizer(
                num_bits=8, per_axis=False, symmetric=True, narrow_range=True)) for sub, name in self._owners(layer)]

        def get_activations_and_quantizers(self, layer):
            return []

        def set_quantize_weights(self, layer, quantize_weights):
            for (sub, name), weight in zip(self._owners(layer), quantize_weights):
                setattr(sub, name, weight)

        def set_quantize_activations(self, layer, quantize_activations):
            pass

        def get_output_quantizers(self, layer):
            return [quantizers.MovingAverageQuantizer(num_bits=8, per_axis=False, symmetric=False,
                                                      narrow_range=False)] if self.quantize_output else []

        def get_config(self):
            return {"quantize_kernels": self.quantize_kernels, "quantize_output": self.quantize_output}

    return KitLayerQuantizeConfig


_CONFIG_CLASS = []


def kit_layer_quantize_config(quantize_kernels=True, quantize_output=True):
    """A ``KitLayerQuantizeConfig`` (the class is made once, on first use, as it subclasses TFMOT's)."""
    if not _CONFIG_CLASS:
        _CONFIG_CLASS.append(_make_config_class())
    return _CONFIG_CLASS[0](quantize_kernels, quantize_output)


def quantize_scope():
    """The scope in which saved QAT models load: TFMOT's objects plus the kit's config."""
    kit_layer_quantize_config()
    return tfmot_quantize().quantize_scope({"KitLayerQuantizeConfig": _CONFIG_CLASS[0]})


def inbound_names(node):
    """Names of the layers feeding one inbound node of a functional config (either Keras format)."""
    if isinstance(node, dict):
        if "keras_history" in node:
            return [node["keras_history"][0]]
        return [name for value in node.values() for name in inbound_names(value)]
    if isinstance(node, (list, tuple)):
        if len(node) == 4 and isinstance(node[0], str) and isinstance(node[1], int):
            return [node[0]]  # tf_keras: [layer name, node index, tensor index, kwargs]
        return [name for value in node for name in inbound_names(value)]
    return []


def output_names(config):
    """Names of the output layers of a functional config (Keras 3 writes one output unnested)."""
    outputs = config["output_layers"]
    return [outputs[0]] if isinstance(outputs[0], str) else [entry[0] for entry in outputs]


def flatten_preprocessing(model):
    """``model`` with nested functional models inlined: one flat graph of the same layer objects.

    ``models.train.with_preprocessing`` gives ``pixels -> Rescaling -> backbone``; TFMOT's
    quantize and prune APIs refuse nested models. Each layer is called again, in the saved
    topological order, on the new tensors of the layers its config names as inputs.
    Models without nesting come back as they are.
    """
    if not any(isinstance(layer, keras.Model) for layer in model.layers):
        return model
    inputs = keras.Input(shape=model.inputs[0].shape[1:], name=model.layers[0].name)

    def apply(graph, graph_inputs):
        tensors = dict(zip((layer.name for layer in graph.layers if type(layer).__name__ == "InputLayer"),
                           graph_inputs))
        for entry in graph.get_config()["layers"]:
            layer = graph.get_layer(entry["name"])
            if type(layer).__name__ == "InputLayer":
                continue
            args = [tensors[name] for name in inbound_names(entry["inbound_nodes"])]
            args = args[0] if len(args) == 1 else args
            tensors[layer.name] = apply(layer, [args]) if isinstance(layer, keras.Model) else layer(args)
        return tensors[output_names(graph.get_config())[0]]

    return keras.Model(inputs, apply(model, [inputs]), name=model.name)


def annotate(model):
    """Annotate every kit layer (and builtin layers TFMOT does not know) with a quantize config."""
    quantize = tfmot_quantize()

    def annotate_layer(layer):
        if is_kit_layer(layer):
            config = kit_layer_quantize_config(quantize_output=not calibrated_output(layer))
            return quantize.quantize_annotate_layer(layer, config)
        if type(layer).__name__ in OUTPUT_ONLY:
            return quantize.quantize_annotate_layer(layer, kit_layer_quantize_config(quantize_kernels=False))
        return layer

    return keras.models.clone_model(model, clone_function=annotate_layer)


def quantize_model(model):
    """The QAT model of ``model``: flattened, kit layers annotated, TFMOT's default 8-bit scheme.

    The weights are those of ``model``; the result trains like any Keras model and converts
    with ``tflite.convert(qat_model, "int8", representative_data)``.
    """
    quantize = tfmot_quantize()
    annotated = annotate(flatten_preprocessing(model))
    with quantize_scope():
        return quantize.quantize_apply(quantize.quantize_annotate_model(annotated))


def run_legacy(module, args, progress=print):
    """Run ``python -m module *args`` under tf_keras (``TF_USE_LEGACY_KERAS=1``), passing its output on.

    Raises ValueError with the child's last error line when it fails.
    """
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1"}
    process = subprocess.Popen([sys.executable, "-m", module, *map(str, args)], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    last = []
    for line in process.stdout:
        line = line.rstrip()
        last = (last + [line])[-20:]
        progress(line)
    if process.wait() != 0:
        errors = [line for line in last if "error" in line.lower()] or last or ["no output"]
        raise ValueError(f"{module} failed under tf_keras: {errors[-1]}")


def _ordered_weights(layer):
    """A layer's weights in the one order both Keras generations agree on: trainable ones first,
    then the others, each in tracking order (``get_weights`` orders a composite layer's weights
    by sub-layer in Keras 3 but trainable-first in tf_keras)."""
    return [*layer.trainable_weights, *layer.non_trainable_weights]


def save_layer_weights(model, path):
    """Write every leaf layer's weights to ``path`` (.npz) by layer name: the one exchange format
    between a Keras 3 model and the same builder's tf_keras model (see the module docstring)."""
    import numpy as np

    from models.files import atomic_output
    from models.profile import leaf_layers

    arrays = {f"{layer.name}/{i}": np.asarray(w) for layer in leaf_layers(model)
              for i, w in enumerate(_ordered_weights(layer))}
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def load_layer_weights(model, path):
    """Set every leaf layer's weights of ``model`` from ``save_layer_weights``'s file, by layer name."""
    import numpy as np

    from models.profile import leaf_layers

    with np.load(path) as arrays:
        for layer in leaf_layers(model):
            for i, weight in enumerate(_ordered_weights(layer)):
                key = f"{layer.name}/{i}"
                if key not in arrays:
                    raise ValueError(f"weights file {path} has no weight {key} for layer {layer.name}")
                if tuple(arrays[key].shape) != tuple(weight.shape):
                    raise ValueError(f"weights file {path}: {key} has shape {arrays[key].shape}, layer {layer.name} "
                                     f"expects {tuple(weight.shape)}")
                weight.assign(arrays[key])
    return model
