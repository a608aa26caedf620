"""What every kit layer must do, as reusable checks (DESIGN.md, "Keras" section):

gradients that match finite differences, a ``.keras`` round trip that keeps outputs,
TFLite conversion with builtin ops only, float and full-int8, matching Keras, and
(``assert_protocol``) every hook of ``keras_layers.protocol`` the layer implements agreeing
with an independent computation.
Test files import it as ``import layer_contract`` (pytest puts tests/ on sys.path).
"""
import math

import numpy as np
import tensorflow as tf
from tensorflow.lite.python import schema_py_generated as schema
from tensorflow.lite.tools import flatbuffer_utils

from keras_layers import protocol
from keras_layers.keras_api import keras
from keras_layers.quantizers import FLOAT_BITS
from tflite import convert, custom_operators
from demo_app.runtime import TFLiteModel


def _is_shape_list(input_shape):
    return isinstance(input_shape, list) and all(isinstance(shape, (tuple, list)) for shape in input_shape)


def wrap(layer, input_shape):
    """A one-layer functional model taking ``input_shape`` (no batch axis), or a list of such
    shapes for a layer called on a list of tensors."""
    if _is_shape_list(input_shape):
        inputs = [keras.Input(shape=shape) for shape in input_shape]
    else:
        inputs = keras.Input(shape=input_shape)
    return keras.Model(inputs, layer(inputs))


def randomize_batch_norm(layer, seed=0):
    """Give every batch norm inside ``layer`` (or model) non-trivial statistics and affine weights."""
    rng = np.random.default_rng(seed)
    for weight in layer.weights:
        if any(name in weight.name for name in ("gamma", "moving_variance")):
            weight.assign(rng.uniform(0.5, 1.5, weight.shape))
        elif any(name in weight.name for name in ("beta", "moving_mean")):
            weight.assign(rng.normal(0, 0.3, weight.shape))


def sign(x):
    """NumPy sign with sign(0) = +1, the convention of the kit's binary quantizers."""
    return np.where(x >= 0, 1.0, -1.0)


def off_zero_inputs(input_shape, count, seed=0):
    """Random inputs with |x| >= 0.25, whose signs survive int8 quantization (int8 rounding flips
    the sign of values within half a step of 0)."""
    x = random_inputs(input_shape, count, seed)
    return (sign(x) * (0.25 + np.abs(x))).astype(np.float32)


def random_inputs(input_shape, count=1, seed=0, scale=1.0):
    """Standard normal float32 inputs (times ``scale``); a list of arrays for a list of shapes."""
    if _is_shape_list(input_shape):
        return [random_inputs(shape, count, seed + i, scale) for i, shape in enumerate(input_shape)]
    return (np.random.default_rng(seed).standard_normal((count, *input_shape)) * scale).astype(np.float32)


def assert_gradients_match_finite_differences(make_layer, input_shape, seed=0, delta=1e-3, atol=1e-5, rtol=1e-3):
    """Jacobian of a float64 instance of the layer w.r.t. its input, analytic vs numeric.

    ``make_layer(dtype)`` returns a fresh layer computing in ``dtype``.
    """
    layer = make_layer("float64")
    x = tf.constant(random_inputs(input_shape, seed=seed).astype(np.float64))
    layer(x)  # build
    theoretical, numerical = tf.test.compute_gradient(lambda t: layer(t), [x], delta=delta)
    np.testing.assert_allclose(theoretical[0], numerical[0], atol=atol, rtol=rtol)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(layer(x)))
    grads = tape.gradient(loss, layer.trainable_weights)
    assert all(g is not None for g in grads), "a trainable weight gets no gradient"


