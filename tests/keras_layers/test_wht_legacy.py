"""The WHT layers and the WHT MobileNetV2 under tf_keras (Keras 2), against dense-matrix NumPy."""
import numpy as np
import pytest

from keras_layers.keras_api import LEGACY_KERAS, keras

pytestmark = [pytest.mark.legacy_keras,
              pytest.mark.skipif(not LEGACY_KERAS, reason="run with TF_USE_LEGACY_KERAS=1")]


def _with_random_weights(layer, x):
    layer(x)
    rng = np.random.default_rng(0)
    layer.set_weights([rng.uniform(0.5, 1.5, w.shape) if "scale" in w.name else rng.uniform(-0.3, 0.3, w.shape)
                       for w in layer.weights])
    return [np.asarray(w) for w in layer.weights][::-1]  # (threshold, scale) or (threshold,)


def test_layers_match_the_dense_reference_round_trip_and_convert(tmp_path):
    import layer_contract
    import wht_reference as ref
    from keras_layers.wht import WHT1D, WHT2D, SmoothThreshold, WHTGlobalPooling2D

    assert keras.__version__.startswith("2.")
    x = layer_contract.random_inputs((9, 12, 80), count=2)
    cases = [
        (SmoothThreshold(), lambda t: ref.smooth_threshold(x, t)),
        (WHT1D(96), lambda t: ref.wht1d(x, 96, t)),
        (WHT1D(24, block_size=32, use_scale=True), lambda t, v: ref.wht1d(x, 24, t, v, 32)),
        (WHT2D(), lambda t: ref.wht2d(x, t)),
        (WHT2D(block_size=4, use_scale=True), lambda t, v: ref.wht2d(x, t, v, 4)),
        (WHTGlobalPooling2D(), lambda t, v: ref.wht_pooling(x, t, v)),
    ]
    for layer, expected in cases:
        weights = _with_random_weights(layer, x)
        np.testing.assert_allclose(np.asarray(layer(x)), expected(*weights), atol=2e-6, err_msg=layer.name)
    layer_contract.assert_serialization_round_trip(WHT1D(12, use_scale=True, name="wht1d"), (3, 3, 8), tmp_path)
    layer_contract.assert_gradients_match_finite_differences(lambda dtype: WHT2D(dtype=dtype), (5, 6, 2), delta=1e-5)
    inputs = keras.Input(shape=(6, 6, 8))
    outputs = WHT2D()(WHT1D(16)(keras.layers.Conv2D(8, 1)(inputs)))
    layer_contract.assert_tflite_matches_keras(keras.Model(inputs, outputs), (6, 6, 8), samples=16)


def test_wht_mobilenet_v2_has_the_papers_parameter_count():
    from models import mobilenet_v2

    model = mobilenet_v2(input_shape=(32, 32, 3), classes=10, pointwise="wht1d")
    assert model.count_params() == pytest.approx(540e3, rel=0.002)
    assert model.count_params() == 540_234  # regression pin: the builder's count under Keras 3 (the paper: 540K)
