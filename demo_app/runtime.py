"""``TFLiteModel``: a .tflite flatbuffer behind the LiteRT interpreter, float in, float out.

The interpreter comes from ``ai_edge_litert`` (LiteRT), else ``tflite_runtime``, else, as a
last resort imported only when needed, ``tensorflow.lite``. Quantized (int8/uint8/int16) inputs are
quantized from real values with the tensor's (scale, zero_point), and quantized outputs are
dequantized, so callers always work in the model's real-valued ranges.
"""
import os
import time

import numpy as np

from demo_app.native_log import forward, native_stderr

TFLITE_IDENTIFIER = b"TFL3"  # flatbuffer file identifier, bytes 4..8 of every .tflite


def one_line(exc):
    """``exc``'s message on one line (its type name when the message is empty)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def interpreter_class():
    """The first available ``Interpreter``: ai_edge_litert, tflite_runtime, then tensorflow.lite."""
    try:
        from ai_edge_litert.interpreter import Interpreter
        return Interpreter
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter
        return Interpreter
    except ImportError:
        pass
    try:
        import tensorflow as tf
    except ImportError:
        raise ImportError("no TFLite runtime installed: expected ai-edge-litert "
                          "(pip install ai-edge-litert) or tflite-runtime") from None
    return tf.lite.Interpreter


def _check_identifier(head, name):
    if len(head) < 8 or head[4:8] != TFLITE_IDENTIFIER:
        raise ValueError(f"{name} is not a TFLite model: expected a .tflite flatbuffer "
                         f"(file identifier {TFLITE_IDENTIFIER.decode()!r} at bytes 4..8)")


def _quantization(details):
    scale, zero_point = details.get("quantization", (0.0, 0))
    return float(scale), int(zero_point)


def _is_quantized(dtype, scale):
    return np.issubdtype(dtype, np.integer) and scale != 0.0


class TFLiteModel:
    """A TFLite model ready to run on real-valued float inputs.

    Args:
        path: the .tflite file.
        num_threads: interpreter threads (``None``: the runtime's default).

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` (one line) for a file
    that is not a TFLite model or that the interpreter cannot load.
    """

    def __init__(self, path, num_threads=None):
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"model file not found: {path}")
        with open(path, "rb") as f:
            _check_identifier(f.read(8), path)
        self.path = path
        self.size_bytes = os.path.getsize(path)
        self._load(path, dict(model_path=path), num_threads)

    @classmethod
    def from_bytes(cls, model_bytes, num_threads=None, name="<model bytes>"):
        """Load a model from its flatbuffer bytes (e.g. straight from the converter)."""
        model_bytes = bytes(model_bytes)
        _check_identifier(model_bytes[:8], name)
        self = cls.__new__(cls)
        self.path = None
        self.size_bytes = len(model_bytes)
        self._load(name, dict(model_content=model_bytes), num_threads)
        return self

    def _load(self, name, source, num_threads):
        self.name = name
        self.num_threads = num_threads
        self.last_latency_ms = None
        Interpreter, log = interpreter_class(), []
        try:
            with native_stderr() as log:
                self.interpreter = Interpreter(**source, num_threads=num_threads)
                self.interpreter.allocate_tensors()
                inputs = self.interpreter.get_input_details()
                self.interpreter.get_output_details()  # decodes the tensor names, which a corrupt file may garble
        except Exception as exc:  # the runtimes raise RuntimeError/ValueError/UnicodeDecodeError for corrupt files
            details = "; ".join([one_line(exc)] + [line.strip() for line in log if line.startswith("ERROR")])
            raise ValueError(f"cannot load TFLite model {name}: {details} (expected a valid .tflite file)") from exc
        forward(log, is_noise=lambda line: line.startswith("INFO: "))  # pass on all but the INFO chatter
        if len(inputs) != 1:
            raise ValueError(f"TFLite model {name} has {len(inputs)} inputs: expected exactly 1")
        self._input = inputs[0]

    # --- tensor metadata -------------------------------------------------------------------
    @property
    def input_details(self):
        """The interpreter's details dict of the (single) input tensor."""
        return self._input

    @property
    def output_details(self):
        """The interpreter's details dicts of the output tensors, in output order."""
        return self.interpreter.get_output_details()

    @property
    def input_shape(self):
        """Input shape including the batch axis, as a tuple of ints."""
        return tuple(int(d) for d in self._input["shape"])

    @property
    def input_dtype(self):
        """numpy dtype of the input tensor (float32, int8, uint8, ...)."""
        return np.dtype(self._input["dtype"])

    @property
    def input_quantization(self):
        """``(scale, zero_point)`` of the input tensor; ``(0.0, 0)`` when not quantized."""
        return _quantization(self._input)

    @property
    def output_shapes(self):
        """Output shapes (tuples of ints), in output order."""
        return [tuple(int(d) for d in o["shape"]) for o in self.output_details]

    # --- inference -------------------------------------------------------------------------
    def quantize(self, x):
        """Real-valued ``x`` -> the input tensor's dtype: ``clip(round(x / scale) + zp)`` when quantized."""
        x = np.asarray(x, dtype=np.float32)
        dtype = self.input_dtype
        scale, zero_point = self.input_quantization
        if not _is_quantized(dtype, scale):
            return x.astype(dtype)
        info = np.iinfo(dtype)
        return np.clip(np.round(x / scale) + zero_point, info.min, info.max).astype(dtype)

    def run(self, x):
        """Run the model on real-valued ``x`` and return a list with one float32 array per output.

        ``x`` has the input shape, or lacks the batch axis (added here). A batch of another
        size resizes the input tensor. The list is returned even for a single output.
        ``last_latency_ms`` records the ``invoke()`` time alone.
        """
        x = np.asarray(x, dtype=np.float32)
        shape = self.input_shape
        if x.shape == shape[1:]:
            x = x[None]
        if x.shape[1:] != shape[1:]:
            raise ValueError(f"input shape {x.shape} does not match the input {shape} of TFLite model {self.name} "
                             f"(the batch axis may be left out)")
        if x.shape[0] != shape[0]:
            self.interpreter.resize_tensor_input(self._input["index"], list(x.shape))
            self.interpreter.allocate_tensors()
            self._input = self.interpreter.get_input_details()[0]
        return self.run_tensor(self.quantize(x))

    def run_tensor(self, tensor):
        """Run the model on ``tensor``, already in the input's shape and dtype (e.g. ``quantize``'s
        output, made ahead on another thread); the dequantized outputs as ``run`` returns them."""
        self.interpreter.set_tensor(self._input["index"], tensor)
        start = time.perf_counter()
        self.interpreter.invoke()
        self.last_latency_ms = (time.perf_counter() - start) * 1000.0
        return [self._dequantize(o) for o in self.output_details]

    def _dequantize(self, details):
        y = self.interpreter.get_tensor(details["index"])
        scale, zero_point = _quantization(details)
        if _is_quantized(y.dtype, scale):
            return ((y.astype(np.float32) - zero_point) * scale).astype(np.float32)
        return y.astype(np.float32)

    def __repr__(self):
        scale, zp = self.input_quantization
        quant = f" (scale={scale:.6g}, zero_point={zp})" if _is_quantized(self.input_dtype, scale) else ""
        return (f"TFLiteModel({self.name}: {self.size_bytes / 1024:.1f} KiB, input {self.input_shape} "
                f"{self.input_dtype}{quant}, outputs {self.output_shapes})")
