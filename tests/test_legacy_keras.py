"""The kit under tf_keras (Keras 2), selected by TF_USE_LEGACY_KERAS=1 (``make test`` runs
this file in its own process; the Keras generation is fixed at import time)."""
import numpy as np
import pytest

from keras_layers.keras_api import LEGACY_KERAS, keras

pytestmark = [pytest.mark.legacy_keras,
              pytest.mark.skipif(not LEGACY_KERAS, reason="run with TF_USE_LEGACY_KERAS=1")]


def test_the_policy_module_picked_tf_keras():
    import tf_keras

    assert keras is tf_keras and keras.__version__.startswith("2.")


def test_mobilenet_v2_builds_runs_and_matches_tf_keras_applications():
    from models import mobilenet_v2, profile

    model = mobilenet_v2(input_shape=(96, 96, 3), alpha=0.5, classes=10)
    reference = keras.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=0.5, classes=10, weights=None)
    assert model.count_params() == reference.count_params()
    assert profile(model)["macs"] == profile(reference)["macs"]
    output = model(np.zeros((2, 96, 96, 3), np.float32), training=False)
    np.testing.assert_allclose(np.sum(output, axis=-1), 1.0, rtol=1e-5)


def test_training_recipe_and_conversion_under_tf_keras(tmp_path):
    from models import mobilenet_v2
    from models.train import with_preprocessing
    from tflite import convert, custom_operators, validate

    model = with_preprocessing(mobilenet_v2(input_shape=(32, 32, 3), alpha=0.35, classes=4))
    images = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3)).astype(np.uint8)
    for quantization in ("fp32", "int8"):
        model_bytes = convert(model, quantization, representative_data=images)
        assert custom_operators(model_bytes) == []
        report = validate(model_bytes, model, images)
        assert report["max_abs_diff"] < (1e-5 if quantization == "fp32" else 0.1)
    model.save(str(tmp_path / "m.keras"))
    assert keras.models.load_model(str(tmp_path / "m.keras")).count_params() == model.count_params()
