"""Rewrites of a full-int8 ``.tflite`` graph that keep it on XNNPACK's fast kernels.

XNNPACK (the CPU delegate LiteRT applies by default) has no int8 ``HARD_SWISH`` kernel, so in a
full-int8 MobileNetV3 every hard-swish falls back to TFLite's own kernel and splits the graph
into one XNNPACK partition per activation: ``keras.applications.MobileNetV3Large`` at 224 runs
int8 about 3x *slower* than float. ``hard_swish_as_xnnpack_ops`` replaces each int8 hard-swish

    y = x * relu6(x + 3) / 6

by three elementwise ops XNNPACK runs in int8, with quantization parameters derived from the
op's own input ``x`` (scale ``s_x``, zero point ``z_x``) and output ``y``:

    sixth = MUL(x, 1/6)          scale s_x / 6, zero point z_x: the same integers as x (exact)
    gate  = ADD(x, 3), RELU6     range 0 .. max relu6(x + 3) over x's representable range
    y     = MUL(sixth, gate)     y's own scale and zero point

so the only rounding beyond the original op's is ``gate``'s, which is exact where relu6 clamps
(0 and 6 are on its grid) and elsewhere (|x| < 3) costs at most ``|x| / 6`` times half its step.
An op is rewritten only when that is at most half of y's step, which keeps every output within one
step of the exact curve (checked exhaustively over the 256 int8 inputs in the tests); it holds for
the ranges a trained network's activations span on both sides of zero. XNNPACK takes an int8 ADD
only when each input's scale is within [2^-10, 2^8) of the output's, and an int8 MUL when the
product of the input scales is within [2^-16, 2^8) of the output's (TFLite's own ADD kernel aborts
beyond 2^19): the gate's step is widened to meet them.

``sixth`` holds the integers of ``x`` under a scale six times finer, so it goes where the factor can be
left to the layers that read ``y``: ``y`` is declared at ``6 s_y`` and ``MUL(x, gate)`` writes the
integers ``MUL(sixth, gate)`` wrote (the same requantization multiplier, up to its float rounding); ops
with ``f(6 v) = 6 f(v)`` (mean, pooling, reshape, a product with another tensor: squeeze-excite) carry
the factor, their outputs declared at six times their scale, and the convolutions and fully connected
layers at the ends take it back in their weight scales (divided by 6; the int8 weights, the bias and
each layer's requantization multiplier ``s_in s_w / s_out`` stay). Every MobileNetV3 hard-swish feeds such
layers only: two ops instead of three (MobileNetV3-Small at 224: 19 MULs fewer, int8 18% faster on a
2-core AVX2 x86). A hard-swish feeding an addition or a model output keeps ``sixth``.

Where the gate ``relu6(x + 3) / 6`` barely changes over x's range (an activation with a range near
zero, as in an untrained network), ``y = MUL(x, g)`` with the gate's mid value ``g`` is within a
quarter of y's step of the exact curve and is used instead; an op that fits neither keeps its
``HARD_SWISH``. Float files keep the fused ``HARD_SWISH``, which XNNPACK runs in float.

XNNPACK's int8 convolution pads the input channels of every kernel tap to its vector width, so a
convolution over 3 channels (every network's stem, on the image) runs 3-4x slower in int8 than in
float (0.50 vs 0.13 ms for 3x3/2 to 16 channels at 224, 2 threads). ``narrow_convolutions_in_float``
computes each int8 CONV_2D of at most ``NARROW_CHANNELS`` input channels in float, on its
dequantized weights and bias, between a DEQUANTIZE and a QUANTIZE to its own output's parameters
(both XNNPACK ops): the same sums of the same products, so each output is the int8 one or one step
from it.

XNNPACK has no QUANTIZE from uint8 to int8: a uint8 model input (raw pixels) went through TFLite's kernel
(0.13 ms of MobileNetV3-Small's 1.9 at 224), then through the model's own pixel scaling in int8 (MUL, ADD)
and a DEQUANTIZE to the stem convolution computed in float. ``input_scaling_in_float`` replaces that chain
by DEQUANTIZE from uint8 (exact: the pixel values) and the same MUL and ADD in float, all XNNPACK ops; the
stem then sees the scaled pixels without int8's rounding.

XNNPACK has no int8 SOFTMAX either: a segmenter's per-pixel softmax at 512x512x19 takes TFLite's kernel
11.6 ms, then 3.7 ms more to requantize the probabilities to the uint8 output, a third of the whole
int8 LR-ASPP. ``softmax_in_float`` dequantizes the logits, takes the softmax in float and quantizes the
probabilities straight to the output's type and parameters (uint8 output: the requantizing QUANTIZE
is folded in), all three XNNPACK ops; float probabilities are closer to the exact ones than int8's.

The graph is rewritten through the flatbuffer schema's object API (TensorFlow's ``flatbuffer_utils``); no
maintained tool rewrites TFLite ops after conversion, and the converter's own pattern fuses
``x * relu6(x + 3) / 6`` written in Keras back into ``HARD_SWISH``.
"""
import copy