def assert_serialization_round_trip(layer, input_shape, tmp_path, atol=1e-6):
    """``get_config``/``from_config`` and a ``.keras`` save/load keep the outputs."""
    model = wrap(layer, input_shape)
    x = random_inputs(input_shape, count=2, seed=1)
    expected = np.asarray(model(x, training=False))
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    path = str(tmp_path / f"{layer.name}.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    np.testing.assert_allclose(np.asarray(restored(x, training=False)), expected, atol=atol)
    assert type(restored.layers[-1]) is type(layer)


def assert_tflite_matches_keras(model, input_shape, fp32_atol=1e-4, int8_rel=0.05, samples=32, data=None):
    """fp32 and full-int8 (int8 I/O) conversions: builtin ops only, outputs close to Keras.

    int8 error is measured relative to the output's range over the samples (``data``, or
    ``samples`` random inputs). Returns ``{quantization: max_abs_error}``.
    """
    data = random_inputs(input_shape, count=samples, seed=2) if data is None else data
    expected = np.asarray(model.predict(data, verbose=0))
    errors = {}
    for quantization, io_dtype in (("fp32", "float32"), ("int8", "int8")):
        model_bytes = convert(model, quantization, representative_data=data, io_dtype=io_dtype)
        assert custom_operators(model_bytes) == [], f"{quantization}: needs non-builtin ops"
        runtime = TFLiteModel.from_bytes(model_bytes)
        actual = np.stack([runtime.run(x)[0][0] for x in data])
        errors[quantization] = float(np.max(np.abs(actual - expected)))
    assert errors["fp32"] <= fp32_atol, errors
    value_range = float(expected.max() - expected.min()) or 1.0
    assert errors["int8"] <= int8_rel * value_range, (errors, value_range)
    return errors


# --- the layer protocol (keras_layers.protocol) -------------------------------------------------
# Each check below takes a built layer and compares one hook with a computation that does not
# go through the hook: Keras' own layers, the converted TFLite graph, the bit-packed file.

# Operators whose multiply-adds ``tflite_macs`` counts, and how the reduction length of one
# output element follows from the filter shape (TFLite layouts: OHWI, 1HWO, OI).
_MAC_OPERATORS = {
    schema.BuiltinOperator.CONV_2D: lambda filter_shape: math.prod(filter_shape[1:]),
    schema.BuiltinOperator.DEPTHWISE_CONV_2D: lambda filter_shape: math.prod(filter_shape[1:3]),
    schema.BuiltinOperator.FULLY_CONNECTED: lambda filter_shape: filter_shape[-1],
}


def tflite_macs(model_bytes):
    """MACs of one batch-1 inference of a flatbuffer, counted from its graph: for every CONV_2D,
    DEPTHWISE_CONV_2D and FULLY_CONNECTED operator, output elements times the reduction length
    of one element read off the filter tensor (other operators are not counted)."""
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(model_bytes))
    total = 0
    for graph in model.subgraphs:
        for op in graph.operators:
            code = model.operatorCodes[op.opcodeIndex]
            reduction = _MAC_OPERATORS.get(max(code.builtinCode, code.deprecatedBuiltinCode))
            if reduction is not None:
                output_shape = [int(d) for d in graph.tensors[op.outputs[0]].shape]
                total += math.prod(output_shape) * reduction([int(d) for d in graph.tensors[op.inputs[1]].shape])
    return total


def _outputs(model, x):
    return np.asarray(model(x, training=False))


def _assert_close(actual, expected, rtol, what):
    scale = float(np.abs(expected).max())
    assert scale > 1e-3, f"{what}: the reference output is ~0, the comparison proves nothing"
    error = float(np.abs(actual - expected).max())
    assert error <= rtol * scale, f"{what}: max |difference| {error:.3g} over output scale {scale:.3g}"


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _declared_widths(layer):
    """Every operand bit width the layer declares (32 and 32 for a float layer)."""
    if protocol.implements(layer, protocol.MacsByBits):
        return {bits for a, b, _ in layer.macs_by_bits() for bits in (a, b)}
    return set(protocol.operand_bits(layer))


def check_count_macs(layer, model=None, extra_macs=0):
    """``count_macs()`` is a non-negative int, the one ``models.profile`` reports for the layer,
    and, given the one-layer ``model``, the MACs of the CONV_2D / DEPTHWISE_CONV_2D /
    FULLY_CONNECTED operators of its fp32 TFLite graph plus ``extra_macs`` (the layer's
    documented MACs outside those operators)."""
    from models.profile import layer_macs

    macs = layer.count_macs()
    assert _is_int(macs) and macs >= 0, f"{layer.name}: count_macs() returned {macs!r}"
    assert layer.count_macs() == macs and layer_macs(layer) == macs
    if model is not None:
        graph = tflite_macs(convert(model, "fp32"))
        assert macs == graph + extra_macs, f"{layer.name}: count_macs() {macs}, TFLite graph {graph} + {extra_macs}"


def check_macs_by_bits(layer):
    """``macs_by_bits()`` is a list of (input_bits, kernel_bits, macs) ints, widths in 1..32,
    whose MACs sum to ``count_macs()``, and is what ``models.profile`` reads."""
    from models.profile import layer_macs_by_bits

    terms = layer.macs_by_bits()
    assert isinstance(terms, list) and terms, f"{layer.name}: macs_by_bits() returned {terms!r}"
    for term in terms:
        assert len(term) == 3 and all(_is_int(v) for v in term), f"{layer.name}: bad term {term!r}"
        assert 1 <= term[0] <= FLOAT_BITS and 1 <= term[1] <= FLOAT_BITS and term[2] >= 0, term
    assert sum(macs for _, _, macs in terms) == layer.count_macs()
    assert layer_macs_by_bits(layer) == [tuple(int(v) for v in term) for term in terms]


def check_operand_bits(layer):
    """``input_bits`` and ``kernel_bits`` are ints in 1..32; without ``macs_by_bits`` they weight
    every MAC of the layer in ``models.profile``."""
    from models.profile import layer_macs, layer_macs_by_bits

    bits = (layer.input_bits, layer.kernel_bits)
    assert all(_is_int(b) and 1 <= b <= FLOAT_BITS for b in bits), f"{layer.name}: operand bits {bits!r}"
    if not protocol.implements(layer, protocol.MacsByBits):
        assert layer_macs_by_bits(layer) == [(*bits, layer_macs(layer))]


