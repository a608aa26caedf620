"""Magnitude pruning with TFMOT: polynomial-decay sparsity schedule, fine-tuning, strip, export.

Magnitude pruning (Zhu and Gupta, "To prune, or not to prune", 2017; the survey of Roth et al.,
section on pruning) zeroes the smallest-magnitude weights of each layer while the network
fine-tunes, raising the sparsity from s_i to s_f along

    s_t = s_f + (s_i - s_f) (1 - (t - t_0) / (n dt))^3          for t_0 <= t <= t_0 + n dt

(TFMOT's ``PolynomialDecay``, power 3: fast pruning early, gentle near the end). After
``strip`` the model is an ordinary Keras model whose kernels hold zeros; TFLite stores them
densely, so the file is as large as the dense one but compresses to about (1 - s) of it, and
``tflite_sparsity`` reads the zeros back from the exported flatbuffer.

Runs under tf_keras only (TFMOT, see ``tflite.qat_tfmot``). Convolution and dense layers are pruned;
depthwise convolutions and the kit's custom layers are left dense.
"""
import numpy as np
from tensorflow.lite.python import schema_py_generated as schema

from keras_layers.keras_api import keras
from tflite.qat_tfmot import flatten_preprocessing, tfmot_quantize

# Exact types: DepthwiseConv2D subclasses Conv2D, and TFMOT 0.8 wraps it but zeroes none of its
# (few) weights, so it is left dense.
PRUNABLE = (keras.layers.Conv2D, keras.layers.Dense)
# TFLite operators whose second input is the weight tensor pruning acts on.
WEIGHT_OPERATORS = ("CONV_2D", "FULLY_CONNECTED")


def _sparsity_api():
    tfmot_quantize()  # the same tf_keras requirement and message as QAT
    import tensorflow_model_optimization as tfmot

    return tfmot.sparsity.keras


def prune_model(model, final_sparsity=0.5, end_step=1000, initial_sparsity=0.0, begin_step=0, frequency=50):
    """Wrap every convolution / dense layer of ``model`` (``PRUNABLE``) for magnitude pruning.

    The sparsity follows ``PolynomialDecay`` from ``initial_sparsity`` at ``begin_step`` to
    ``final_sparsity`` at ``end_step`` (optimizer steps), updated every ``frequency`` steps.
    Train the result with ``callbacks=[pruning_callback()]``.
    """
    if not 0.0 <= initial_sparsity <= final_sparsity < 1.0:
        raise ValueError(f"sparsities must satisfy 0 <= initial <= final < 1, got {initial_sparsity}, {final_sparsity}")
    if end_step <= begin_step:
        raise ValueError(f"end_step must be after begin_step, got {begin_step}..{end_step}")
    sparsity = _sparsity_api()
    schedule = sparsity.PolynomialDecay(initial_sparsity, final_sparsity, begin_step, end_step, frequency=frequency)

    def wrap(layer):
        return sparsity.prune_low_magnitude(layer, pruning_schedule=schedule) if type(layer) in PRUNABLE else layer

    flat = flatten_preprocessing(model)
    copy = keras.models.clone_model(flat)  # the wrappers train their layer's weights: leave ``model`` alone
    copy.set_weights(flat.get_weights())
    return keras.models.clone_model(copy, clone_function=wrap)


def pruning_callback():
    """The callback that advances the pruning step during ``fit``."""
    return _sparsity_api().UpdatePruningStep()


def strip(model):
    """Remove the pruning wrappers: a plain Keras model with the (sparse) weights."""
    return _sparsity_api().strip_pruning(model)


def keras_sparsity(model):
    """Fraction of zero weights over the kernels of the prunable layers of a (stripped) model."""
    zeros = total = 0
    for layer in model.layers:
        if type(layer) in PRUNABLE:
            kernel = np.asarray(layer.weights[0])
            zeros, total = zeros + int(np.sum(kernel == 0)), total + kernel.size
    return zeros / max(total, 1)


def tflite_sparsity(model_bytes):
    """Fraction of zeros over the weight tensors of the conv / dense ops of a ``.tflite``.

    Read from the flatbuffer's constant buffers (int8 or float32), so it is what the exported
    file holds, not what the Keras model held.
    """
    model = schema.Model.GetRootAsModel(model_bytes, 0)
    names = {code: name for name, code in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
    dtypes = {schema.TensorType.INT8: np.int8, schema.TensorType.FLOAT32: np.float32}
    graph = model.Subgraphs(0)
    zeros = total = 0
    for i in range(graph.OperatorsLength()):
        operator = graph.Operators(i)
        opcode = model.OperatorCodes(operator.OpcodeIndex())
        if names.get(max(opcode.BuiltinCode(), opcode.DeprecatedBuiltinCode())) not in WEIGHT_OPERATORS:
            continue
        tensor = graph.Tensors(operator.Inputs(1))
        data = model.Buffers(tensor.Buffer()).DataAsNumpy()
        if tensor.Type() not in dtypes or isinstance(data, int):  # no constant data
            continue
        values = np.frombuffer(data.tobytes(), dtypes[tensor.Type()])
        zeros, total = zeros + int(np.sum(values == 0)), total + values.size
    return zeros / max(total, 1)