import numpy as np
from tensorflow.lite.python import schema_py_generated as schema
from tensorflow.lite.tools import flatbuffer_utils

_INT8_VERSION = 2  # the kernel version of ADD, MUL, QUANTIZE and DEQUANTIZE on int8 tensors
ONE_SIXTH = 1.0 / 6.0
THREE_SCALE = 3.0 / 127
ADD_SCALE_RATIOS = (2.0 ** -10, 2.0 ** 8)  # XNNPACK: input scale / output scale
MUL_SCALE_RATIOS = (2.0 ** -16, 2.0 ** 8)  # XNNPACK: input scale * input scale / output scale
NARROW_CHANNELS = 4  # XNNPACK's int8 convolution pads each tap's input channels: a 3-channel stem runs slow
_WEIGHTED = (schema.BuiltinOperator.CONV_2D, schema.BuiltinOperator.DEPTHWISE_CONV_2D,
             schema.BuiltinOperator.FULLY_CONNECTED)
_AFFINE = (schema.BuiltinOperator.MUL, schema.BuiltinOperator.ADD)
_HOMOGENEOUS = (schema.BuiltinOperator.MEAN, schema.BuiltinOperator.AVERAGE_POOL_2D,  # f(6 v) = 6 f(v)
                schema.BuiltinOperator.MAX_POOL_2D, schema.BuiltinOperator.RESHAPE, schema.BuiltinOperator.SQUEEZE)


def _builtin(code):
    return max(code.builtinCode, code.deprecatedBuiltinCode)


def _opcode_index(model, builtin):
    """Index of ``builtin`` in ``model.operatorCodes``, added when missing."""
    for index, code in enumerate(model.operatorCodes):
        if _builtin(code) == builtin:
            code.version = max(code.version, _INT8_VERSION)
            return index
    code = schema.OperatorCodeT()
    code.builtinCode, code.deprecatedBuiltinCode, code.version = builtin, min(builtin, 127), _INT8_VERSION
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def _quantization(scale, zero_point):
    parameters = schema.QuantizationParametersT()
    parameters.scale, parameters.zeroPoint = [float(scale)], [int(zero_point)]
    return parameters


def _append_tensor(model, subgraph, name, shape, dtype, data=None, quantization=None):
    """Append a tensor to ``subgraph``: a constant holding the array ``data`` when given (a buffer of its
    own), else one the interpreter fills (buffer 0, the empty buffer)."""
    tensor = schema.TensorT()
    tensor.name, tensor.type, tensor.shape = name.encode(), dtype, np.asarray(shape, np.int32)
    tensor.quantization, tensor.buffer = quantization, 0
    if data is not None:
        buffer = schema.BufferT()
        buffer.data = np.ascontiguousarray(data).view(np.uint8).ravel()
        model.buffers.append(buffer)
        tensor.buffer = len(model.buffers) - 1
    subgraph.tensors.append(tensor)
    return len(subgraph.tensors) - 1


def _tensor(model, subgraph, name, shape, scale, zero_point, value=None):
    """Append an int8 tensor (a constant holding the int8 ``value`` when given)."""
    data = None if value is None else np.asarray([value], np.int8)
    return _append_tensor(model, subgraph, name, shape, schema.TensorType.INT8, data, _quantization(scale, zero_point))


