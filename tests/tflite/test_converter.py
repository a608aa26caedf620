import numpy as np
import pytest
import tensorflow as tf

import layer_contract
from demo_app.runtime import TFLiteModel
from keras_layers.keras_api import keras
from models import mobilenet_v2
from tflite import QUANTIZATIONS, convert, custom_operators, operator_names

SHAPE = (32, 32, 3)


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return mobilenet_v2(input_shape=SHAPE, alpha=0.35, classes=5)


@pytest.fixture(scope="module")
def samples():
    return np.random.default_rng(0).uniform(-1, 1, (24, *SHAPE)).astype(np.float32)


@pytest.fixture(scope="module")
def converted(model, samples):
    return {q: convert(model, q, representative_data=samples) for q in QUANTIZATIONS}


# Largest tolerated |TFLite - Keras| on softmax outputs for each quantization.
TOLERANCE = {"fp32": 1e-5, "fp16": 5e-3, "dynamic": 0.05, "int8": 0.1, "binary": 1e-5}


@pytest.mark.parametrize("quantization", QUANTIZATIONS)
def test_every_quantization_is_builtin_only_and_matches_keras(quantization, model, samples, converted):
    model_bytes = converted[quantization]
    assert custom_operators(model_bytes) == []
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"} <= set(operator_names(model_bytes))
    runtime = TFLiteModel.from_bytes(model_bytes)
    expected = model.predict(samples, verbose=0)
    actual = np.stack([runtime.run(x)[0][0] for x in samples])
    assert np.max(np.abs(actual - expected)) <= TOLERANCE[quantization]
    if quantization in ("fp32", "binary"):
        assert np.mean(actual.argmax(-1) == expected.argmax(-1)) == 1.0


def test_binary_leaves_a_float_network_as_fp32(converted):
    assert converted["binary"] == converted["fp32"]  # no kernel holds +-c only


def test_quantized_files_are_smaller(converted):
    fp32 = len(converted["fp32"])
    assert len(converted["fp16"]) < 0.6 * fp32
    assert len(converted["dynamic"]) < 0.4 * fp32
    assert len(converted["int8"]) < 0.4 * fp32


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
