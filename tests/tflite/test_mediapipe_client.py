"""MediaPipe Tasks as the client of the kit's metadata: its ImageClassifier, ObjectDetector and ImageSegmenter
load the files ``tflite.metadata`` wrote and agree with the kit's own LiteRT run on the same image.

MediaPipe runs in a virtual environment of its own (``tests/mediapipe_venv.py``). Images have the model's
input size, so MediaPipe's resize is the identity and both sides see the same pixels.
"""
import numpy as np
import pytest
from mediapipe_venv import mediapipe_python, run_client  # noqa: F401  (a fixture)

from demo_app.runtime import TFLiteModel
from test_metadata import LABELS, detector_frame, image_for, with_metadata

pytestmark = pytest.mark.e2e


def mediapipe(python, tmp_path, kind, task):
    """Write the ``kind`` file, run the MediaPipe client on its image; its result and the kit's LiteRT outputs."""
    model = tmp_path / f"{kind}.tflite"
    model.write_bytes(with_metadata(kind))
    found = run_client(python, model, task, [image_for(kind)], tmp_path)
    assert found["metadata"]["name"] == f"kit {kind}"  # parsed by MediaPipe's own generated schema code
    return found["images"][0], TFLiteModel(model).run(image_for(kind).astype(np.float32))


@pytest.mark.parametrize("kind", ["classify", "classify_int8"])
def test_mediapipe_classifies_like_the_kit(mediapipe_python, tmp_path, kind):
    found, (scores,) = mediapipe(mediapipe_python, tmp_path, kind, "classify")
    categories = found["categories"]
    assert sorted(c["label"] for c in categories) == sorted(LABELS)
    assert categories[0]["label"] == LABELS[int(np.argmax(scores[0]))]
    for category in categories:
        assert category["label"] == LABELS[category["index"]]
        assert abs(category["score"] - scores[0][category["index"]]) < 0.01


def test_mediapipe_detects_like_the_kit_with_label_names(mediapipe_python, tmp_path):
    found, (boxes, classes, scores, count) = mediapipe(mediapipe_python, tmp_path, "detect", "detect")
    detections, n = found["detections"], int(count[0])
    assert n > 0 and len(detections) == n
    size = detector_frame().shape[0]
    for detection, box, label, score in zip(detections, boxes[0] * size, classes[0], scores[0]):
        assert detection["label"] == LABELS[int(label)]
        assert abs(detection["score"] - score) < 1e-4
        ymin, xmin, ymax, xmax = box  # MediaPipe: [x, y, width, height] in whole pixels
        np.testing.assert_allclose(detection["box"], [xmin, ymin, xmax - xmin, ymax - ymin], atol=2)


def test_mediapipe_segments_like_the_kit_with_label_names(mediapipe_python, tmp_path):
    found, (masks,) = mediapipe(mediapipe_python, tmp_path, "segment", "segment")
    assert found["labels"] == LABELS
    assert found["mask_shape"][:2] == list(masks.shape[1:3])
    assert found["class_counts"] == np.bincount(masks[0].argmax(-1).ravel(), minlength=len(LABELS)).tolist()
    np.testing.assert_allclose(found["confidence_means"], masks[0].mean((0, 1)), atol=1e-4)
