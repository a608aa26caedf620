"""Quantization-aware training (QAT) of Keras 3 models, in the same process.

QAT (Jacob et al., CVPR 2018) trains a model through the int8 rounding its TFLite file will do, so
that the weights adapt to the grid; networks whose activations post-training quantization clips
or crowds (MobileNetV3's hard-swish and squeeze-excite) recover their float accuracy. TFMOT does
this for tf_keras models only (``tflite.qat_tfmot``) and Keras 3's ``quantize()`` is post-training;
``quantize_model`` does it for any functional or sequential Keras 3 model, nested models included.

It rebuilds the model's graph (nested models inlined) with the fake-quantization layers of
``tflite.fake_quant``, where the int8 file will hold an int8 tensor:

    model input                          -> ActivationQuantizer
    Conv2D / DepthwiseConv2D / Dense     -> QuantizedLayer: kernel per channel (Dense: per tensor);
      [-> BatchNormalization]                 a BatchNormalization that alone reads its output folded
      [-> ReLU / ReLU6]                       in; a ReLU / ReLU6 that alone reads the result fused;
                                              output quantized
    a kit layer (``keras_layers``)       -> QuantizedLayer: the kernels of the layers it holds (per
                                            tensor), its output (``CalibratedOutput``: calibrated only)
    a layer TFLite computes in the       -> the layer alone (pooling, reshaping, padding, dropout:
      input's scale                         the int8 op keeps its input's parameters)
    any other layer or operation         -> the layer, then ActivationQuantizer

The activation ranges are first calibrated on ``calibration_data`` (the model then computes what
post-training int8 would), then train with the weights (``fine_tune``). ``tflite.convert(qat_model,
"int8", data, integer_only=True)`` reads every range from the fake-quantization ops.

Refused with a one-line error naming the layer (or left float with ``keep_float``): layers with
weights other than those above (they would be quantized without having trained for it), kit layers
that quantize themselves (binary / low-bit: ``OperandBits``, ``MacsByBits``) and re-parameterizable
blocks in their training form (fold them first: ``models.reparameterize``).
"""
import numpy as np

from keras_layers.keras_api import LEGACY_KERAS, keras
from keras_layers.protocol import Foldable, MacsByBits, OperandBits, calibrated_output, implements, is_kit_layer
from models.input_pipeline import dataset
from models.train import compile_for_fit
from tflite.fake_quant import ActivationQuantizer, QuantizedLayer

QUANTIZED_KERNELS = ("Conv1D", "Conv2D", "DepthwiseConv2D", "Dense")  # and their subclasses
# Layers whose int8 TFLite op writes its input's scale and zero point: no quantizer of their own.
SAME_SCALE = ("MaxPooling1D", "MaxPooling2D", "AveragePooling2D", "Reshape", "Flatten", "Dropout", "SpatialDropout2D",
              "ZeroPadding2D", "Cropping2D", "Permute", "Identity", "UpSampling2D")


def _is(layer, names):
    return any(cls.__name__ in names and cls.__module__.startswith("keras") for cls in type(layer).__mro__)


def _fused_activation(layer):
    """Whether ``layer`` is a ReLU or ReLU6 that TFLite fuses into the convolution before it."""
    if _is(layer, ("ReLU",)):
        return not layer.negative_slope and not layer.threshold and layer.max_value in (None, 6.0)
    return _is(layer, ("Activation",)) and layer.activation.__name__ in ("relu", "relu6")


def _foldable_norm(conv, norm, rank):
    """Whether batch norm ``norm``, reading a rank-``rank`` output of ``conv``, folds into its kernel."""
    return (_is(conv, ("Conv2D", "DepthwiseConv2D", "Dense")) and not _is(conv, ("SeparableConv2D",))
            and conv.activation.__name__ == "linear" and _is(norm, ("BatchNormalization",))
            and norm.axis in (-1, rank - 1))


def _keras_tensors(structure):
    return [t for t in keras.tree.flatten(structure) if isinstance(t, keras.KerasTensor)]


def _is_graph(model):
    """Whether ``model`` is a functional or sequential model (whose layers ``replay`` inlines)."""
    return isinstance(model, keras.Sequential) or hasattr(model, "_run_through_graph")


def replay(model, inputs, call):
    """Call the operations of ``model`` on ``inputs`` through ``call(operation, *args, **kwargs)``,
    in graph order, nested functional and sequential models inlined; return the outputs."""
    if isinstance(model, keras.Sequential):
        outputs = inputs
        for layer in model.layers:
            outputs = replay(layer, outputs, call) if _is_graph(layer) else call(layer, outputs)
        return outputs

    def call_node(operation, *args, **kwargs):
        if _is_graph(operation):
            return replay(operation, args[0], call)
        return call(operation, *args, **kwargs)

    return model._run_through_graph(inputs, operation_fn=lambda operation: operation, call_fn=call_node)


