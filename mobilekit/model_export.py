"""``mobilekit export --model PATH``: a Keras model the kit did not build, exported as the kit's runs are.

The model comes from a ``.keras`` file, an ``.h5`` file or a SavedModel folder (wrapped in
``keras.layers.TFSMLayer``). A model whose input has free dimensions (``keras.applications``
networks built without ``input_shape`` take ``(None, None, None, 3)``) is rebuilt on a static
``(1, H, W, C)`` input first: TFLite converts it either way, but LiteRT's XNNPACK delegate cannot
resize such a file at run time ("failed to reshape runtime"), so it would not run.

Images are read with the kit's robust folder reader (``models.image_folder``) and scaled from pixels
to the model's ``input_range``: ``--calibration-data`` (any layout) calibrates int8 and int16x8,
``--validation-data`` (one sub-folder per class, named after the labels) measures the Keras model and
each file: accuracy, top-1 agreement (classifiers) or pixel agreement of the class maps
(segmenters), and the largest output difference. The result is a run folder, as ``mobilekit export
NAME`` writes one: ``model_<quantization>.tflite``, ``labels.txt`` and ``report.json``/``report.md``.
"""
import os
import zipfile

import numpy as np

from demo_app.app import load_labels
from demo_app.preprocess import parse_input_range, to_input_range
from mobilekit.jobs import check_quantizations, with_metadata
from mobilekit.runs import run_dir, update_report
from models.files import write_bytes, write_text
from models.classification_data import ClassificationData
from models.image_folder import read_image_files, read_labelled_folder
from tflite.converter import CALIBRATED, convert
from tflite.inspect import operator_names
from tflite.validation import load_tflite, tflite_masks, validate

TASKS = ("classify", "segment")
QUANTIZATIONS = ("fp32", "fp16", "dynamic", "int8", "int16x8")
CALIBRATION_IMAGES = 200
QAT_FILE = "model_qat_int8.tflite"


def load_keras_model(path):
    """The Keras model saved at ``path``: a ``.keras`` or ``.h5`` file, or a SavedModel folder."""
    import keras_layers  # noqa: F401  (registers the kit's layers, for files the kit wrote)
    from keras_layers.keras_api import keras

    expected = "expected a .keras file, an .h5 file or a SavedModel folder"
    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, "saved_model.pb")):
            raise ValueError(f"model folder {path} has no saved_model.pb: {expected}")
        return _saved_model(path, keras)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"model not found: {path} ({expected})")
    if not path.lower().endswith((".keras", ".h5", ".hdf5")):
        raise ValueError(f"model {path}: unknown file type; {expected}")
    if path.lower().endswith(".keras") and not zipfile.is_zipfile(path):
        raise ValueError(f"model {path} is not a .keras file: it is no zip archive ({expected})")
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as error:  # noqa: BLE001 - Keras raises many types for files it cannot read
        reason = " ".join(str(error).split())[:200] or type(error).__name__
        raise ValueError(f"cannot load Keras model {path}: {reason} ({expected})") from None


def _saved_model(path, keras):
    """A SavedModel's ``serving_default`` signature with one image input, as a Keras model."""
    import tensorflow as tf

    signature = tf.saved_model.load(path).signatures.get("serving_default")
    inputs = list(signature.structured_input_signature[1].values()) if signature is not None else []
    if len(inputs) != 1:
        raise ValueError(f"SavedModel {path}: expected a serving_default signature with one input, "
                         f"found {len(inputs)}")
    spec = inputs[0]
    image = keras.Input(batch_shape=tuple(spec.shape), dtype=spec.dtype.name)
    outputs = keras.layers.TFSMLayer(path, call_endpoint="serving_default")(image)
    if isinstance(outputs, dict):
        if len(outputs) != 1:
            raise ValueError(f"SavedModel {path}: expected one output, found {', '.join(outputs)}")
        outputs = next(iter(outputs.values()))
    return keras.Model(image, outputs, name=os.path.basename(os.path.normpath(path)))


