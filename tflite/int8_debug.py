"""Which layers int8 quantizes badly, and an int8 file with those layers kept float.

Both functions drive TensorFlow's ``tf.lite.experimental.QuantizationDebugger`` as its guide
"Inspecting Quantization Errors with Quantization Debugger"
(https://www.tensorflow.org/lite/performance/quantization_debugger) does. The debugger calibrates
the model on the representative data, then runs an int8 model in which a NumericVerify op
follows each quantized op and compares its dequantized output with the float op run on the same
inputs; over the samples it averages, per op output tensor, the default metrics of that
difference: ``num_elements``, ``stddev``, ``mean_error``, ``max_abs_error`` and
``mean_squared_error``. The error is each layer's own: both paths of an op read the same
(dequantized) inputs, so a layer is not blamed for what earlier layers passed on.

The guide derives two more figures from the tensor's quantization ``scale``:

    range       255 * scale: the span of the 8-bit grid, which calibration fits to the float
                tensor's min..max; a wide one (a few outliers) makes the steps coarse
    rmse_scale  sqrt(mean_squared_error) / scale (the guide's ``rmse/scale``): about
                1/sqrt(12) ~ 0.289 when rounding to the grid is the only error, larger for a
                layer that quantizes badly; the guide keeps layers above 0.7 in float

Selective quantization keeps the chosen layers float (the debugger's ``denylisted_nodes``: op
output tensor names, as the report gives them) and quantizes the rest to int8, builtin ops only.
The selective file takes and returns float32, the debugger's non-debug model as it writes it
(``fully_quantize`` off): a float layer may then sit at either end of the network, and the input
is quantized by one QUANTIZE op. (The kit's ``model_int8.tflite`` takes uint8 pixels instead.)
"""
import collections
import csv
import io
import math
import re

import tensorflow as tf

from keras_layers.dilated import single_dilated_ops
from keras_layers.keras_api import LEGACY_KERAS
from tflite.converter import CONVERTER_NOISE, UNCALIBRATED_INPUTS, quiet_conversion, representative_dataset

IDEAL_RMSE_SCALE = 1 / math.sqrt(12)  # rounding error alone, in steps of the grid
SUSPECT_RMSE_SCALE = 0.7  # the guide's cut for layers to keep in float
METRICS = ("num_elements", "stddev", "mean_error", "max_abs_error", "mean_squared_error")
# TensorFlow's name scopes add ``_<n>`` to each Keras 3 layer's name when the converter traces the model.
_TRACE_SUFFIX = re.compile(r"_\d+$")

Selective = collections.namedtuple("Selective", "model_bytes float_layers report")
Selective.__doc__ = """``selective_int8``'s result: the ``.tflite`` bytes, the tensor names kept float (graph
order) and the int8 report rows the choice was made on."""


def _quiet():
    """Silence what conversion and the debugger's interpreter print on success (``quiet_conversion``, plus
    the XNNPACK notice and TensorFlow's interpreter deprecation)."""
    return quiet_conversion((UNCALIBRATED_INPUTS, r"\s*Warning: tf.lite.Interpreter is deprecated"),
                            is_noise=lambda line: CONVERTER_NOISE.match(line) or line.startswith("INFO: "))


def _debugger(model, representative_data, calibration_steps):
    """A ``QuantizationDebugger`` of ``model``, calibrated and its statistics collected on the same samples."""
    samples = representative_dataset(representative_data, calibration_steps)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = samples
    with single_dilated_ops():
        debugger = tf.lite.experimental.QuantizationDebugger(converter=converter, debug_dataset=samples)
        debugger.run()
    return debugger


def _layer_names(model):
    """The names of ``model``'s layers, those of nested models included (the models themselves left out)."""
    names = []
    for layer in model.layers:
        names += _layer_names(layer) if hasattr(layer, "layers") else [layer.name]
    return set(names)


def _keras_layers(tensor, layer_names):
    """The Keras layers a tensor name's scopes mention, in order: the layers fused into its op."""
    found = []
    for scope in re.split(r"[;/]", tensor):
        name = scope if LEGACY_KERAS else _TRACE_SUFFIX.sub("", scope)
        if name in layer_names and name not in found:
            found.append(name)
    return found


