"""Quantizers and binary layers under tf_keras (Keras 2)."""
import numpy as np
import pytest

from keras_layers.keras_api import LEGACY_KERAS, keras

pytestmark = [pytest.mark.legacy_keras,
              pytest.mark.skipif(not LEGACY_KERAS, reason="run with TF_USE_LEGACY_KERAS=1")]


def test_binary_layers_train_clip_round_trip_and_convert(tmp_path):
    import layer_contract
    from keras_layers.binary import QuantDense, bwn_conv2d, xnor_depthwise_conv2d

    assert keras.__version__.startswith("2.")
    keras.utils.set_random_seed(1)
    layers = [xnor_depthwise_conv2d(3, depth_multiplier=2, use_bias=True, name="xnor_dw"),
              QuantDense(3, input_quantizer="uniform_2bit", kernel_quantizer="magnitude_aware_sign", name="dense")]
    for layer in layers:
        layer_contract.wrap(layer, (6, 6, 5))
        layer_contract.assert_serialization_round_trip(layer, (6, 6, 5), tmp_path)
    model = layer_contract.wrap(bwn_conv2d(4, 3, kernel_clip=0.05), (6, 6, 5))
    model.compile(optimizer=keras.optimizers.SGD(10.0), loss="mse")
    model.fit(layer_contract.random_inputs((6, 6, 5), count=4), np.full((4, 6, 6, 4), 5.0), verbose=0)
    assert np.abs(model.layers[-1].kernel.numpy()).max() == pytest.approx(0.05)
    inputs = keras.Input(shape=(6, 6, 5))
    outputs = bwn_conv2d(16, 3, strides=2, use_bias=True, name="bwn")(keras.layers.Conv2D(16, 1)(inputs))
    layer_contract.assert_tflite_matches_keras(keras.Model(inputs, outputs), (6, 6, 5), samples=16)
