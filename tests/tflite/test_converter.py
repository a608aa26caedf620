import numpy as np
import pytest
import tensorflow as tf

import layer_contract
from demo_app.runtime import TFLiteModel
from keras_layers.keras_api import keras
from models import mobilenet_v2
from models.data import load_digits_data
from tensorflow.lite.python import schema_py_generated as schema
from tflite import QUANTIZATIONS, convert, custom_operators, operator_names

SHAPE = (32, 32, 3)
CLASSES = 5


@pytest.fixture(scope="module")
def digits():
    """Digits 0-4 of scikit-learn's real handwritten digits, scaled to [-1, 1]: ``(train, held_out)``,
    held out being the test and validation splits (never seen by training or calibration)."""
    data = load_digits_data(image_size=SHAPE[0], seed=0)

    def first_classes(*splits):
        images = np.concatenate([split[0] for split in splits])
        labels = np.concatenate([split[1] for split in splits])
        keep = labels < CLASSES
        return images[keep].astype(np.float32) / 127.5 - 1.0, labels[keep]

    return first_classes(data.train), first_classes(data.test, data.validation)


@pytest.fixture(scope="module")
def model(digits):
    """A trained classifier (an untrained MobileNetV2's features vanish: every output is 1/5, and
    any conversion would agree with it). Eight epochs (after three, its softmax outputs sit close to
    ties often enough that which way int8 rounds them depends on the CPU TensorFlow trained on), then
    batch norm statistics of 256 training images, so that inference sees the statistics the weights
    were trained with."""
    keras.utils.set_random_seed(0)
    model = mobilenet_v2(input_shape=SHAPE, alpha=0.35, classes=CLASSES)
    (images, labels), _ = digits
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", jit_compile=False)
    model.fit(images, labels, epochs=8, batch_size=32, verbose=0)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0  # the next training-mode call sets the moving statistics to the batch's
    model(images[:256], training=True)
    return model


@pytest.fixture(scope="module")
def samples(digits):
    """Calibration data: 24 training images."""
    return digits[0][0][:24]


@pytest.fixture(scope="module")
def held_out(model, digits):
    """``(images, labels, Keras softmax outputs)`` of the held-out digits."""
    images, labels = digits[1]
    return images, labels, model.predict(images, verbose=0)


@pytest.fixture(scope="module")
def converted(model, samples):
    return {q: convert(model, q, representative_data=samples) for q in QUANTIZATIONS}


def test_the_model_is_a_real_classifier(held_out):
    """What the agreement checks below compare against: predictions of every class, mostly right."""
    images, labels, expected = held_out
    assert len(images) == 271  # 30% of the 901 digits 0-4 (the stratified test and validation splits)
    assert set(expected.argmax(-1)) == set(range(CLASSES))
    assert np.mean(expected.argmax(-1) == labels) >= 0.85  # regression pin: 0.93 measured (8 epochs, seed 0)


# Per quantization: the least top-1 agreement with Keras on the 271 held-out digits, and the largest
# mean |TFLite - Keras| of the softmax outputs. fp32 and binary compute what Keras computes; the rest
# are regression pins of what this model measured (TF 2.21 without oneDNN, ai-edge-litert 2.3), with
# headroom: agreement fp16 1.0, dynamic 1.0, int8 0.989 (268 of 271), int16x8 1.0; mean |diff| fp16
# 1.8e-4, dynamic 8.9e-4, int8 7.4e-3, int16x8 2.8e-3 (its weights are int8 too).
AGREEMENT = {"fp32": 1.0, "fp16": 1.0, "dynamic": 0.99, "int8": 0.98, "int16x8": 0.99, "binary": 1.0}
MEAN_ERROR = {"fp32": 1e-6, "fp16": 1e-3, "dynamic": 0.01, "int8": 0.03, "int16x8": 0.01, "binary": 1e-6}


@pytest.mark.parametrize("quantization", QUANTIZATIONS)
def test_every_quantization_is_builtin_only_and_agrees_with_keras_on_held_out_digits(quantization, held_out,
                                                                                      converted):
    model_bytes = converted[quantization]
    assert custom_operators(model_bytes) == []
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"} <= set(operator_names(model_bytes))
    runtime = TFLiteModel.from_bytes(model_bytes)
    images, _, expected = held_out
    actual = np.stack([runtime.run(x)[0][0] for x in images])
    agreement = np.mean(actual.argmax(-1) == expected.argmax(-1))
    assert agreement >= AGREEMENT[quantization], agreement
    assert np.mean(np.abs(actual - expected)) <= MEAN_ERROR[quantization]
    if quantization in ("fp32", "binary"):
        assert np.max(np.abs(actual - expected)) <= 1e-5


