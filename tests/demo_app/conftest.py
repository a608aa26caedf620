"""Tiny Keras classifiers converted once per session to .tflite (fp32, int8 with uint8/int8 I/O)."""
import os

import numpy as np
import pytest
from demo_helpers import IMAGE_SHAPE, NUM_CLASSES, random_images, write_rgb


@pytest.fixture(scope="session")
def keras_image_model():
    """RGB [0, 255] -> Rescaling -> Conv2D 8 -> GAP -> Dense(3, softmax)."""
    from keras_layers.keras_api import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input(IMAGE_SHAPE)
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    x = keras.layers.Conv2D(8, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(NUM_CLASSES, activation="softmax")(x))


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("tflite_models")


def _save(model_dir, name, model_bytes):
    path = os.path.join(model_dir, name)
    with open(path, "wb") as f:
        f.write(model_bytes)
    return path


@pytest.fixture(scope="session")
def fp32_model_path(keras_image_model, model_dir):
    from tflite.converter import convert

    return _save(model_dir, "fp32.tflite", convert(keras_image_model, quantization="fp32"))


@pytest.fixture(scope="session")
def quantized_model_paths(keras_image_model, model_dir):
    """``{"uint8": path, "int8": path}``: full-integer models with that input/output dtype."""
    from tflite.converter import convert

    data = random_images(64, seed=1)
    return {io: _save(model_dir, f"int8_{io}_io.tflite",
                      convert(keras_image_model, quantization="int8", representative_data=data, io_dtype=io))
            for io in ("uint8", "int8")}


@pytest.fixture(scope="session")
def non_image_model_path(model_dir):
    """Input(10) -> Dense(3): a valid model whose input is not an image."""
    from keras_layers.keras_api import keras
    from tflite.converter import convert

    inputs = keras.Input((10,))
    return _save(model_dir, "vector.tflite", convert(keras.Model(inputs, keras.layers.Dense(3)(inputs))))


@pytest.fixture
def image_folder(tmp_path):
    """Three RGB images of different sizes (plus a non-image file that must be skipped)."""
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(3)
    for name, (h, w) in [("b.png", (40, 30)), ("a.png", (24, 24)), ("c.jpg", (64, 48))]:
        write_rgb(folder / name, rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    (folder / "notes.txt").write_text("not an image")
    return folder
