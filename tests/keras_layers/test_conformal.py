import numpy as np
import pytest
import tensorflow as tf

import conformal_reference as ref
import layer_contract
from keras_layers.conformal import ConformalLayers, Recompose, ReSPro
from keras_layers.keras_api import keras
from models import profile
from plain_converter import tf_converter_int8
from tflite import operator_names

layers = keras.layers
SHAPE = (13, 11, 2)


def conv(filters, kernel_size, strides=1, dtype=None):
    return layers.Conv2D(filters, kernel_size, strides, use_bias=False, dtype=dtype)


MIXES = {  # name: (input shape, sequence)
    "depth1": ((9, 9, 3), lambda: [conv(4, 3), ReSPro()]),
    "depth2_strided": (SHAPE, lambda: [conv(4, 3), ReSPro(), conv(3, 3, strides=2), ReSPro()]),
    "depth8": ((20, 19, 2), lambda: [layer for _ in range(8) for layer in (conv(3, 3), ReSPro())]),
    "pool_dropout_trailing": (SHAPE, lambda: [conv(4, 3), ReSPro(), layers.AveragePooling2D(2), layers.Dropout(0.5),
                                              conv(5, 2, strides=2), ReSPro(alpha=0.5), conv(3, 1)]),
    "pool_only": (SHAPE, lambda: [layers.AveragePooling2D(3, strides=2), ReSPro(alpha=2.0)]),
}


def built(sequence, shape):
    layer = ConformalLayers(sequence)
    layer.build((None, *shape))
    return layer


def layerwise_twin(layer):
    """The same network (same weights) evaluated layer by layer."""
    twin = ConformalLayers.from_config({**layer.get_config(), "inference": "layers"})
    twin.build((None, *layer.feature_shapes[0]))
    for mine, theirs in zip(twin.sequence, layer.sequence):
        mine.set_weights(theirs.get_weights())
    return twin


def relative_error(actual, expected):
    return float(np.max(np.abs(np.asarray(actual) - expected)) / np.max(np.abs(expected)))


@pytest.mark.parametrize("alpha", [None, 0.5, 3.0])
def test_respro_is_the_scaled_projection_of_the_stereographic_point(alpha):
    x = layer_contract.random_inputs((3, 4, 2), count=4, scale=0.8)
    x[1] *= 0.0
    actual = np.asarray(ReSPro(alpha)(x))
    a = 1.0 if alpha is None else alpha
    np.testing.assert_allclose(actual, ref.respro_geometric(x, a), rtol=1e-5, atol=1e-7)
    norms = np.linalg.norm(actual.reshape(4, -1), axis=1)
    assert np.all(norms <= 1 + 1e-6)
    on_sphere = x[:1] * (a / np.linalg.norm(x[0]))  # |x| = alpha goes to the unit sphere
    np.testing.assert_allclose(np.asarray(ReSPro(alpha)(on_sphere)), on_sphere / a, rtol=1e-5)


@pytest.mark.parametrize("mix", sorted(MIXES))
def test_composed_operator_equals_layer_by_layer_and_the_numpy_network(mix):
    shape, sequence = MIXES[mix]
    layer = built(sequence(), shape)
    x = layer_contract.random_inputs(shape, count=3, scale=2.0)
    composed = np.asarray(layer(x))
    layerwise = np.asarray(layerwise_twin(layer)(x))
    expected = ref.network(x, ref.steps_of(layer))
    assert composed.shape == expected.shape == (3, *layer.compute_output_shape((None, *shape))[1:])
    assert relative_error(layerwise, expected) <= 1e-5
    assert relative_error(composed, expected) <= 1e-4
    if not any(isinstance(sub, layers.Dropout) for sub in layer.sequence):  # training: layer by layer
        assert relative_error(layer(x, training=True), expected) <= 1e-5


def test_training_drops_out_and_compose_follows_new_weights():
    shape, sequence = MIXES["pool_dropout_trailing"]
    layer = built(sequence(), shape)
    x = layer_contract.random_inputs(shape, count=2)
    inference = np.asarray(layer(x))
    assert relative_error(layer(x, training=True), inference) > 1e-2  # dropout is active
    for sub in layer.sequence:
        sub.set_weights([w * 1.5 + 0.01 for w in sub.get_weights()])
    assert relative_error(layer(x), inference) <= 1e-6  # the composed operator is stored...
    layer.compose()  # ...until recomposed
    assert relative_error(layer(x), np.asarray(layerwise_twin(layer)(x))) <= 1e-4