def _rows(debugger, model):
    """The debugger's layer statistics as JSON-ready rows in graph order, with ``range`` and ``rmse_scale``."""
    dump = io.StringIO()
    debugger.layer_statistics_dump(dump)  # one row per NumericVerify op, in execution order
    layer_names = _layer_names(model)
    rows = []
    for index, line in enumerate(csv.DictReader(io.StringIO(dump.getvalue()))):
        scale = float(line["scale"])
        metrics = {key: float(line[key]) for key in METRICS}
        rows.append({"index": index, "tensor": line["tensor_name"], "op": line["op_name"],
                     "layers": _keras_layers(line["tensor_name"], layer_names),
                     **metrics, "num_elements": int(round(metrics["num_elements"])),
                     "scale": scale, "zero_point": int(line["zero_point"]), "range": 255.0 * scale,
                     "rmse_scale": math.sqrt(metrics["mean_squared_error"]) / scale})
    return rows


def int8_layer_report(model, representative_data, calibration_steps=200):
    """Per-layer int8 error of ``model`` on its calibration data (see the module docstring and
    TensorFlow's Quantization Debugger guide).

    Args:
        model: a built Keras model with one input.
        representative_data: samples shaped like one model input (no batch axis), in the model's
            input range, as ``tflite.convert`` takes them for int8.
        calibration_steps: at most this many samples calibrate the model and are measured.

    Returns one JSON-ready dict per quantized op output, in graph (execution) order: ``index``,
    ``tensor`` (the output tensor's name: what ``selective_int8`` takes), ``op`` (``CONV_2D``, ...),
    ``layers`` (the Keras layers fused into the op, as its name scopes tell), the debugger's
    ``METRICS``, the tensor's ``scale`` and ``zero_point``, and the guide's ``range`` and
    ``rmse_scale``. ``worst_layers`` picks the worst.
    """
    with _quiet():
        return _rows(_debugger(model, representative_data, calibration_steps), model)


def worst_layers(rows, count):
    """The ``count`` rows of an int8 report with the highest ``rmse_scale``, the worst first."""
    return sorted(rows, key=lambda row: (-row["rmse_scale"], row["index"]))[:count]


def _float_layers(rows, float_layers, float_worst):
    """The tensor names to keep float, in graph order: ``float_layers`` (checked against the report) and the
    ``float_worst`` rows of the highest ``rmse_scale``."""
    names = [row["tensor"] for row in rows]
    unknown = [name for name in float_layers if name not in names]
    if unknown:
        raise ValueError(f"unknown layer {', '.join(map(repr, unknown))}: expected output tensor names of the int8 "
                         f"report ({len(names)} of this model), e.g. {', '.join(map(repr, names[:3]))}")
    if not 0 <= float_worst < len(rows):
        raise ValueError(f"float_worst {float_worst} is not a number of layers to keep float: expected 0 to "
                         f"{len(rows) - 1} (this model has {len(rows)} quantized layers)")
    chosen = set(float_layers) | {row["tensor"] for row in worst_layers(rows, float_worst)}
    if len(chosen) == len(names):
        raise ValueError(f"keeping all {len(names)} quantized layers float leaves nothing in int8: expected fewer "
                         f"(the fp32 file is the float model)")
    return [name for name in names if name in chosen]


def selective_int8(model, representative_data, float_layers=(), float_worst=0, calibration_steps=200):
    """An int8 ``.tflite`` of ``model`` with some layers kept float (selective quantization, as in
    TensorFlow's Quantization Debugger guide); builtin ops only, float32 input and output.

    Args:
        model, representative_data, calibration_steps: as for ``int8_layer_report``.
        float_layers: output tensor names of the layers to keep float, as the report's ``tensor``
            gives them; an unknown name is a one-line ValueError naming a few valid ones.
        float_worst: also keep float the layers of this many highest ``rmse_scale``.

    Returns ``Selective(model_bytes, float_layers, report)``: the file's bytes, the tensor names
    kept float in graph order, and the report rows (``int8_layer_report``) of the same
    calibration. With no layer chosen the file is the whole model in int8 (float32 ends).
    """
    with _quiet():
        debugger = _debugger(model, representative_data, calibration_steps)
        rows = _rows(debugger, model)
        kept = _float_layers(rows, tuple(float_layers), float_worst)
        debugger.options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=kept)
        return Selective(debugger.get_nondebug_quantized_model(), kept, rows)
