"""Magnitude pruning with TFMOT under tf_keras: schedule, strip, save/load, sparsity in the .tflite."""
import numpy as np
import pytest

from keras_layers.keras_api import LEGACY_KERAS, keras

pytestmark = [pytest.mark.legacy_keras,
              pytest.mark.skipif(not LEGACY_KERAS, reason="run with TF_USE_LEGACY_KERAS=1")]


def test_prune_strip_save_load_and_export_keep_the_zeros(tmp_path):
    from keras_layers.activations import HardSwish
    from tflite import convert
    from tflite.pruning import keras_sparsity, prune_model, pruning_callback, strip, tflite_sparsity

    layers = keras.layers
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(16, 3, padding="same")(inputs)))
    x = HardSwish()(layers.Conv2D(16, 1)(layers.DepthwiseConv2D(3, padding="same")(x)))
    model = keras.Model(inputs, layers.Dense(3)(layers.GlobalAveragePooling2D()(x)))

    pruned = prune_model(model, final_sparsity=0.6, end_step=4, frequency=1)
    wrapped = sorted(type(layer.layer).__name__ for layer in pruned.layers if hasattr(layer, "layer"))
    assert wrapped == ["Conv2D", "Conv2D", "Dense"]  # depthwise, batch norm and HardSwish untouched
    rng = np.random.default_rng(0)
    data, labels = rng.standard_normal((48, 8, 8, 3)).astype(np.float32), rng.integers(0, 3, 48)
    pruned.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    pruned.fit(data, labels, epochs=1, batch_size=8, callbacks=[pruning_callback()], verbose=0)  # 6 steps

    stripped = strip(pruned)
    assert not any(hasattr(layer, "layer") for layer in stripped.layers)
    for layer in stripped.layers:
        if type(layer) in (layers.Conv2D, layers.Dense):
            kernel = np.asarray(layer.weights[0])
            assert abs(np.mean(kernel == 0) - 0.6) < 0.03, layer.name  # the schedule's final sparsity
    np.testing.assert_allclose(stripped.predict(data, verbose=0), pruned.predict(data, verbose=0), atol=1e-6)

    path = str(tmp_path / "pruned.keras")
    stripped.save(path)
    restored = keras.models.load_model(path)
    assert keras_sparsity(restored) == pytest.approx(keras_sparsity(stripped))
    np.testing.assert_allclose(restored.predict(data, verbose=0), stripped.predict(data, verbose=0), atol=1e-6)

    model_bytes = convert(restored, "fp32")
    assert keras_sparsity(restored) - 0.01 <= tflite_sparsity(model_bytes) <= keras_sparsity(restored) + 0.02
    assert tflite_sparsity(convert(model, "fp32")) < 0.05  # the dense model has (almost) no zeros


def test_bad_schedules_are_one_line_errors():
    from tflite.pruning import prune_model

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="sparsities"):
        prune_model(model, final_sparsity=1.0)
    with pytest.raises(ValueError, match="end_step"):
        prune_model(model, end_step=0)
