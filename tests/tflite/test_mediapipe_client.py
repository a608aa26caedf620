"""MediaPipe Tasks as the client of the kit's metadata: its ImageClassifier, ObjectDetector and ImageSegmenter
load the files ``tflite.metadata`` wrote and agree with the kit's own LiteRT run on the same image.

MediaPipe depends on opencv-contrib-python, which clashes with the kit's opencv-python-headless, so it runs
in a virtual environment of its own (``<repo>/.venv-mediapipe``, made on first use; a stamp file marks a
finished install) through ``mediapipe_client.py``. Images have the model's input size, so MediaPipe's resize
is the identity and both sides see the same pixels.
"""
import fcntl
import json
import os
import shutil
import subprocess

import cv2
import numpy as np
import pytest

from demo_app.runtime import TFLiteModel
from test_metadata import LABELS, detector_frame, image_for, with_metadata

pytestmark = pytest.mark.e2e

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
VENV = os.path.join(REPO, ".venv-mediapipe")
PACKAGE = "mediapipe==1.2.3"  # the version these checks were made with
STAMP = os.path.join(VENV, ".mediapipe-install")  # holds PACKAGE once the install finished
CLIENT = os.path.join(HERE, "mediapipe_client.py")
INSTALL_TIMEOUT_S = 900


def _install_step(args, what):
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{what} took over {INSTALL_TIMEOUT_S} s (is the package index reachable?)")
    if done.returncode:
        pytest.fail(f"{what} failed with exit code {done.returncode} (the MediaPipe checks need {PACKAGE} from "
                    f"the package index):\n{(done.stdout + done.stderr)[-3000:]}")


def _stamped():
    if not os.path.isfile(STAMP):
        return False
    with open(STAMP) as f:
        return f.read().strip() == PACKAGE


@pytest.fixture(scope="session")
def mediapipe_python():
    """``<repo>/.venv-mediapipe/bin/python`` with MediaPipe installed; made (under a lock) when not stamped."""
    python = os.path.join(VENV, "bin", "python")
    os.makedirs(VENV, exist_ok=True)
    with open(os.path.join(VENV, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.access(python, os.X_OK) and _stamped():
            return python
        base = shutil.which("python3")
        if base is None:
            pytest.fail("no python3 on PATH to make the MediaPipe venv with")
        _install_step([base, "-m", "venv", VENV], f"python3 -m venv {VENV}")
        _install_step([python, "-m", "pip", "install", "-q", PACKAGE], f"pip install {PACKAGE} into {VENV}")
        with open(STAMP, "w") as f:
            f.write(PACKAGE + "\n")
    return python


def mediapipe(python, tmp_path, kind, task):
    """Write the ``kind`` file and its image, run the MediaPipe client on them; its JSON and the model path."""
    model, image = tmp_path / f"{kind}.tflite", tmp_path / f"{kind}.png"
    model.write_bytes(with_metadata(kind))
    cv2.imwrite(str(image), cv2.cvtColor(image_for(kind), cv2.COLOR_RGB2BGR))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    done = subprocess.run([python, CLIENT, str(model), task, str(image)], capture_output=True, text=True,
                          timeout=300, env=env, cwd=tmp_path)
    assert done.returncode == 0, f"MediaPipe failed on the {kind} file: {done.stderr.strip()[-2000:]}"
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["metadata"]["name"] == f"kit {kind}"  # parsed by MediaPipe's own generated schema code
    return found, TFLiteModel(model).run(image_for(kind).astype(np.float32))


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
