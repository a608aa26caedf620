"""MediaPipe Tasks as a client of the kit's files, in a virtual environment of its own.

MediaPipe depends on opencv-contrib-python, which clashes with the kit's opencv-python-headless in one
environment, so it runs in ``<repo>/.venv-mediapipe`` (made on first use under a lock; a stamp file marks a
finished install) through ``tests/tflite/mediapipe_client.py``. Used as a fixture, ``mediapipe_python``.
"""
import fcntl
import json
import os
import shutil
import subprocess

import cv2
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
VENV = os.path.join(REPO, ".venv-mediapipe")
PACKAGE = "mediapipe==1.2.3"  # the version these checks were made with
STAMP = os.path.join(VENV, ".mediapipe-install")  # holds PACKAGE once the install finished
CLIENT = os.path.join(HERE, "tflite", "mediapipe_client.py")
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


def run_client(python, model, task, images, folder):
    """MediaPipe's results for ``model`` (``classify|detect|segment``) on each RGB image: the client's JSON,
    with one entry per image under ``images``. The images are written as PNGs into ``folder``, in order."""
    paths = []
    os.makedirs(folder, exist_ok=True)
    for index, image in enumerate(images):
        paths.append(os.path.join(folder, f"image_{index:04d}.png"))
        cv2.imwrite(paths[-1], cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    done = subprocess.run([python, CLIENT, str(model), task, *paths], capture_output=True, text=True,
                          timeout=600, env=env, cwd=folder)
    assert done.returncode == 0, f"MediaPipe failed on {model}: {done.stderr.strip()[-2000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def clip_frames(clip, size, count):
    """The first ``count`` frames of video ``clip`` resized to ``size`` x ``size`` as the demo resizes frames
    for the model (``demo_app.preprocess.resize``), so MediaPipe and the demo see the same pixels."""
    from demo_app.preprocess import resize

    capture, frames = cv2.VideoCapture(str(clip)), []
    while len(frames) < count:
        ok, bgr = capture.read()
        if not ok:
            break
        frames.append(resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), size, size))
    capture.release()
    assert frames, f"no frames in {clip}"
    return frames


def _iou(a, b):
    """IoU of two [ymin, xmin, ymax, xmax] boxes."""
    height = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    width = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - height * width
    return height * width / union if union > 0 else 0.0


def assert_mediapipe_agrees_with_the_demo(python, run, task, clip, folder, count=20):
    """MediaPipe Tasks on the run's exported fp32 and int8 files (their metadata alone: no labels or ranges
    given) against the kit's demo on the held-out clip's frames: the same top-1 labels (classify); the same
    detections, IoU >= 0.9, same label, score within 0.02 (detect); category masks agreeing on >= 99% of
    pixels (segment). Returns the figures, per file."""
    import numpy as np

    from demo_app.app import run_demo
    from demo_app.detection import detections
    from demo_app.runtime import TFLiteModel
    from demo_app.segmentation import class_map

    labels = (run / "labels.txt").read_text().split()
    figures = {}
    for quantization in ("fp32", "int8"):
        model = run / f"model_{quantization}.tflite"
        kit = TFLiteModel(str(model))
        images = clip_frames(clip, kit.input_shape[1], count)
        images_folder = os.path.join(folder, quantization)
        found = run_client(python, model, task, images, images_folder)["images"]
        if task == "classify":
            demo = run_demo(str(model), images_folder, headless=True, quiet=True)["predictions"]
            assert [r["categories"][0]["label"] for r in found] == [p[2] for p in demo], quantization
            figures[quantization] = {"images": len(images), "top1_agreement": 1.0}
        elif task == "detect":
            matched = 0
            for image, result in zip(images, found):
                boxes, classes, scores = detections(kit.run(image.astype(np.float32)), min_score=0.0)
                theirs = sorted(result["detections"], key=lambda d: -d["score"])
                assert len(theirs) == len(scores), (quantization, len(theirs), len(scores))
                size = image.shape[0]
                for box, label, score, detection in zip(boxes, classes, scores, theirs):
                    x, y, width, height = detection["box"]
                    box_theirs = [y / size, x / size, (y + height) / size, (x + width) / size]
                    assert detection["label"] == labels[label] and abs(detection["score"] - score) <= 0.02
                    assert _iou(box, box_theirs) >= 0.9, (quantization, box, box_theirs)
                    matched += 1
            figures[quantization] = {"images": len(images), "detections": matched}
        else:
            agreement = [np.mean(np.asarray(result["mask"]) == class_map(kit.run(image.astype(np.float32))[0],
                                                                           *image.shape[:2]))
                         for image, result in zip(images, found)]
            assert min(agreement) >= 0.99, (quantization, agreement)
            assert found[0]["labels"] == labels
            figures[quantization] = {"images": len(images), "min_pixel_agreement": float(min(agreement))}
    return figures
