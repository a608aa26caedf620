"""Check an exported ``.tflite`` against the Keras model it came from, on held-out data.

Both models see the same images; the report gives each one's accuracy, how often
their top-1 classes agree, and the largest absolute difference of their outputs.
"""
import numpy as np

from demo_app.runtime import TFLiteModel


def tflite_predict(tflite_model, images):
    """Run a ``TFLiteModel`` (batch 1) over ``images``; return its first output, stacked."""
    return np.stack([tflite_model.run(image.astype(np.float32))[0] for image in images])


def load_tflite(tflite_model):
    """A ``TFLiteModel`` of a path, flatbuffer bytes or a ``TFLiteModel`` (returned as it is)."""
    if isinstance(tflite_model, (bytes, bytearray)):
        return TFLiteModel.from_bytes(bytes(tflite_model))
    if isinstance(tflite_model, str):
        return TFLiteModel(tflite_model)
    return tflite_model


def validate_batches(tflite_model, keras_model, batches):
    """``validate`` over ``(images, labels)`` batches (e.g. ``split.batches(512)``), combined as if
    the images were one array: a large test split is never held in memory at once."""
    tflite_model = load_tflite(tflite_model)
    reports = [validate(tflite_model, keras_model, images, labels) for images, labels in batches]
    if not reports:
        raise ValueError("validation needs at least one image")
    count = sum(report["n"] for report in reports)
    combined = {"n": count, "max_abs_diff": max(report["max_abs_diff"] for report in reports)}
    for key in ("top1_agreement", "mean_abs_diff", "keras_accuracy", "tflite_accuracy"):
        combined[key] = sum(report[key] * report["n"] for report in reports) / count
    return combined


def validate(tflite_model, keras_model, images, labels=None):
    """Compare a TFLite classifier with its Keras model on ``images`` (one input each).

    Args:
        tflite_model: path, bytes, or ``demo_app.runtime.TFLiteModel``.
        keras_model: the Keras model it was converted from.
        images: samples in the Keras model's input range, e.g. uint8 pixels.
        labels: optional int labels, for the two accuracies.
    Returns:
        dict with ``n``, ``top1_agreement``, ``max_abs_diff``, ``mean_abs_diff`` and, with
        labels, ``keras_accuracy`` and ``tflite_accuracy``.
    """
    tflite_model = load_tflite(tflite_model)
    if len(images) == 0:
        raise ValueError("validation needs at least one image")
    expected = keras_model.predict(np.asarray(images, np.float32), batch_size=128, verbose=0)
    actual = tflite_predict(tflite_model, images).reshape(expected.shape)
    difference = np.abs(actual - expected)
    report = {
        "n": int(len(images)),
        "top1_agreement": float(np.mean(actual.argmax(-1) == expected.argmax(-1))),
        "max_abs_diff": float(difference.max()),
        "mean_abs_diff": float(difference.mean()),
    }
    if labels is not None:
        report["keras_accuracy"] = float(np.mean(expected.argmax(-1) == labels))
        report["tflite_accuracy"] = float(np.mean(actual.argmax(-1) == labels))
    return report




def tflite_detections(tflite_model, images):
    """``(boxes, classes, scores)`` lists of a detector ``.tflite`` (the four outputs of
    ``TFLite_Detection_PostProcess``) over images in [0, 1]."""
    tflite_model = load_tflite(tflite_model)
    boxes, classes, scores = [], [], []
    for image in images:
        b, c, s, count = tflite_model.run(np.asarray(image, np.float32) * 255.0)
        n = int(count.reshape(-1)[0])
        boxes.append(b[0, :n]), classes.append(c[0, :n].astype(np.int32)), scores.append(s[0, :n])
    return boxes, classes, scores


def tflite_masks(tflite_model, images):
    """Class maps (N, H, W) of a ``.tflite`` segmenter run image by image on pixels in [0, 255]."""
    tflite_model = load_tflite(tflite_model)
    return np.stack([np.argmax(tflite_model.run(image)[0][0], axis=-1) for image in images]).astype(np.uint8)