def check_count_weight_bits(layer):
    """``count_weight_bits()`` is an int; 32 bits per parameter for a layer that declares only
    float operands, fewer than that when it declares a narrower one."""
    bits = layer.count_weight_bits()
    assert _is_int(bits) and bits >= 0, f"{layer.name}: count_weight_bits() returned {bits!r}"
    float_bits = FLOAT_BITS * layer.count_params()
    if _declared_widths(layer) == {FLOAT_BITS}:
        assert bits == float_bits, f"{layer.name}: a float layer stores {float_bits} bits, not {bits}"
    else:
        assert bits < float_bits, f"{layer.name}: quantized weights take {bits} >= {float_bits} float bits"


def check_fold(layer, input_shape, x, rtol=1e-4):
    """The deploy form (``protocol.deploy_form``) loaded with ``fold()`` computes the layer's
    inference outputs, and folds to its own weights; returns the deployed layer."""
    deployed = protocol.deploy_form(layer)
    wrap(deployed, input_shape)
    folded = layer.fold()
    assert [tuple(np.shape(w)) for w in folded] == [tuple(w.shape) for w in deployed.weights]
    deployed.set_weights(folded)
    _assert_close(_outputs(deployed, x), _outputs(layer, x), rtol, f"{layer.name} folded")
    for own, again in zip(deployed.get_weights(), deployed.fold()):
        np.testing.assert_array_equal(own, again)
    return deployed


def check_plain_layers(layer, input_shape, x, rtol=1e-4):
    """``plain_layers()`` are Keras built-in layers that, chained, compute the (deploy-form)
    layer's outputs, and ``models.profile`` of that chain counts the layer's ``count_macs()``:
    the direct count of its plain Conv2D equivalent."""
    from models.profile import profile

    inputs = keras.Input(shape=input_shape)
    y = inputs
    for plain, weights in layer.plain_layers():
        assert type(plain).__module__.startswith(("keras.", "tf_keras.")), type(plain)
        y = plain(y)
        plain.set_weights(weights)
    chain = keras.Model(inputs, y)
    _assert_close(_outputs(chain, x), _outputs(layer, x), rtol, f"{layer.name} as plain layers")
    assert profile(chain)["macs"] == layer.count_macs()


def check_compose(layer, x, seed=0, rtol=1e-5):
    """After its trainable weights change, ``compose()`` makes the outputs a function of the
    trainable weights alone: scrambling every non-trainable weight and composing again gives
    the same outputs."""
    rng = np.random.default_rng(seed)
    for weight in layer.trainable_weights:
        value = np.asarray(weight)
        weight.assign(value + 0.1 * (np.std(value) or 1.0) * rng.standard_normal(value.shape).astype(value.dtype))
    layer.compose()
    expected = np.asarray(layer(x, training=False))
    for weight in layer.non_trainable_weights:
        weight.assign(rng.standard_normal(weight.shape).astype(np.asarray(weight).dtype))
    layer.compose()
    _assert_close(np.asarray(layer(x, training=False)), expected, rtol, f"{layer.name} recomposed")


def assert_protocol(layer, input_shape, graph_macs=None, nonnegative_inputs=False, seed=0):
    """Check every hook of ``keras_layers.protocol`` that ``layer`` implements (see the
    ``check_*`` functions); builds it on ``input_shape`` first and randomizes its batch norms.

    ``graph_macs``: None to skip the TFLite count, else the layer's MACs outside CONV_2D,
    DEPTHWISE_CONV_2D and FULLY_CONNECTED (0 when those operators are its whole cost).
    ``nonnegative_inputs``: feed |x| (a layer whose deploy form assumes a ReLU before it).
    Returns the names of the hooks checked.
    """
    model = wrap(layer, input_shape)
    randomize_batch_norm(layer, seed)
    x = random_inputs(input_shape, count=2, seed=seed + 1)
    if nonnegative_inputs:
        x = np.abs(x)
    checked = []
    if protocol.implements(layer, protocol.CountsMacs):
        check_count_macs(layer, None if graph_macs is None else model, graph_macs or 0)
        checked.append("CountsMacs")
    if protocol.implements(layer, protocol.MacsByBits):
        check_macs_by_bits(layer)
        checked.append("MacsByBits")
    if protocol.implements(layer, protocol.OperandBits):
        check_operand_bits(layer)
        checked.append("OperandBits")
    if protocol.implements(layer, protocol.CountsWeightBits):
        check_count_weight_bits(layer)
        checked.append("CountsWeightBits")
    deployed = layer
    if protocol.implements(layer, protocol.Foldable):
        deployed = check_fold(layer, input_shape, x)
        checked.append("Foldable")
    if protocol.implements(deployed, protocol.HasPlainLayers):
        check_plain_layers(deployed, input_shape, x)
        checked.append("HasPlainLayers")
    if protocol.implements(layer, protocol.Composable):
        check_compose(layer, x, seed)
        checked.append("Composable")
    if protocol.implements(layer, protocol.CalibratedOutput):
        assert isinstance(layer.calibrated_output, bool)
        checked.append("CalibratedOutput")
    return checked
