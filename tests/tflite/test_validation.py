import numpy as np
import pytest

from keras_layers.keras_api import keras
from tflite import convert, validate


def tiny_classifier(seed):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))


@pytest.fixture(scope="module")
def data():
    """Images whose colour differs from image to image (a mean per image and channel), so that the
    random classifier's predictions differ too; uniform noise alone averages out to one class."""
    rng = np.random.default_rng(0)
    images = rng.normal(rng.normal(0, 1, (40, 1, 1, 3)), 0.5, (40, 8, 8, 3))
    return images.astype(np.float32), rng.integers(0, 3, 40)


def test_a_faithful_conversion_agrees_everywhere(data):
    model = tiny_classifier(0)
    images, labels = data
    report = validate(convert(model, "fp32"), model, images, labels)
    assert report["n"] == 40 and report["top1_agreement"] == 1.0 and report["max_abs_diff"] < 1e-5
    predictions = model.predict(images, verbose=0).argmax(-1)
    assert len(set(predictions)) > 1  # the agreement is not that of a constant class
    assert report["keras_accuracy"] == report["tflite_accuracy"] == pytest.approx(np.mean(predictions == labels))


def test_a_file_from_another_model_is_caught(data, tmp_path):
    images, labels = data
    path = tmp_path / "other.tflite"
    path.write_bytes(convert(tiny_classifier(1), "fp32"))
    report = validate(str(path), tiny_classifier(2), images, labels)
    assert report["max_abs_diff"] > 1e-3 and report["mean_abs_diff"] > 1e-4


def test_no_images_is_an_error():
    model = tiny_classifier(0)
    with pytest.raises(ValueError, match="at least one image"):
        validate(convert(model, "fp32"), model, np.zeros((0, 8, 8, 3), np.float32))