def _new_inputs(model):
    return [keras.Input(batch_shape=t.shape, dtype=t.dtype, name=t.name) for t in model.inputs]


def _trace(model):
    """Every call of the model's graph, nested models inlined: ``[(operation, input ids, output ids,
    output rank)]``, and the number of readers of each tensor (a model output counts as one)."""
    calls = []

    def record(operation, *args, **kwargs):
        outputs = operation(*args, **kwargs)
        produced = _keras_tensors(outputs)
        calls.append((operation, [id(t) for t in _keras_tensors((args, kwargs))], [id(t) for t in produced],
                      len(produced[0].shape) if produced else 0))
        return outputs

    outputs = replay(model, _new_inputs(model)[0], record)
    readers = {}
    for _, inputs, _, _ in calls:
        for tensor in inputs:
            readers[tensor] = readers.get(tensor, 0) + 1
    for tensor in _keras_tensors(outputs):
        readers[id(tensor)] = readers.get(id(tensor), 0) + 1
    return calls, readers


def _check(layer, keep_float):
    """A one-line error for a layer QAT cannot quantize (unless kept float)."""
    if layer.name in keep_float or not isinstance(layer, keras.layers.Layer) or not layer.weights:
        return
    advice = f"keep it float with keep_float=[{layer.name!r}]"
    if is_kit_layer(layer):
        if implements(layer, MacsByBits) or (implements(layer, OperandBits)
                                             and min(layer.input_bits, layer.kernel_bits) < 32):
            raise ValueError(f"layer {layer.name} ({type(layer).__name__}) quantizes itself (binary / low-bit): {advice}")
        if implements(layer, Foldable) and not getattr(layer, "deploy", True):
            raise ValueError(f"layer {layer.name} ({type(layer).__name__}) is in its training form: fold the model "
                             f"first (models.reparameterize) or {advice}")
    elif not _is(layer, QUANTIZED_KERNELS + ("BatchNormalization",)):
        raise ValueError(f"layer {layer.name} ({type(layer).__name__}) has weights quantization-aware training cannot "
                         f"fake-quantize (expected Conv2D, DepthwiseConv2D, Dense, BatchNormalization or a kit "
                         f"layer): {advice}")


def plan(model, keep_float=()):
    """What ``quantize_model`` does at each call of the model's graph: ``[(kind, batch_norm, activation)]``
    with kind one of ``kernels`` (a QuantizedLayer), ``output`` (the operation, then a quantizer),
    ``same`` (the operation alone), ``float`` (kept float) or ``fused`` (folded into an earlier call)."""
    calls, readers = _trace(model)
    steps = [None] * len(calls)

    def sole_reader(index):
        """The call that alone reads call ``index``'s single output, or None."""
        outputs = calls[index][2]
        if len(outputs) != 1 or readers.get(outputs[0], 0) != 1:
            return None
        return next((j for j in range(index + 1, len(calls)) if outputs[0] in calls[j][1]), None)

    for index, (operation, _, _, rank) in enumerate(calls):
        if steps[index] is not None:
            continue
        _check(operation, keep_float)
        if getattr(operation, "name", None) in keep_float:
            steps[index] = ("float", None, None)
        elif is_kit_layer(operation) or _is(operation, QUANTIZED_KERNELS):
            norm = activation = None
            tail = index
            reader = sole_reader(tail)
            if (reader is not None and calls[reader][0].name not in keep_float
                    and _foldable_norm(operation, calls[reader][0], rank)):
                norm, tail = calls[reader][0], reader
                steps[reader] = ("fused", None, None)
            reader = sole_reader(tail)
            if (reader is not None and calls[reader][0].name not in keep_float and _fused_activation(calls[reader][0])
                    and _is(operation, QUANTIZED_KERNELS) and operation.activation.__name__ == "linear"):
                activation = calls[reader][0]
                steps[reader] = ("fused", None, None)
            steps[index] = ("kernels", norm, activation)
        elif _is(operation, SAME_SCALE):
            steps[index] = ("same", None, None)
        else:
            steps[index] = ("output", None, None)
    return steps


def _fresh(layer, copies):
    """A new layer like ``layer`` (same config; its weights are copied once built), one per layer."""
    if not isinstance(layer, keras.layers.Layer):
        return layer  # a stateless operation (``x + 3`` in a functional graph)
    if id(layer) not in copies:
        copies[id(layer)] = (type(layer).from_config(layer.get_config()), layer)
    return copies[id(layer)][0]


