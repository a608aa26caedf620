"""Keras model -> TFLite flatbuffer, float or quantized, builtin ops only.

Quantization modes (TensorFlow's post-training quantization guide):

    fp32     no quantization
    fp16     float16 weights, float compute
    dynamic  int8 weights, activations quantized on the fly
    int8     full integer: int8 weights and activations, calibrated on
             ``representative_data``; input/output int8 or uint8 (``io_dtype``); each
             hard-swish, 3-channel convolutions and softmax rewritten for XNNPACK
             (``tflite.xnnpack_int8``); ``integer_only``: the hard-swish rewrite alone, every
             op between the input's QUANTIZE and the output's stays int8 (accelerators; QAT,
             whose ranges come from the model's fake-quantization ops: ``tflite.qat``)
    int16x8  full integer with 16-bit activations: int8 weights (per channel), int16
             activations (symmetric, per tensor), int64 biases, calibrated on
             ``representative_data``; ops without a 16-bit kernel stay float (below);
             input/output float32 (default: a QUANTIZE/DEQUANTIZE at each end) or int16
             (``io_dtype``); the converter refuses int8/uint8 io for it
    binary   fp32, with every kernel whose output channels each hold only +c and -c (the
             binary layers' kernels) stored as int8 signs behind DEQUANTIZE: the faithful
             path for binary networks, bit-identical to fp32 (``tflite.binary_export``)

``TFLiteConverter.from_keras_model`` accepts Keras 3 and tf_keras models alike, freezes
the weights and folds batch norm into the convolutions (a concrete function traced from a
Keras 3 model keeps its variables as resource reads instead). Only TFLite builtin ops are allowed: a layer that would need
Flex (SELECT_TF_OPS) fails the conversion instead of producing a file a phone cannot run.

int16x8 is for networks whose activations 8 bits cannot hold: a wide range in which small values
matter. An XNOR network takes the sign of them: the digits XNOR ResNet-8 of ``mobilekit binary``
agrees with Keras on 0.11 of the test digits in int8 and 0.97 in int16x8 (dynamic 0.96, binary
1.0). The op set ``EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8`` has no 16-bit
kernel for some ops (TF 2.21: HARD_SWISH, PRELU, GREATER_EQUAL, SELECT_V2, custom ops), so
``TFLITE_BUILTINS`` is allowed beside it and those ops stay float between DEQUANTIZE and QUANTIZE
(still builtin ops; TensorFlow's "16x8 with float fallback"): MobileNetV3's hard-swish and an
XNOR layer's sign run in float, everything else in int16. XNNPACK has no int16 kernels (it
delegates none of the file's ops), so it runs on TFLite's own kernels: MobileNetV2 at 224 takes
24-30x the fp32 latency (38-58x int8's) on 2 x86 threads (README). It is for accuracy, and for
accelerators with 16-bit paths. The 16-bit quantizer sets no floor on a calibrated range, so each
int16x8 file is loaded once here (``_convert_16x8``).

ai-edge-quantizer (0.10.0, built October 2026, Python 3.10-3.13; it installs beside TF 2.21
without changing a package, adding litert-lm-builder and tomli, but pins ai-edge-litert to
exactly 2.3.0) has the same scheme as its ``static_wi8_ai16`` recipe, applied to the fp32 file.
On the XNOR ResNet-8 it agrees with Keras as the converter's file does (0.95 vs 0.96 on the same
trained model) and leaves the same kinds of ops float (PRELU, ABS, GREATER_EQUAL). What it adds is
per-op recipes (int8 here, int16 there, by tensor name), which a whole-model mode does not need:
the kit keeps the converter and takes no dependency that would hold LiteRT at one version.
"""
import contextlib
import io
import re
import warnings

import numpy as np
import tensorflow as tf

from demo_app.native_log import forward, native_stderr
from demo_app.runtime import TFLiteModel, one_line
from keras_layers.dilated import single_dilated_ops
from tflite.binary_export import int8_binary_kernels
from tflite.xnnpack_int8 import for_xnnpack

QUANTIZATIONS = ("fp32", "fp16", "dynamic", "int8", "int16x8", "binary")
# The quantizations that calibrate activation ranges on ``representative_data``.
CALIBRATED = ("int8", "int16x8")
# What the converter's C++ side prints on every successful quantization.
CONVERTER_NOISE = re.compile(r"^(fully_quantize: |I\d{4} )")
IO_DTYPES = {"float32": tf.float32, "int8": tf.int8, "uint8": tf.uint8, "int16": tf.int16}
# Input/output dtypes per quantization, the default first; float32 alone for the others.
QUANTIZATION_IO = {"int8": ("uint8", "int8", "float32"), "int16x8": ("float32", "int16")}
# The converter's op set of each calibrated quantization.
OPS_SETS = {"int8": tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
            "int16x8": tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8}


UNCALIBRATED_INPUTS = "Statistics for quantized inputs"  # calibration's warning: inputs need no statistics


