"""Dilated convolutions as one TFLite builtin: the same outputs and gradients as Keras' own layers."""
import numpy as np
import pytest
import tensorflow as tf

import layer_contract
from keras_layers.dilated import DilatedConv2D, DilatedDepthwiseConv2D
from keras_layers.keras_api import keras
from tflite.op_profile import xnnpack_coverage

SHAPE = (12, 10, 6)
CASES = {
    "depthwise": (keras.layers.DepthwiseConv2D, DilatedDepthwiseConv2D,
                  dict(kernel_size=5, dilation_rate=2, padding="same", depth_multiplier=2, activation="relu")),
    "depthwise_valid": (keras.layers.DepthwiseConv2D, DilatedDepthwiseConv2D,
                        dict(kernel_size=3, dilation_rate=(2, 3), padding="valid", use_bias=False)),
    "conv": (keras.layers.Conv2D, DilatedConv2D, dict(filters=8, kernel_size=3, dilation_rate=4, padding="same")),
}


def pair(case, seed=0):
    """Keras' layer and the kit's, with the same random weights."""
    keras_class, kit_class, config = CASES[case]
    reference, layer = keras_class(**config), kit_class(**config)
    for each in (reference, layer):
        each.build((None, *SHAPE))
    rng = np.random.default_rng(seed)
    reference.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in reference.get_weights()])
    layer.set_weights(reference.get_weights())
    return reference, layer


@pytest.mark.parametrize("case", CASES)
def test_outputs_and_gradients_equal_the_keras_layers(case):
    reference, layer = pair(case)
    x = tf.constant(layer_contract.random_inputs(SHAPE, count=3, seed=1))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        expected, actual = reference(x), layer(x)
        losses = [tf.reduce_sum(tf.square(y) * tf.range(1.0, 1.0 + y.shape[-1])) for y in (expected, actual)]
    np.testing.assert_allclose(actual, expected, atol=1e-5, rtol=1e-6)
    for wrt in ([x, x], [reference.trainable_weights[0], layer.trainable_weights[0]]):
        reference_grad, grad = (tape.gradient(loss, w) for loss, w in zip(losses, wrt))
        assert float(tf.reduce_max(tf.abs(reference_grad))) > 1.0
        np.testing.assert_allclose(grad, reference_grad, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("case", CASES)
def test_round_trip_and_conversion_to_one_dilated_builtin(case, tmp_path):
    _, layer = pair(case)
    layer_contract.assert_serialization_round_trip(layer, SHAPE, tmp_path)
    inputs = keras.Input(SHAPE)
    model = keras.Model(inputs, keras.layers.BatchNormalization()(layer(inputs)))
    layer_contract.randomize_batch_norm(model)
    layer_contract.assert_tflite_matches_keras(model, SHAPE, samples=16)
    expected = "CONV_2D" if case == "conv" else "DEPTHWISE_CONV_2D"
    for quantization in ("fp32", "int8"):
        coverage = xnnpack_coverage(layer_contract.convert(model, quantization, layer_contract.random_inputs(SHAPE, 8),
                                                           io_dtype="int8" if quantization == "int8" else None))
        assert coverage[0][0] == expected and all(on_xnnpack for _, on_xnnpack in coverage), coverage
        assert {op for op, _ in coverage} <= {expected, "MUL", "ADD"}  # batch norm after the activation stays


def test_keras_own_dilated_layer_converts_to_space_to_batch():
    """Why the kit's layers exist: Keras' dilated depthwise convolution leaves XNNPACK."""
    reference, _ = pair("depthwise")
    ops = [op for op, _ in xnnpack_coverage(layer_contract.convert(layer_contract.wrap(reference, SHAPE), "fp32"))]
    assert "SPACE_TO_BATCH_ND" in ops and "BATCH_TO_SPACE_ND" in ops


def test_strided_dilated_layer_is_refused():
    layer = DilatedDepthwiseConv2D(3, strides=2, name="strided")
    with pytest.raises(ValueError, match="strided.*stride 1"):
        layer(tf.zeros((1, *SHAPE)))