def test_recompose_callback_keeps_the_composed_operator_in_step_with_training():
    inputs = keras.Input(SHAPE)
    features = ConformalLayers([conv(4, 3), ReSPro(), layers.AveragePooling2D(2), conv(4, 2), ReSPro()])
    model = keras.Model(inputs, layers.Dense(3)(layers.Flatten()(features(inputs))))
    model.compile(keras.optimizers.Adam(0.05), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = layer_contract.random_inputs(SHAPE, count=16)
    y = np.arange(16) % 3
    before = features.sequence[0].get_weights()[0]
    model.fit(x, y, epochs=2, batch_size=8, validation_data=(x, y), callbacks=[Recompose()], verbose=0)
    assert not np.allclose(before, features.sequence[0].get_weights()[0])
    assert relative_error(features(x), np.asarray(layerwise_twin(features)(x))) <= 1e-4


def test_gradients_match_finite_differences():
    def make(dtype, inference="layers"):
        return ConformalLayers([conv(3, 3, dtype=dtype), ReSPro(dtype=dtype), layers.AveragePooling2D(2, dtype=dtype),
                                conv(2, 2, dtype=dtype), ReSPro(0.8, dtype=dtype)], inference=inference, dtype=dtype)

    layer_contract.assert_gradients_match_finite_differences(make, (7, 7, 2))
    # the composed operator has the same input gradient
    composed = make("float64", "composed")
    x = tf.constant(layer_contract.random_inputs((7, 7, 2), count=2).astype(np.float64))
    composed(x)
    twin = layerwise_twin(composed)
    grads = []
    for net in (composed, twin):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.sin(net(x)))
        grads.append(tape.gradient(loss, x).numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-7, atol=1e-9)


def test_serialization_round_trip(tmp_path):
    shape, sequence = MIXES["pool_dropout_trailing"]
    layer_contract.assert_serialization_round_trip(ConformalLayers(sequence(), name="conformal"), shape, tmp_path)
    layer_contract.assert_serialization_round_trip(ReSPro(0.5, name="respro"), shape, tmp_path)


@pytest.mark.parametrize("inference", ["composed", "layers"])
def test_tflite_fp32_and_int8_match_keras(inference):
    shape, sequence = MIXES["pool_dropout_trailing"]
    model = layer_contract.wrap(ConformalLayers(sequence(), inference=inference), shape)
    layer_contract.assert_tflite_matches_keras(model, shape)
    # as the converter writes it (the kit's own file computes a <= 4-channel convolution in float: tflite.xnnpack_int8)
    int8 = tf_converter_int8(model, layer_contract.random_inputs(shape, count=8))
    assert not {"QUANTIZE", "DEQUANTIZE"} & set(operator_names(int8))  # every op runs in int8


def test_profile_counts_the_composed_and_the_layerwise_macs():
    def model(inference):
        return layer_contract.wrap(ConformalLayers([conv(3, 3), ReSPro(), conv(4, 3), ReSPro()], inference=inference),
                                   (6, 6, 2))

    n = 6 * 6 * 2
    composed, layerwise = profile(model("composed")), profile(model("layers"))
    assert composed["macs"] == 2 * 2 * (5 * 5 * 2 * 4) + n * n + 2 * n  # one 5x5 convolution, |x|, x^T Q x
    assert layerwise["macs"] == n + 4 * 4 * 3 * 18 + 4 * 4 * 3 + 2 * 2 * 4 * 27 + 2 * 2 * 4
    assert layerwise["params"] == composed["trainable_params"] == 2 * 3 * 9 + 3 * 4 * 9
    assert composed["params"] == composed["trainable_params"] + 5 * 5 * 2 * 4 + 1 + n * n


@pytest.mark.parametrize("make, message", [
    (lambda: ConformalLayers([layers.Conv2D(2, 3)]), "cannot compose Conv2D"),
    (lambda: ConformalLayers([conv(2, 3), layers.ReLU()]), "cannot compose ReLU"),
    (lambda: ConformalLayers([layers.MaxPooling2D()]), "cannot compose MaxPooling2D"),
    (lambda: ConformalLayers([layers.Conv2D(2, 3, padding="same", use_bias=False)]), "padding='valid'"),
    (lambda: ConformalLayers([ReSPro()], inference="fast"), "inference must be one of"),
    (lambda: ReSPro(alpha=0.0), "alpha must be positive"),
    (lambda: layer_contract.wrap(ConformalLayers([ReSPro()]), (8, 3)), r"expects \(batch, H, W, C\)"),
])
def test_bad_configurations_raise_clear_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()
