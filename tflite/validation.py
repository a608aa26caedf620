"""Check an exported ``.tflite`` against the Keras model it came from, on held-out data.

Both models see the same images; the report gives each one's accuracy, how often
their top-1 classes agree, and the largest absolute difference of their outputs.
"""
import numpy as np

from demo_app.runtime import TFLiteModel


def tflite_predict(tflite_model, images):
    """Run a ``TFLiteModel`` (batch 1) over ``images``; return its first output, stacked."""
    return np.stack([tflite_model.run(image.astype(np.float32))[0] for image in images])


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
    if isinstance(tflite_model, (bytes, bytearray)):
        tflite_model = TFLiteModel.from_bytes(bytes(tflite_model))
    elif isinstance(tflite_model, str):
        tflite_model = TFLiteModel(tflite_model)
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