def test_binary_leaves_a_float_network_as_fp32(converted):
    assert converted["binary"] == converted["fp32"]  # no kernel holds +-c only


def test_quantized_files_are_smaller(model, converted):
    """The weights take 4 bytes each in fp32, 2 in fp16 and 1 in dynamic, int8 and int16x8 (plus
    per-channel scales, biases kept in 32 bits (int16x8: 64), and the graph, which the bounds leave room
    for). Batch norm folds into the convolutions: fp32 stores each kernel and one bias per output channel."""
    fp32 = len(converted["fp32"])
    values = 0
    for layer in model.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)):
            kernel = tuple(layer.weights[0].shape)
            outputs = kernel[-2] * kernel[-1] if isinstance(layer, keras.layers.DepthwiseConv2D) else kernel[-1]
            values += int(np.prod(kernel)) + outputs
    # regression pin: the graph itself (operators, tensors, names) measured 48 KB with TF 2.21
    assert 4 * values < fp32 < 4 * values + 64_000, (fp32, 4 * values)
    assert len(converted["fp16"]) < 0.6 * fp32
    assert len(converted["dynamic"]) < 0.4 * fp32
    assert len(converted["int8"]) < 0.4 * fp32
    assert len(converted["int16x8"]) < 0.5 * fp32  # regression pin: 0.45 measured


@pytest.mark.parametrize("io_dtype, dtype", [("uint8", np.uint8), ("int8", np.int8)])
def test_int8_input_output_types(io_dtype, dtype, model, samples, converted):
    model_bytes = converted["int8"] if io_dtype == "uint8" else convert(model, "int8", samples, io_dtype="int8")
    runtime = TFLiteModel.from_bytes(model_bytes)
    assert runtime.input_dtype == dtype
    assert runtime.output_details[0]["dtype"] == dtype
    assert "QUANTIZE" in operator_names(model_bytes) or io_dtype == "int8"


@pytest.mark.parametrize("kwargs, message", [
    ({"quantization": "int4"}, "quantization"),
    ({"quantization": "int8"}, "representative_data"),
    ({"quantization": "fp32", "io_dtype": "uint8"}, "needs quantization='int8'"),
    ({"quantization": "int8", "io_dtype": "int16", "representative_data": np.zeros((1, *SHAPE))}, "io_dtype"),
    ({"quantization": "int16x8"}, "int16x8 quantization needs representative_data"),
    ({"quantization": "int16x8", "io_dtype": "uint8"}, "io_dtype 'uint8' needs quantization='int8', got 'int16x8'"),
    ({"quantization": "fp16", "io_dtype": "int16"}, "io_dtype 'int16' needs quantization='int16x8', got 'fp16'"),
    ({"quantization": "int8", "io_dtype": "int4"}, "io_dtype 'int4' is not supported"),
])
def test_bad_arguments_get_one_line_errors(kwargs, message, model):
    with pytest.raises(ValueError, match=message) as error:
        convert(model, **kwargs)
    assert "\n" not in str(error.value)


def test_a_model_needing_flex_ops_fails_instead_of_producing_an_unrunnable_file():
    inputs = keras.Input((4, 4))
    outputs = keras.layers.Lambda(lambda t: tf.linalg.inv(t + 4.0 * tf.eye(4)))(inputs)
    with pytest.raises(Exception, match="(?i)ops|operat"):
        convert(keras.Model(inputs, outputs), "fp32")


def test_operator_names_reads_custom_ops_from_the_flatbuffer():
    inputs = keras.Input((4, 4))
    outputs = keras.layers.Lambda(lambda t: tf.linalg.inv(t + 4.0 * tf.eye(4)))(inputs)
    converter = tf.lite.TFLiteConverter.from_keras_model(keras.Model(inputs, outputs))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    flex = converter.convert()
    assert any(name.startswith("CUSTOM:Flex") for name in custom_operators(flex))


def test_a_plain_layer_passes_the_shared_layer_contract():
    model = layer_contract.wrap(keras.layers.Conv2D(4, 3, padding="same"), (8, 8, 2))
    errors = layer_contract.assert_tflite_matches_keras(model, (8, 8, 2))
    assert errors["fp32"] < 1e-5