def _float_tensor(model, subgraph, name, shape, values=None):
    """Append a float32 tensor (a constant holding ``values`` when given)."""
    data = None if values is None else np.asarray(values, np.float32)
    return _append_tensor(model, subgraph, name, shape, schema.TensorType.FLOAT32, data)


def _operator(opcode, inputs, outputs, options_type, options):
    operator = schema.OperatorT()
    operator.opcodeIndex, operator.inputs, operator.outputs = opcode, list(inputs), list(outputs)
    operator.builtinOptionsType, operator.builtinOptions = options_type, options
    return operator


def _mul(model, a, b, output):
    return _operator(_opcode_index(model, schema.BuiltinOperator.MUL), [a, b], [output],
                     schema.BuiltinOptions.MulOptions, schema.MulOptionsT())


def _scale_and_zero_point(tensor):
    quantization = tensor.quantization
    if quantization is None or quantization.scale is None or len(quantization.scale) != 1:
        return None
    return float(quantization.scale[0]), int(quantization.zeroPoint[0])


def _x_range(scale, zero_point):
    return (-128 - zero_point) * scale, (127 - zero_point) * scale


def _relu6_plus_3(x):
    return min(max(x + 3.0, 0.0), 6.0)


def _constant_gate(scale, zero_point, output_scale):
    """The gate's mid value when using it for every x is within a quarter of y's step, else None."""
    low, high = _x_range(scale, zero_point)
    gate_low, gate_high = _relu6_plus_3(low) / 6, _relu6_plus_3(high) / 6
    if gate_high <= 0 or max(abs(low), abs(high)) * (gate_high - gate_low) / 2 > output_scale / 4:
        return None
    return (gate_low + gate_high) / 2


def _gate_quantization(scale, zero_point):
    """Scale and zero point of ``relu6(x + 3)`` over the values int8 ``x`` can take (from 0, which an int8
    range must hold), its step no finer than XNNPACK's ADD allows; None when x's scale is then too fine."""
    high = _relu6_plus_3(_x_range(scale, zero_point)[1])
    gate_scale = max(high / 255.0, 2.0 * max(scale, THREE_SCALE) / ADD_SCALE_RATIOS[1])
    return None if scale / gate_scale < ADD_SCALE_RATIOS[0] else (gate_scale, -128)


def _hard_swish_ops(model, subgraph, operator, constants):
    """The int8 ops replacing the hard-swish ``operator`` (see the module docstring), or None when it stays."""
    (x,), (y,) = operator.inputs, operator.outputs
    source, target = subgraph.tensors[x], subgraph.tensors[y]
    input_params, output_params = _scale_and_zero_point(source), _scale_and_zero_point(target)
    if source.type != schema.TensorType.INT8 or input_params is None or output_params is None:
        return None
    scale, zero_point = input_params
    name, shape = target.name.decode(errors="replace"), source.shape
    constant_gate = _constant_gate(scale, zero_point, output_params[0])
    if constant_gate is not None:
        gate = _tensor(model, subgraph, f"{name}/gate", [1], constant_gate / 127, 0, 127)
        return [_mul(model, x, gate, y)]
    gate_quantization = _gate_quantization(scale, zero_point)
    if gate_quantization is None or not (
            MUL_SCALE_RATIOS[0] <= scale / 6.0 * gate_quantization[0] / output_params[0] < MUL_SCALE_RATIOS[1]):
        return None
    if min(3.0, max(map(abs, _x_range(scale, zero_point)))) / 6 * gate_quantization[0] / 2 > output_params[0] / 2:
        return None  # the gate's rounding would cost more than half an output step
    if not constants:
        constants["three"] = _tensor(model, subgraph, "hard_swish/three", [1], THREE_SCALE, 0, 127)
    gate = _tensor(model, subgraph, f"{name}/relu6_x_plus_3", shape, *gate_quantization)
    add_options = schema.AddOptionsT()
    add_options.fusedActivationFunction = schema.ActivationFunctionType.RELU6
    add = _operator(_opcode_index(model, schema.BuiltinOperator.ADD), [x, constants["three"]], [gate],
                    schema.BuiltinOptions.AddOptions, add_options)
    if _absorb_six(model, subgraph, y):
        return [add, _mul(model, x, gate, y)]
    if "sixth" not in constants:
        constants["sixth"] = _tensor(model, subgraph, "hard_swish/one_sixth", [1], ONE_SIXTH / 127, 0, 127)
    sixth = _tensor(model, subgraph, f"{name}/x_sixth", shape, scale / 6.0, zero_point)
    return [_mul(model, x, constants["sixth"], sixth), add, _mul(model, sixth, gate, y)]