def static_input_model(model, image_size=None, name=None):
    """``model`` itself when its input is ``(batch, H, W, C)`` with H, W, C fixed, else the model called on
    a static ``(1, H, W, C)`` input (``image_size`` gives free H and W); errors call it ``name`` (default
    its own name)."""
    from keras_layers.keras_api import keras

    name = name or f"model {model.name}"
    if len(model.inputs) != 1:
        raise ValueError(f"{name} has {len(model.inputs)} inputs: expected one image input")
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 4:
        raise ValueError(f"{name} input shape {shape} is not an image: expected (batch, H, W, C)")
    height, width, channels = shape[1:]
    if channels is None:
        raise ValueError(f"{name} input shape {shape}: expected a fixed channel count")
    if None not in (height, width):
        if image_size and (height, width) != (image_size, image_size):
            raise ValueError(f"--image-size {image_size} contradicts the fixed input {height}x{width} of {name}")
        return model
    if not image_size:
        raise ValueError(f"{name} input shape {shape} has free height and width: give --image-size "
                         f"(the side its images are resized to)")
    image = keras.Input(batch_shape=(1, height or image_size, width or image_size, channels))
    return keras.Model(image, model(image), name=model.name)


def read_labels(path, count):
    """Labels from ``path`` (the demo's ``load_labels``; ``count`` of them for a model of ``count`` classes), or
    the class indices as names without a file."""
    if path is None:
        return [str(i) for i in range(count)]
    labels = load_labels(path)
    if len(labels) != count:
        raise ValueError(f"labels file {path} has {len(labels)} labels but the model scores {count} classes; "
                         f"expected one label per line, in class order")
    return labels


def _compare(model_bytes, model, task, images, labels):
    """Validation figures of one file against the Keras model on ``images`` (in the model's range)."""
    if task == "classify":
        return validate(model_bytes, model, images, labels)
    expected = np.argmax(model.predict(images, batch_size=16, verbose=0), axis=-1)
    actual = tflite_masks(load_tflite(model_bytes), images)
    return {"n": int(len(images)), "pixel_agreement": float(np.mean(actual == expected))}


def _quantization_aware(model, input_range, data, epochs, run_name, names, progress):
    """``model_qat_int8.tflite``'s bytes and Keras model: ``model`` behind a rescaling from pixels to its
    ``input_range``, trained quantization-aware (``tflite.qat``) on ``data``, converted integer-only. The
    file takes raw pixels (0..255) as the kit's own classifiers do."""
    from keras_layers.keras_api import keras
    from tflite import qat

    low, high = parse_input_range(input_range)
    pixels = keras.Input(model.inputs[0].shape[1:], name="pixels")
    scaled = keras.layers.Rescaling((high - low) / 255.0, low, name="to_input_range")(pixels)
    progress(f"QAT fine-tuning for {epochs} epochs on {data.train.size} images")
    quantized = qat.train_quantized(keras.Model(pixels, model(scaled), name=model.name), data, epochs, verbose=2)
    model_bytes = convert(quantized, "int8", data.train.take(CALIBRATION_IMAGES), integer_only=True)
    return with_metadata(model_bytes, "classify", names, run_name, "QAT int8", "0,255"), quantized


