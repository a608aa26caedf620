import os

import numpy as np
import pytest

from keras_layers.keras_api import keras
from models import mobilenet_v2
from models.data import ClassificationData
from models.train import BestCheckpoint, set_batchnorm_momentum, train_classifier, with_preprocessing


def test_with_preprocessing_scales_pixels_to_unit_range():
    backbone = mobilenet_v2(input_shape=(32, 32, 3), alpha=0.35, classes=3)
    model = with_preprocessing(backbone)
    pixels = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(model(pixels, training=False), backbone(pixels / 127.5 - 1.0, training=False),
                               atol=1e-6)
    assert model.count_params() == backbone.count_params()


def test_batchnorm_momentum_reaches_nested_models_and_composite_layers():
    from keras_layers.ghost import GhostModule

    backbone = mobilenet_v2(input_shape=(32, 32, 3), alpha=0.35, classes=3)
    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, GhostModule(8)(with_preprocessing(backbone)(inputs)[:, None, None, :]))
    set_batchnorm_momentum(model, 0.8)
    ghost_bns = [w for w in model.layers[-1].weights if "moving_mean" in w.name]
    assert ghost_bns, "GhostModule holds batch norms"
    momenta = [layer.momentum for layer in model._flatten_layers(include_self=False, recursive=True)
               if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(momenta) == 2 + sum(isinstance(layer, keras.layers.BatchNormalization) for layer in backbone.layers)
    assert set(momenta) == {0.8}


def separable_data(size=32, n=96, seed=0):
    """Two classes a small network separates in a few epochs: dark vs bright squares."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    images = (rng.uniform(0, 60, (n, size, size, 3)) + 150 * labels[:, None, None, None]).astype(np.uint8)
    split = lambda a, b: (images[a:b], labels[a:b])  # noqa: E731
    return ClassificationData(split(0, 64), split(64, 80), split(80, 96), ("dark", "bright"))


def small_classifier(size=32, classes=2):
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(classes, activation="softmax")(x))


@pytest.mark.parametrize("augment", [(), ("shift",)])
def test_training_learns_and_writes_checkpoint_and_curves(tmp_path, augment):
    data = separable_data()
    model, history = train_classifier(small_classifier(), data, str(tmp_path), epochs=8, batch_size=16,
                                      learning_rate=2e-2, patience=8, augment=augment, verbose=0)
    assert set(history) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert history["loss"][-1] < history["loss"][0]
    assert max(history["val_accuracy"]) == 1.0
    assert sorted(os.listdir(tmp_path)) == ["model.keras"]  # no temporary files left
    restored = keras.models.load_model(str(tmp_path / "model.keras"))
    np.testing.assert_allclose(restored.predict(data.test[0], verbose=0), model.predict(data.test[0], verbose=0),
                               atol=1e-5)


def test_best_checkpoint_saves_only_on_improvement(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    checkpoint = BestCheckpoint(str(tmp_path / "best.keras"))
    checkpoint.set_model(model)
    checkpoint.on_epoch_end(0, {"val_accuracy": 0.5})
    first = os.path.getmtime(tmp_path / "best.keras")
    checkpoint.on_epoch_end(1, {"val_accuracy": 0.4})
    assert os.path.getmtime(tmp_path / "best.keras") == first and checkpoint.best == 0.5
    checkpoint.on_epoch_end(2, {"val_accuracy": 0.7})
    assert checkpoint.best == 0.7 and os.listdir(tmp_path) == ["best.keras"]


def test_training_traces_its_step_once(tmp_path):
    """The optimizer's and the metric's variables exist before ``fit``, so TensorFlow traces the
    training step once: variables first made inside the traced step make it trace a second time."""
    model, traces = small_classifier(), []
    step = model.train_step
    model.train_step = lambda batch: traces.append(batch) or step(batch)  # runs only while tracing
    train_classifier(model, separable_data(), str(tmp_path), epochs=2, batch_size=16, verbose=0)
    assert len(traces) == 1