def _readers(subgraph, tensor):
    return [operator for operator in subgraph.operators if tensor in operator.inputs]


def _six_times(model, subgraph, tensor, absorbing):
    """The tensors that hold six times their values if ``tensor`` does, ``absorbing`` filled with the
    weighted operators that take the factor back; None where a reader cannot carry or absorb it."""
    if tensor in subgraph.outputs or _scale_and_zero_point(subgraph.tensors[tensor]) is None:
        return None
    scaled = [tensor]
    for operator in _readers(subgraph, tensor):
        builtin = _builtin(model.operatorCodes[operator.opcodeIndex])
        if builtin in _WEIGHTED and operator.inputs[0] == tensor and tensor not in operator.inputs[1:] and \
                subgraph.tensors[operator.inputs[1]].type == schema.TensorType.INT8:
            absorbing[id(operator)] = operator
            continue
        carries = builtin in _HOMOGENEOUS and operator.inputs[0] == tensor or \
            builtin == schema.BuiltinOperator.MUL and list(operator.inputs).count(tensor) == 1
        further = _six_times(model, subgraph, operator.outputs[0], absorbing) if carries else None
        if further is None:
            return None
        scaled += further
    return scaled


def _absorb_six(model, subgraph, y):
    """Declare the hard-swish output ``y`` at six times its scale, so that ``MUL(x, relu6(x + 3))`` writes
    the integers of ``x * relu6(x + 3) / 6``, when every path from ``y`` reaches a convolution or fully
    connected layer through ops that carry the factor (``f(6 v) = 6 f(v)``: pooling, reshaping, a product
    with a tensor that does not carry it; their outputs are declared at six times their scale too): those
    layers' weight scales are divided by 6, so each computes the same integers as before. False, nothing
    changed, where a path ends elsewhere (an addition, a model output)."""
    absorbing = {}
    scaled = _six_times(model, subgraph, y, absorbing)
    scaled = None if scaled is None else set(scaled)
    if scaled is None or any(len(scaled.intersection(operator.inputs)) > 1 for operator in subgraph.operators):
        return False
    for tensor in scaled:
        scale, zero_point = _scale_and_zero_point(subgraph.tensors[tensor])
        subgraph.tensors[tensor].quantization = _quantization(6.0 * scale, zero_point)
    for operator in absorbing.values():
        weights = subgraph.tensors[operator.inputs[1]]
        if len(_readers(subgraph, operator.inputs[1])) > 1:  # a weight tensor shared with another layer stays
            weights = copy.copy(weights)
            subgraph.tensors.append(weights)
            operator.inputs = [operator.inputs[0], len(subgraph.tensors) - 1, *operator.inputs[2:]]
        weights.quantization = copy.copy(weights.quantization)
        weights.quantization.scale = np.asarray(weights.quantization.scale, np.float32) / np.float32(6.0)
    return True


def _dequantized(model, tensor, dtype):
    """The float values of a constant per-channel (axis 0) or per-tensor quantized tensor."""
    values = np.frombuffer(model.buffers[tensor.buffer].data.tobytes(), dtype).reshape(tensor.shape)
    scale = np.asarray(tensor.quantization.scale, np.float64).reshape((-1,) + (1,) * (values.ndim - 1))
    zero = np.asarray(tensor.quantization.zeroPoint, np.float64).reshape(scale.shape)
    return (values - zero) * scale


