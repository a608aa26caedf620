"""The Python API entry points of the fuzz cases: each takes the strings a case names, calls the kit
as a user's script would, and ``call`` reports a raised input error the way the command line does
(``demo_app.errors``: one ``mobilekit: error:`` line, exit 2; anything else keeps its traceback)."""
import json
import sys

import numpy as np

from demo_app.errors import is_input_error
from demo_app.runtime import one_line
from models.data import load_dataset
from models.detection_data import detection_splits
from models.segmentation_data import load_segmentation_data
from tests.fuzz.bases import IMAGE_SIZE


def load_image_folder(path, strict):
    load_dataset(path, IMAGE_SIZE, strict=strict == "strict")


def load_detection_data(path):
    detection_splits(path, IMAGE_SIZE)


def load_mask_folder(path):
    load_segmentation_data(path, IMAGE_SIZE)


def validate(tflite_path, keras_path):
    """``tflite.validation.validate`` of a file against a Keras model on random pixels."""
    from mobilekit.model_export import load_keras_model
    from tflite.validation import validate as validate_file

    images = np.random.default_rng(0).integers(0, 256, (4, IMAGE_SIZE, IMAGE_SIZE, 3)).astype(np.float32)
    validate_file(tflite_path, load_keras_model(keras_path), images)


def convert(keras_path, quantization):
    """``tflite.convert`` of the Keras model at ``keras_path``, without calibration data."""
    from mobilekit.model_export import load_keras_model
    from tflite import convert as convert_model

    convert_model(load_keras_model(keras_path), quantization)


def build(builder, arguments):
    """``models.<builder>(**json.loads(arguments))``."""
    import models

    getattr(models, builder)(**json.loads(arguments))


ENTRIES = {f.__name__: f for f in (load_image_folder, load_detection_data, load_mask_folder, validate, convert,
                                   build)}


def call(name, *args):
    """Run ``ENTRIES[name](*args)``: 0, or 2 after one error line for an input error."""
    try:
        ENTRIES[name](*args)
    except (ValueError, OSError, ImportError) as error:
        if not is_input_error(error):
            raise
        print(f"mobilekit: error: {one_line(error)}", file=sys.stderr)
        return 2
    return 0