def quantize_model(model, calibration_data, keep_float=(), batch_size=32):
    """The QAT model of ``model`` (a new model; ``model`` is left as it is), its activation ranges
    calibrated on ``calibration_data`` (samples shaped like one model input, in its input range).

    ``keep_float``: names of layers left without quantizers (TFLite's selective quantization can
    keep them float: ``tflite.int8_debug``). Raises ValueError naming a layer it cannot quantize.
    """
    if LEGACY_KERAS:
        raise ValueError("tflite.qat quantizes Keras 3 models; under tf_keras use tflite.qat_tfmot")
    if not _is_graph(model):
        raise ValueError(f"model {model.name} is a subclassed keras.Model: quantization-aware training needs a "
                         f"functional or sequential model")
    if len(model.inputs) != 1:
        raise ValueError(f"model {model.name} has {len(model.inputs)} inputs: quantization-aware training "
                         f"expects one image input")
    keep_float = set(keep_float)
    unknown = keep_float - {layer.name for layer in _all_layers(model)}
    if unknown:
        raise ValueError(f"keep_float names no layer of model {model.name}: {', '.join(sorted(unknown))}")
    steps = iter(plan(model, keep_float))
    copies = {}

    def build(operation, *args, **kwargs):
        kind, norm, activation = next(steps)
        if kind == "fused":
            return args[0]
        layer = _fresh(operation, copies)
        if kind in ("same", "float"):
            return layer(*args, **kwargs)
        if kind == "output":
            return ActivationQuantizer(name=f"{getattr(operation, 'name', 'op')}_quant")(layer(*args, **kwargs))
        wrapper = QuantizedLayer(layer, _fresh(norm, copies) if norm else None,
                                 _fresh(activation, copies) if activation else None,
                                 train_range=not calibrated_output(operation), name=f"{operation.name}_quant")
        return wrapper(*args, **kwargs)

    inputs = _new_inputs(model)
    quantized_inputs = [ActivationQuantizer(name=f"{t.name}_quant")(t) for t in inputs]
    outputs = replay(model, quantized_inputs[0], build)
    for new, old in copies.values():
        new.set_weights(old.get_weights())
    qat_model = keras.Model(inputs[0], outputs, name=f"{model.name}_qat")
    calibrate(qat_model, calibration_data, batch_size)
    return qat_model


def _all_layers(model):
    return [layer for layer in model._flatten_layers(include_self=False, recursive=True)]


def activation_quantizers(model):
    """Every ``ActivationQuantizer`` of ``model``, those inside ``QuantizedLayer``s included."""
    return [layer for layer in _all_layers(model) if isinstance(layer, ActivationQuantizer)]


def calibrate(model, samples, batch_size=32):
    """Set every activation range of QAT ``model`` to the min / max it sees on ``samples`` (inference mode)."""
    quantizers = activation_quantizers(model)
    samples = np.asarray(samples, dtype=np.float32)
    if not len(samples):
        raise ValueError("quantization-aware training needs calibration samples: got none")
    for quantizer in quantizers:
        quantizer.observing = True
    try:
        for start in range(0, len(samples), batch_size):
            model(samples[start:start + batch_size], training=False)
    finally:
        for quantizer in quantizers:
            quantizer.observing = False


CALIBRATION_IMAGES = 256  # training images that set the QAT model's first activation ranges


def train_quantized(model, data, epochs, learning_rate=1e-4, batch_size=64, verbose=0):
    """The QAT model of ``model``: ranges calibrated on ``data.train``'s first images, then fine-tuned
    ``epochs`` on ``data`` (a ``models.classification_data.ClassificationData``)."""
    quantized = quantize_model(model, data.train.take(CALIBRATION_IMAGES))
    fine_tune(quantized, data, epochs=epochs, learning_rate=learning_rate, batch_size=batch_size, verbose=verbose)
    return quantized


def fine_tune(model, data, epochs=3, learning_rate=1e-4, batch_size=64, callbacks=(), verbose=2):
    """Fine-tune ``model`` (QAT, pruned or QSFM-pruned) on ``data.train`` with Adam; returns the history dict."""
    compile_for_fit(model, keras.optimizers.Adam(learning_rate))
    history = model.fit(dataset(data.train, min(batch_size, data.train.size), training=True), epochs=epochs,
                        validation_data=dataset(data.validation, batch_size), callbacks=list(callbacks),
                        shuffle=False, verbose=verbose)  # the pipeline shuffles
    return {key: [float(v) for v in values] for key, values in history.history.items()}
