"""MediaPipe Tasks as a client of the kit's files, in a virtual environment of its own.

MediaPipe depends on opencv-contrib-python, which clashes with the kit's opencv-python-headless in one
environment, so it runs in ``<repo>/.venv-mediapipe`` (made on first use, ``cached_venv``) through
``tests/tflite/mediapipe_client.py``. Used as a fixture, ``mediapipe_python``.
"""
import json
import os
import subprocess

import cv2
import pytest
from cached_venv import cached_venv

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
VENV = os.path.join(REPO, ".venv-mediapipe")
PACKAGE = "mediapipe==1.2.3"  # the version these checks were made with
CLIENT = os.path.join(HERE, "tflite", "mediapipe_client.py")


@pytest.fixture(scope="session")
def mediapipe_python():
    """``<repo>/.venv-mediapipe/bin/python`` with MediaPipe installed (made on first use)."""
    return cached_venv(VENV, (PACKAGE,))


def run_client(python, model, task, images, folder):
    """MediaPipe's results for ``model`` (``classify|detect|segment``) on each RGB image: the client's JSON,
    with one entry per image under ``images``. The images are written as PNGs into ``folder``, in order."""
    paths = []
    os.makedirs(folder, exist_ok=True)
    for index, image in enumerate(images):
        paths.append(os.path.join(folder, f"image_{index:04d}.png"))
        cv2.imwrite(paths[-1], cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    done = subprocess.run([python, CLIENT, os.path.abspath(model), task, *paths], capture_output=True, text=True,
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


def _as_mediapipe_box(box, size):
    """A raw ``[ymin, xmin, ymax, xmax]`` box in [0, 1] (unclipped, as ``TFLite_Detection_PostProcess`` gives it)
    as MediaPipe reports it, in whole pixels, as corners: origin and size truncated to integers, a negative
    origin moved to 0 with the size kept (measured: a box 18.5 px wide at x 30.8 comes back as x 30, width 18;
    one from y -0.15 to 0.49 of 96 px as y 0, height 61-62). Small boxes lose over 10% IoU to that rounding, so
    the kit's box is rounded the same way before the comparison."""
    ymin, xmin, ymax, xmax = (float(v) * size for v in box)
    x, y = max(int(xmin), 0), max(int(ymin), 0)
    return [y, x, y + int(ymax - ymin), x + int(xmax - xmin)]


def _corners(box):
    """MediaPipe's ``[x, y, width, height]`` as ``[ymin, xmin, ymax, xmax]``."""
    x, y, width, height = box
    return [y, x, y + height, x + width]


def assert_mediapipe_agrees_with_the_demo(python, run, task, clip, folder, count=20):
    """MediaPipe Tasks on the run's exported fp32 and int8 files (their metadata alone: no labels or ranges
    given) against the kit's demo on the held-out clip's frames: the same top-1 labels (classify); the same
    detections, IoU >= 0.9, same label, score within 0.02 (detect; of detections whose scores tie, MediaPipe may
    return fewer: measured, 10 of 20 from an int8 file that scored every box alike, so such a tie is allowed and
    counted); category masks agreeing on >= 99% of pixels (segment). Returns the figures, per file."""
    import numpy as np

    from demo_app.app import run_demo
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
            matched = dropped = 0
            for image, result in zip(images, found):
                raw_boxes, raw_classes, raw_scores, count = kit.run(image.astype(np.float32))
                count = int(count.reshape(-1)[0])
                kit_boxes = [(_as_mediapipe_box(box, image.shape[0]), labels[int(label)], float(score))
                             for box, label, score in zip(raw_boxes[0, :count], raw_classes[0, :count],
                                                          raw_scores[0, :count])]
                left = list(kit_boxes)
                for detection in result["detections"]:  # each MediaPipe detection is one of the kit's
                    candidates = [k for k in left
                                  if k[1] == detection["label"] and abs(k[2] - detection["score"]) <= 0.02]
                    twin = max(candidates, key=lambda k: _iou(k[0], _corners(detection["box"])), default=None)
                    assert twin is not None and _iou(twin[0], _corners(detection["box"])) >= 0.9, (
                        quantization, detection, kit_boxes)
                    left.remove(twin)
                    matched += 1
                kept = [k for k in kit_boxes if k not in left]
                for box, label, score in left:  # MediaPipe returns fewer of a set of detections tied in score
                    assert any(k[1] == label and abs(k[2] - score) < 1e-6 for k in kept), (
                        quantization, "a detection MediaPipe did not return", box, label, score, result["detections"])
                dropped += len(left)
            figures[quantization] = {"images": len(images), "detections": matched, "tied_not_returned": dropped}
        else:
            agreement = [np.mean(np.asarray(result["mask"]) == class_map(kit.run(image.astype(np.float32))[0],
                                                                           *image.shape[:2]))
                         for image, result in zip(images, found)]
            assert min(agreement) >= 0.99, (quantization, agreement)
            assert found[0]["labels"] == labels
            figures[quantization] = {"images": len(images), "min_pixel_agreement": float(min(agreement))}
    return figures
