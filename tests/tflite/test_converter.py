import numpy as np
import pytest
import tensorflow as tf

import layer_contract
from demo_app.runtime import TFLiteModel
from keras_layers.keras_api import keras
from models import mobilenet_v2
from models.data import load_digits_data
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
    any conversion would agree with it). Three epochs, then batch norm statistics of 256 training
    images, so that inference sees the statistics the weights were trained with."""
    keras.utils.set_random_seed(0)
    model = mobilenet_v2(input_shape=SHAPE, alpha=0.35, classes=CLASSES)
    (images, labels), _ = digits
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", jit_compile=False)
    model.fit(images, labels, epochs=3, batch_size=32, verbose=0)
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
    assert np.mean(expected.argmax(-1) == labels) >= 0.85  # regression pin: 0.91 measured (3 epochs, seed 0)


# Per quantization: the least top-1 agreement with Keras on the 271 held-out digits, and the largest
# mean |TFLite - Keras| of the softmax outputs. fp32 and binary compute what Keras computes; the rest
# are regression pins of what this model measured (TF 2.21, ai-edge-litert 2.3), with headroom:
# agreement fp16 1.0, dynamic 1.0, int8 0.993 (269 of 271); mean |diff| fp16 2.4e-4, dynamic 1.6e-3,
# int8 8.4e-3.
AGREEMENT = {"fp32": 1.0, "fp16": 1.0, "dynamic": 0.99, "int8": 0.98, "binary": 1.0}
MEAN_ERROR = {"fp32": 1e-6, "fp16": 1e-3, "dynamic": 0.01, "int8": 0.03, "binary": 1e-6}


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
    """The weights take 4 bytes each in fp32, 2 in fp16 and 1 in dynamic and int8 (plus per-channel
    scales, biases kept in 32 bits, and the graph, which the bounds leave room for). Batch norm
    folds into the convolutions: fp32 stores each kernel and one bias per output channel."""
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