def export_model(model_path, task="classify", name=None, labels=None, calibration_data=None, validation_data=None,
                 quantizations=("fp32", "int8"), image_size=None, input_range="0,255", qat_epochs=0, train_data=None,
                 progress=print):
    """Export the Keras model at ``model_path`` into ``runs/<name>/`` (default: the file's name); return the rows.

    Args:
        task: ``classify`` (one ``(1, classes)`` output) or ``segment`` (``(1, h, w, classes)`` scores).
        labels: text file with one class name per line (default: the class indices).
        calibration_data: folder of images for calibration (needed for ``int8`` and ``int16x8``).
        validation_data: folder of labelled images (one sub-folder per class, named after the labels)
            for a classifier, or of images for a segmenter; None: no validation figures.
        quantizations: some of ``QUANTIZATIONS``.
        image_size: side of the static input when the model's height and width are free.
        input_range: pixel range the model expects: ``0,255``, ``0,1`` or ``-1,1``.
        qat_epochs: classifiers: also write ``model_qat_int8.tflite``, the model fine-tuned this many
            epochs quantization-aware on ``train_data`` (labelled like ``validation_data``).
    """
    if task not in TASKS:
        raise ValueError(f"export --model --task {task}: expected one of {', '.join(TASKS)} (a detector needs the "
                         f"kit's SSDLite head and box decoding: train it with mobilekit train --task detect)")
    quantizations = check_quantizations(quantizations, QUANTIZATIONS, "export --model")
    parse_input_range(input_range)
    model = static_input_model(load_keras_model(model_path), image_size, name=f"model {model_path}")
    if qat_epochs and (task != "classify" or not train_data):
        raise ValueError("export --model --qat fine-tunes a classifier: it needs --task classify and --train-data "
                         "FOLDER (one sub-folder per class, named after the labels)")
    calibrated = [q for q in quantizations if q in CALIBRATED]
    if calibrated and not calibration_data:
        raise ValueError(f"--quantization {' '.join(calibrated)} needs --calibration-data FOLDER: images to calibrate "
                         f"the activation ranges on")
    height, width = model.inputs[0].shape[1:3]
    if height != width:
        raise ValueError(f"model {model_path} input is {height}x{width}: the kit's image readers expect square "
                         f"inputs")
    classes = int(model.outputs[0].shape[-1])
    names = read_labels(labels, classes)
    calibration = None
    if calibration_data:
        pixels, skipped = read_image_files(calibration_data, height)
        calibration = to_input_range(pixels[:CALIBRATION_IMAGES], input_range)
        progress(f"calibration: {len(calibration)} images from {calibration_data}"
                 + (f" ({len(skipped)} unreadable skipped)" if skipped else ""))
    validation = validation_pixels = None
    if validation_data:
        if task == "classify":
            validation_pixels, skipped = read_labelled_folder(validation_data, height, names)
            validation = (to_input_range(validation_pixels.images, input_range), validation_pixels.labels)
        else:
            pixels, skipped = read_image_files(validation_data, height)
            validation = (to_input_range(pixels, input_range), None)
        progress(f"validation: {len(validation[0])} images from {validation_data}"
                 + (f" ({len(skipped)} unreadable skipped)" if skipped else ""))
    name = name or os.path.splitext(os.path.basename(os.path.normpath(model_path)))[0]
    path = run_dir(name)
    write_text(os.path.join(path, "labels.txt"), "\n".join(names) + "\n")
    rows = []
    for quantization in quantizations:
        progress(f"converting {model.name} to {quantization}")
        model_bytes = with_metadata(convert(model, quantization, representative_data=calibration,
                                            calibration_steps=CALIBRATION_IMAGES), task, names, name, quantization,
                                    input_range)
        file_name = f"model_{quantization}.tflite"
        write_bytes(os.path.join(path, file_name), model_bytes)
        row = {"quantization": quantization, "file": file_name, "size_bytes": len(model_bytes)}
        if validation is not None:
            row.update(_compare(model_bytes, model, task, *validation))
        rows.append({**row, "ops": " ".join(operator_names(model_bytes))})
        progress(", ".join(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}"
                           for key, value in rows[-1].items() if key != "ops"))
    if qat_epochs:
        train, skipped = read_labelled_folder(train_data, height, names)
        progress(f"QAT training: {train.size} images from {train_data}"
                 + (f" ({len(skipped)} unreadable skipped)" if skipped else ""))
        held_out = validation_pixels or train
        data = ClassificationData(train, held_out, held_out, tuple(names))
        model_bytes, quantized = _quantization_aware(model, input_range, data, qat_epochs, name, names, progress)
        write_bytes(os.path.join(path, QAT_FILE), model_bytes)
        row = {"quantization": "qat_int8", "file": QAT_FILE, "size_bytes": len(model_bytes)}
        if validation_pixels is not None:
            row.update(validate(model_bytes, quantized, *validation_pixels))
        rows.append({**row, "ops": " ".join(operator_names(model_bytes))})
    update_report(path, status="complete",
                  config={"task": task, "source_model": os.path.abspath(model_path), "input_range": input_range,
                          "image_size": int(height), "classes": classes},
                  model={"name": model.name, "params": int(model.count_params())}, export=rows)
    return rows
