"""Helpers shared by the demo_app tests (a uniquely named module: conftest.py is not importable)."""
import os
import subprocess
import sys

import cv2
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMAGE_SHAPE = (16, 16, 3)
NUM_CLASSES = 3


def random_images(n, seed=0, shape=IMAGE_SHAPE):
    """Images in [0, 255] whose channel means vary a lot, so the classes differ between them."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0, 255, (n, 1, 1, shape[-1]))
    return np.clip(base + rng.normal(0, 30, (n,) + shape), 0, 255).astype(np.float32)


def write_rgb(path, rgb):
    """Write an RGB uint8 array as an image file (OpenCV wants BGR)."""
    assert cv2.imwrite(str(path), cv2.cvtColor(np.asarray(rgb, np.uint8), cv2.COLOR_RGB2BGR))
    return str(path)


def read_rgb(path):
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def run_python(*args, timeout=120):
    """Run ``sys.executable *args`` from the repository root; return the CompletedProcess."""
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)