def _narrow_convolution_ops(model, subgraph, operator, constants):
    """A CONV_2D of at most ``NARROW_CHANNELS`` int8 input channels computed in float (see the module
    docstring), or None for any other operator."""
    if len(operator.inputs) < 2:
        return None
    x, weights, *bias = operator.inputs
    source, kernel = subgraph.tensors[x], subgraph.tensors[weights]
    if source.type != schema.TensorType.INT8 or kernel.type != schema.TensorType.INT8 or \
            source.shape[-1] > NARROW_CHANNELS or model.buffers[kernel.buffer].data is None:
        return None
    (y,) = operator.outputs
    name = subgraph.tensors[y].name.decode(errors="replace")
    inputs = [_float_tensor(model, subgraph, f"{name}/input_float", source.shape),
              _float_tensor(model, subgraph, f"{name}/kernel_float", kernel.shape, _dequantized(model, kernel, np.int8))]
    if bias and bias[0] >= 0:
        bias_tensor = subgraph.tensors[bias[0]]
        inputs.append(_float_tensor(model, subgraph, f"{name}/bias_float", bias_tensor.shape,
                                    _dequantized(model, bias_tensor, np.int32)))
    output = _float_tensor(model, subgraph, f"{name}/float", subgraph.tensors[y].shape)
    convolution = copy.copy(operator)
    convolution.inputs, convolution.outputs = inputs, [output]
    return [_operator(_opcode_index(model, schema.BuiltinOperator.DEQUANTIZE), [x], [inputs[0]], 0, None),
            convolution,
            _operator(_opcode_index(model, schema.BuiltinOperator.QUANTIZE), [output], [y], 0, None)]


def _softmax_ops(model, subgraph, operator, constants):
    """An int8 SOFTMAX as DEQUANTIZE, float SOFTMAX, QUANTIZE (see the module docstring); a QUANTIZE that
    alone reads its output (int8 to the uint8 model output) is folded into the last op."""
    (x,), (y,) = operator.inputs[:1], operator.outputs
    if subgraph.tensors[x].type != schema.TensorType.INT8:
        return None
    readers = [op for op in subgraph.operators if y in op.inputs]
    quantize = _opcode_index(model, schema.BuiltinOperator.QUANTIZE)
    if y not in subgraph.outputs and len(readers) == 1 and readers[0].opcodeIndex == quantize:
        constants.setdefault("dropped", set()).add(id(readers[0]))
        y = readers[0].outputs[0]
    name = subgraph.tensors[y].name.decode(errors="replace")
    logits, probabilities = (_float_tensor(model, subgraph, f"{name}/{what}", subgraph.tensors[x].shape)
                             for what in ("logits_float", "float"))
    softmax = copy.copy(operator)
    softmax.inputs, softmax.outputs = [logits], [probabilities]
    return [_operator(_opcode_index(model, schema.BuiltinOperator.DEQUANTIZE), [x], [logits], 0, None),
            softmax, _operator(quantize, [probabilities], [y], 0, None)]


def _constant_operand(model, subgraph, operator):
    """The int8 constant operand of a two-input MUL or ADD without a fused activation, else None."""
    options = operator.builtinOptions
    if _builtin(model.operatorCodes[operator.opcodeIndex]) not in _AFFINE or len(operator.inputs) != 2 or \
            getattr(options, "fusedActivationFunction", 0) != schema.ActivationFunctionType.NONE:
        return None
    constants = [tensor for tensor in operator.inputs if subgraph.tensors[tensor].type == schema.TensorType.INT8
                 and model.buffers[subgraph.tensors[tensor].buffer].data is not None]
    return constants[0] if len(constants) == 1 else None


def _input_chain(model, subgraph, tensor):
    """The ops from a uint8 model input to ``tensor``: a QUANTIZE to int8, then MULs and ADDs by constants
    (a model's own pixel scaling), each result read by the next op alone; None for any other producer."""
    chain = []
    while True:
        producers = [operator for operator in subgraph.operators if tensor in operator.outputs]
        if len(producers) != 1 or tensor in subgraph.outputs or len(_readers(subgraph, tensor)) != 1:
            return None
        (operator,) = producers
        chain.insert(0, operator)
        if _builtin(model.operatorCodes[operator.opcodeIndex]) == schema.BuiltinOperator.QUANTIZE:
            source = operator.inputs[0]
            return chain if source in subgraph.inputs and subgraph.tensors[source].type == schema.TensorType.UINT8 \
                else None
        constant = _constant_operand(model, subgraph, operator)
        if constant is None:
            return None
        (tensor,) = [input for input in operator.inputs if input != constant]


