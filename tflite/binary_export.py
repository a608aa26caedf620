"""Binary networks in TFLite: binary kernels stored as int8 {-1, +1}, activations in float.

Full int8 quantization does not reproduce an XNOR-style network: it rounds every activation to
an 8-bit grid, a pre-sign value within half a step of zero lands on zero and takes the wrong
sign, and the flips compound layer after layer (digits ResNet-8: top-1 agreement with Keras
0.38 for XNOR, 0.20 for Rep-XNOR; ``mobilekit binary``). Dynamic-range files quantize the sign
outputs asymmetrically, so +1 and -1 come back as 0.996 and -1.004 (agreement 0.93).

The fp32 conversion computes what Keras computes (sign is a SELECT_V2 of two constants on a float
comparison). ``int8_binary_kernels`` rewrites its flatbuffer: each constant filter of CONV_2D,
DEPTHWISE_CONV_2D and FULLY_CONNECTED whose every output channel holds only the two values
+c_o and -c_o becomes an int8 tensor of signs with per-channel scale c_o, read through a
DEQUANTIZE op. ``dequantize(+-1, c_o) = +-c_o`` exactly in float32, so the new file's outputs are
bit-identical to the fp32 file's while those kernels take a quarter of the bytes; XNNPACK
dequantizes such static weights once when it builds its plan (TensorFlow PR 48751), TFLite's
own kernels at each invocation. The 32x smaller storage of ``tflite.bitpack`` needs a
bit-unpacking op TFLite does not have.
"""
import numpy as np
from tensorflow.lite.python import schema_py_generated as schema
from tensorflow.lite.tools import flatbuffer_utils

# op -> the output-channel axis of its filter (TFLite layouts: OHWI, 1HWO, OI)
FILTER_CHANNEL_AXIS = {schema.BuiltinOperator.CONV_2D: 0, schema.BuiltinOperator.DEPTHWISE_CONV_2D: 3,
                       schema.BuiltinOperator.FULLY_CONNECTED: 0}


def binary_channel_scales(kernel, axis):
    """``c`` (one per channel along ``axis``) when every entry of ``kernel`` is ``+-c`` of its
    channel with ``c > 0``; otherwise None."""
    if kernel.size == 0:
        return None
    magnitudes = np.moveaxis(np.abs(kernel), axis, 0).reshape(kernel.shape[axis], -1)
    scales = magnitudes[:, 0]
    return scales if np.all(scales > 0) and np.all(magnitudes == scales[:, None]) else None


def _opcode_index(model, builtin):
    for index, code in enumerate(model.operatorCodes):
        if max(code.builtinCode, code.deprecatedBuiltinCode) == builtin:
            return index
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = builtin
    code.version = 4  # int8 per-channel DEQUANTIZE
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def _buffer(model, data):
    buffer = schema.BufferT()
    buffer.data = None if data is None else np.frombuffer(data, np.uint8)
    model.buffers.append(buffer)
    return len(model.buffers) - 1


def _binary_filters(model, graph):
    """{filter tensor index: (kernel, scales, axis)} of the binary constant filters of ``graph``."""
    found = {}
    for op in graph.operators:
        axis = FILTER_CHANNEL_AXIS.get(model.operatorCodes[op.opcodeIndex].builtinCode)
        if axis is None or len(op.inputs) < 2 or op.inputs[1] in found:
            continue
        tensor = graph.tensors[op.inputs[1]]
        data = model.buffers[tensor.buffer].data
        if tensor.type != schema.TensorType.FLOAT32 or data is None or len(data) == 0:
            continue
        kernel = np.frombuffer(np.asarray(data, np.uint8).tobytes(), np.float32).reshape(tensor.shape)
        scales = binary_channel_scales(kernel, axis)
        if scales is not None:
            found[op.inputs[1]] = kernel, scales, axis
    return found


def _drop_unreferenced_data(model):
    """Empty the buffers no tensor reads any more (the float kernels), keeping buffer indices."""
    used = {tensor.buffer for graph in model.subgraphs for tensor in graph.tensors}
    for index, buffer in enumerate(model.buffers):
        if index not in used:
            buffer.data = None


def int8_binary_kernels(model_bytes):
    """Return ``(new_bytes, count)``: the fp32 flatbuffer ``model_bytes`` with its binary filters
    stored as int8 signs plus per-channel scales behind DEQUANTIZE ops, and how many there were
    (``model_bytes`` itself when there are none)."""
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(model_bytes))
    found = [(graph, _binary_filters(model, graph)) for graph in model.subgraphs]
    if not any(filters for _, filters in found):
        return bytes(model_bytes), 0
    dequantize = _opcode_index(model, schema.BuiltinOperator.DEQUANTIZE)
    for graph, filters in found:
        dequantize_ops = []
        for index, (kernel, scales, axis) in filters.items():
            float_tensor = graph.tensors[index]
            signs = schema.TensorT()
            signs.shape, signs.type = list(float_tensor.shape), schema.TensorType.INT8
            signs.name = (float_tensor.name or b"") + b"_signs"
            signs.buffer = _buffer(model, np.where(kernel > 0, 1, -1).astype(np.int8).tobytes())
            signs.quantization = schema.QuantizationParametersT()
            signs.quantization.scale = [float(s) for s in scales]
            signs.quantization.zeroPoint = [0] * len(scales)
            signs.quantization.quantizedDimension = axis
            graph.tensors.append(signs)
            float_tensor.buffer = _buffer(model, None)  # now computed by the DEQUANTIZE op
            op = schema.OperatorT()
            op.opcodeIndex, op.inputs, op.outputs = dequantize, [len(graph.tensors) - 1], [index]
            dequantize_ops.append(op)
        graph.operators = dequantize_ops + list(graph.operators)  # before every consumer
    _drop_unreferenced_data(model)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)), sum(len(filters) for _, filters in found)