@contextlib.contextmanager
def quiet_conversion(warning_messages=(UNCALIBRATED_INPUTS,), is_noise=CONVERTER_NOISE.match):
    """Run a conversion with Keras 3's export listing (stdout) dropped, warnings matching
    ``warning_messages`` ignored and the converter's native log lines that ``is_noise`` picks dropped;
    the rest of the log is passed on, after a failure too."""
    log = []
    try:
        with contextlib.redirect_stdout(io.StringIO()), native_stderr() as log, warnings.catch_warnings():
            for message in warning_messages:
                warnings.filterwarnings("ignore", message=message)
            yield
    finally:
        forward(log, is_noise=is_noise)


def representative_dataset(samples, limit):
    """Yield up to ``limit`` single-sample float32 batches for calibration."""
    def generate():
        for sample in list(samples)[:limit]:
            yield [np.asarray(sample, dtype=np.float32)[None]]
    return generate


def _check_io_dtype(quantization, io_dtype):
    """``io_dtype``, or the default of ``quantization``; a one-line error for a pair the converter cannot write."""
    allowed = QUANTIZATION_IO.get(quantization, ("float32",))
    if io_dtype is None:
        return allowed[0]
    if io_dtype not in IO_DTYPES:
        raise ValueError(f"io_dtype {io_dtype!r} is not supported: expected one of {', '.join(IO_DTYPES)}")
    if io_dtype not in allowed:
        needed = " or ".join(repr(q) for q, dtypes in QUANTIZATION_IO.items() if io_dtype in dtypes)
        raise ValueError(f"io_dtype {io_dtype!r} needs quantization={needed}, got {quantization!r}")
    return io_dtype


def _convert_16x8(converter, model):
    """The converter's int16x8 bytes, checked to run: a file LiteRT cannot prepare is a one-line error.

    The converter's 16-bit quantizer sets no floor on a calibrated range (its int8 quantizer widens
    ranges below 1e-6): the activations of an untrained MobileNetV2, which fade to ~1e-11, get
    scales so small that the bounds of a fused ReLU6 overflow int32 and LiteRT refuses the file.
    """
    model_bytes = converter.convert()
    try:
        TFLiteModel.from_bytes(model_bytes)
    except ValueError as error:
        raise ValueError(f"the int16x8 file of model {model.name} does not run ({one_line(error.__cause__ or error)}): "
                         f"expected activation ranges a 16-bit scale can hold, as a trained model's (an untrained "
                         f"network's activations can fade to ~1e-11)") from None
    return model_bytes


def convert(model, quantization="fp32", representative_data=None, io_dtype=None, calibration_steps=200,
            integer_only=False):
    """Convert ``model`` to a TFLite flatbuffer and return its bytes.

    Args:
        model: a built Keras model with one input.
        quantization: one of ``QUANTIZATIONS`` (see the module docstring).
        representative_data: samples shaped like one model input (no batch axis), in
            the model's input range; required for ``int8`` and ``int16x8``.
        io_dtype: input/output tensors: ``float32``, ``int8`` or ``uint8`` for ``int8`` (default
            ``uint8``: raw pixels go straight in); ``float32`` (default) or ``int16`` for
            ``int16x8``; ``float32`` otherwise.
        calibration_steps: at most this many samples are used for calibration.
        integer_only: ``int8`` only: no op computes in float between the input and the output
            quantization (the float rewrites of ``tflite.xnnpack_int8`` are not applied).
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization {quantization!r} is not supported: expected one of {', '.join(QUANTIZATIONS)}")
    io_dtype = _check_io_dtype(quantization, io_dtype)
    if integer_only and quantization != "int8":
        raise ValueError(f"integer_only applies to int8 quantization, got {quantization!r}")
    if quantization in CALIBRATED and representative_data is None:
        raise ValueError(f"{quantization} quantization needs representative_data (samples of the model's input)")

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization not in ("fp32", "binary"):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    if quantization in CALIBRATED:
        converter.representative_dataset = representative_dataset(representative_data, calibration_steps)
        converter.target_spec.supported_ops = [OPS_SETS[quantization]]
        if quantization == "int16x8":  # ops without a 16-bit kernel stay float (see the module docstring)
            converter.target_spec.supported_ops.append(tf.lite.OpsSet.TFLITE_BUILTINS)
        converter.inference_input_type = IO_DTYPES[io_dtype]
        converter.inference_output_type = IO_DTYPES[io_dtype]
    with quiet_conversion(), single_dilated_ops():
        model_bytes = _convert_16x8(converter, model) if quantization == "int16x8" else converter.convert()
    if quantization == "int8":  # ops XNNPACK runs fast (tflite.xnnpack_int8)
        model_bytes = for_xnnpack(model_bytes, integer_only)[0]
    return int8_binary_kernels(model_bytes)[0] if quantization == "binary" else model_bytes