def _float_input_ops(model, subgraph, operator, constants):
    """A DEQUANTIZE of the uint8 input's int8 chain (see ``_input_chain`` and the module docstring)
    replaced by the chain in float from the uint8 input; None for any other DEQUANTIZE."""
    chain = _input_chain(model, subgraph, operator.inputs[0])
    if chain is None:
        return None
    constants.setdefault("dropped", set()).update(map(id, chain))
    (output,) = operator.outputs
    shape = subgraph.tensors[output].shape
    values = output if len(chain) == 1 else _float_tensor(model, subgraph, "pixels/float", shape)
    dequantize = _opcode_index(model, schema.BuiltinOperator.DEQUANTIZE)
    ops = [_operator(dequantize, chain[0].inputs[:1], [values], 0, None)]
    for step in chain[1:]:
        constant = subgraph.tensors[_constant_operand(model, subgraph, step)]
        operand = _float_tensor(model, subgraph, f"{constant.name.decode(errors='replace')}/float",
                                constant.shape, _dequantized(model, constant, np.int8))
        result = output if step is chain[-1] else _float_tensor(model, subgraph, "pixels/float", shape)
        ops.append(_operator(step.opcodeIndex, [values, operand], [result],
                             step.builtinOptionsType, step.builtinOptions))
        values = result
    return ops


def _rewrite(model_bytes, builtin, replace):
    """``model_bytes`` with each operator of type ``builtin`` that ``replace(model, subgraph, operator,
    constants)`` gives ops for replaced by them; ``(bytes, number replaced)``, the input itself if none."""
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(model_bytes))
    codes = {index for index, code in enumerate(model.operatorCodes) if _builtin(code) == builtin}
    rewritten = 0
    for subgraph in model.subgraphs if codes else ():
        operators, constants = [], {}
        for operator in subgraph.operators:
            replacement = replace(model, subgraph, operator, constants) if operator.opcodeIndex in codes else None
            operators += [operator] if replacement is None else replacement
            rewritten += replacement is not None
        subgraph.operators = [operator for operator in operators if id(operator) not in constants.get("dropped", ())]
    if not rewritten:
        return model_bytes, 0
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)), rewritten


def hard_swish_as_xnnpack_ops(model_bytes):
    """``model_bytes`` with every int8 ``HARD_SWISH`` written as MUL, ADD+RELU6, MUL (see the module
    docstring); returns ``(new bytes, number of ops rewritten)``, the input itself when there were none."""
    return _rewrite(model_bytes, schema.BuiltinOperator.HARD_SWISH, _hard_swish_ops)


def narrow_convolutions_in_float(model_bytes):
    """``model_bytes`` with every int8 CONV_2D of at most ``NARROW_CHANNELS`` input channels computed in float
    between DEQUANTIZE and QUANTIZE (see the module docstring); ``(new bytes, number rewritten)``."""
    return _rewrite(model_bytes, schema.BuiltinOperator.CONV_2D, _narrow_convolution_ops)


def softmax_in_float(model_bytes):
    """``model_bytes`` with every int8 SOFTMAX computed in float (see the module docstring);
    ``(new bytes, number rewritten)``."""
    return _rewrite(model_bytes, schema.BuiltinOperator.SOFTMAX, _softmax_ops)


def input_scaling_in_float(model_bytes):
    """``model_bytes`` with a uint8 input's int8 QUANTIZE, pixel scaling and DEQUANTIZE (before a convolution in
    float) computed in float from the uint8 pixels (see the module docstring); ``(new bytes, number rewritten)``."""
    return _rewrite(model_bytes, schema.BuiltinOperator.DEQUANTIZE, _float_input_ops)


def for_xnnpack(model_bytes, integer_only=False):
    """A full-int8 file with all four rewrites, or with the hard-swish one alone where every op must stay
    integer (``integer_only``: accelerators, a QAT file); ``(new bytes, {rewrite: number of ops rewritten})``."""
    counts = {}
    rewrites = (hard_swish_as_xnnpack_ops,) if integer_only else (
        hard_swish_as_xnnpack_ops, narrow_convolutions_in_float, input_scaling_in_float, softmax_in_float)
    for rewrite in rewrites:
        model_bytes, counts[rewrite.__name__] = rewrite(model_bytes)
    return model_bytes, counts