TYPE_NAMES = {code: name for name, code in vars(schema.TensorType).items() if not name.startswith("_")}
WEIGHTED_OPS = {schema.BuiltinOperator.CONV_2D, schema.BuiltinOperator.DEPTHWISE_CONV_2D,
                schema.BuiltinOperator.FULLY_CONNECTED}


def weighted_op_dtypes(model_bytes):
    """The (input, weights, bias, output) dtypes of every convolution and fully connected op of a file."""
    model = schema.ModelT.InitFromPackedBuf(model_bytes, 0)
    graph = model.subgraphs[0]
    found = set()
    for op in graph.operators:
        code = model.operatorCodes[op.opcodeIndex]
        if max(code.builtinCode, code.deprecatedBuiltinCode) in WEIGHTED_OPS:
            found.add(tuple(TYPE_NAMES[graph.tensors[i].type] if i >= 0 else None
                            for i in (*op.inputs[:3], op.outputs[0])))
    return found


def test_int16x8_has_int16_activations_int8_weights_and_float_io(converted):
    model_bytes = converted["int16x8"]
    assert weighted_op_dtypes(model_bytes) == {("INT16", "INT8", "INT64", "INT16")}
    runtime = TFLiteModel.from_bytes(model_bytes)
    assert runtime.input_dtype == np.float32 and runtime.output_details[0]["dtype"] == np.float32
    assert {"QUANTIZE", "DEQUANTIZE"} <= set(operator_names(model_bytes))


def test_int16x8_takes_and_gives_int16_when_asked(model, samples, held_out):
    runtime = TFLiteModel.from_bytes(convert(model, "int16x8", samples, io_dtype="int16"))
    assert runtime.input_dtype == np.int16 and runtime.output_details[0]["dtype"] == np.int16
    images, _, expected = held_out
    actual = np.stack([runtime.run(x)[0][0] for x in images[:32]])  # the wrapper quantizes and dequantizes
    assert np.mean(np.abs(actual - expected[:32])) <= MEAN_ERROR["int16x8"]


def wide_range_model():
    """A network whose 8-bit activations lose what matters: a 1x1 convolution writes channel 0 as 1000x
    the input and channels 1-3 as the input itself, and the next 1x1 convolution reads channels 1-3 only.
    One int8 scale for the middle tensor (~8 per step) rounds channels 1-3 to 0; one int16 scale (~0.03)
    keeps them."""
    inputs = keras.Input((8, 8, 4))
    wide = keras.layers.Conv2D(4, 1, use_bias=False)
    read = keras.layers.Conv2D(2, 1)
    model = keras.Model(inputs, read(wide(inputs)))
    wide.set_weights([np.diag([1000.0, 1.0, 1.0, 1.0])[None, None]])
    read.set_weights([np.array([[0.0, 0.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])[None, None], np.zeros(2)])
    return model


def test_int16x8_keeps_what_int8_activations_round_away():
    model = wide_range_model()
    data = np.random.default_rng(0).uniform(-1, 1, (32, 8, 8, 4)).astype(np.float32)
    expected = model.predict(data[16:], verbose=0)
    errors = {}
    for quantization in ("int8", "int16x8"):
        model_bytes = convert(model, quantization, representative_data=data[:16], io_dtype="float32")
        assert custom_operators(model_bytes) == []
        runtime = TFLiteModel.from_bytes(model_bytes)
        errors[quantization] = np.mean(np.abs(np.stack([runtime.run(x)[0][0] for x in data[16:]]) - expected))
    assert errors["int8"] > 0.5 > 0.02 > errors["int16x8"], errors  # mean |output| is ~1


def test_int16x8_refuses_activations_too_small_for_16_bit_scales():
    """Activations that fade (an untrained MobileNetV2's reach ~1e-11) get int16 scales so small that the
    bound of a fused ReLU6 overflows int32: LiteRT refuses the file, and ``convert`` says why in one line."""
    inputs = keras.Input((8, 8, 3))
    outputs = keras.layers.Conv2D(4, 3, activation="relu6")(keras.layers.Rescaling(1e-12)(inputs))
    model = keras.Model(inputs, outputs, name="fading")
    data = np.random.default_rng(0).uniform(0, 255, (8, 8, 8, 3))
    with pytest.raises(ValueError, match="the int16x8 file of model fading does not run") as error:
        convert(model, "int16x8", representative_data=data)
    assert "\n" not in str(error.value)
    assert custom_operators(convert(model, "int8", representative_data=data)) == []  # int8 floors tiny ranges
