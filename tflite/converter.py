"""Keras model -> TFLite flatbuffer, float or quantized, builtin ops only.

Quantization modes (TensorFlow's post-training quantization guide):

    fp32     no quantization
    fp16     float16 weights, float compute
    dynamic  int8 weights, activations quantized on the fly
    int8     full integer: int8 weights and activations, calibrated on
             ``representative_data``; input/output int8 or uint8 (``io_dtype``)
    binary   fp32, with every kernel whose output channels each hold only +c and -c (the
             binary layers' kernels) stored as int8 signs behind DEQUANTIZE: the faithful
             path for binary networks, bit-identical to fp32 (``tflite.binary_export``)

``TFLiteConverter.from_keras_model`` accepts Keras 3 and tf_keras models alike, freezes
the weights and folds batch norm into the convolutions (a concrete function traced from a
Keras 3 model keeps its variables as resource reads instead). Only TFLite builtin ops are allowed: a layer that would need
Flex (SELECT_TF_OPS) fails the conversion instead of producing a file a phone cannot run.
"""
import contextlib
import io
import re
import warnings

import numpy as np
import tensorflow as tf

from demo_app.native_log import forward, native_stderr
from tflite.binary_export import int8_binary_kernels

QUANTIZATIONS = ("fp32", "fp16", "dynamic", "int8", "binary")
# What the converter's C++ side prints on every successful quantization.
CONVERTER_NOISE = re.compile(r"^(fully_quantize: |I\d{4} )")
IO_DTYPES = {"float32": tf.float32, "int8": tf.int8, "uint8": tf.uint8}


def representative_dataset(samples, limit):
    """Yield up to ``limit`` single-sample float32 batches for calibration."""
    def generate():
        for sample in list(samples)[:limit]:
            yield [np.asarray(sample, dtype=np.float32)[None]]
    return generate


def convert(model, quantization="fp32", representative_data=None, io_dtype=None, calibration_steps=200):
    """Convert ``model`` to a TFLite flatbuffer and return its bytes.

    Args:
        model: a built Keras model with one input.
        quantization: one of ``fp32``, ``fp16``, ``dynamic``, ``int8``, ``binary``.
        representative_data: samples shaped like one model input (no batch axis), in
            the model's input range; required for ``int8``.
        io_dtype: ``float32``, ``int8`` or ``uint8`` input/output tensors. Defaults to
            ``uint8`` for ``int8`` (raw pixels go straight in) and ``float32`` otherwise.
        calibration_steps: at most this many samples are used for calibration.
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization {quantization!r} is not supported: expected one of {', '.join(QUANTIZATIONS)}")
    io_dtype = io_dtype or ("uint8" if quantization == "int8" else "float32")
    if io_dtype not in IO_DTYPES:
        raise ValueError(f"io_dtype {io_dtype!r} is not supported: expected one of {', '.join(IO_DTYPES)}")
    if io_dtype != "float32" and quantization != "int8":
        raise ValueError(f"io_dtype {io_dtype!r} needs quantization='int8', got {quantization!r}")
    if quantization == "int8" and representative_data is None:
        raise ValueError("int8 quantization needs representative_data (samples of the model's input)")

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization not in ("fp32", "binary"):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    if quantization == "int8":
        converter.representative_dataset = representative_dataset(representative_data, calibration_steps)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = IO_DTYPES[io_dtype]
        converter.inference_output_type = IO_DTYPES[io_dtype]
    # Keras 3's export prints every captured tensor; calibration warns that inputs carry no
    # statistics (they need none: the representative data provides them).
    log = []
    try:
        with contextlib.redirect_stdout(io.StringIO()), native_stderr() as log, warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
            model_bytes = converter.convert()
        return int8_binary_kernels(model_bytes)[0] if quantization == "binary" else model_bytes
    finally:  # a failed conversion's diagnostics are passed on too
        forward(log, is_noise=CONVERTER_NOISE.match)
