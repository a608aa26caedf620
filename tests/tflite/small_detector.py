"""One small SSDLite detector and its ``.tflite`` files, made once per test process on first use (a uniquely
named module: conftest.py is not importable).

The detection export and op profile tests each need a detector file that ends in
``TFLite_Detection_PostProcess``; every conversion goes through a SavedModel and takes 10-20 s, so they share
this one: MobileNetV2 0.35 at 64x64, 3 classes, one extra level, random batch norm (so that it finds boxes)."""
import functools

import numpy as np

from keras_layers.keras_api import keras
from layer_contract import randomize_batch_norm
from models.box_coding import PostProcessing
from models.ssdlite import model_anchors, ssdlite
from tflite.detection_export import convert_detector

SIZE = 64
CLASSES = 3
SETTINGS = PostProcessing(max_detections=5, score_threshold=0.3)


@functools.lru_cache(maxsize=None)
def detector():
    """``(model, anchors)``: the Keras detector and its anchors."""
    keras.utils.set_random_seed(0)
    model = ssdlite("mobilenet_v2", (SIZE, SIZE, 3), alpha=0.35, classes=CLASSES, extra_depths=(32,))
    randomize_batch_norm(model, seed=1)
    return model, model_anchors(model)


@functools.lru_cache(maxsize=None)
def calibration_images():
    """24 images of random pixels in [0, 255] (the detector's input range)."""
    images = np.random.default_rng(0).uniform(0, 255, (24, SIZE, SIZE, 3)).astype(np.float32)
    images.setflags(write=False)  # shared by every caller
    return images


@functools.lru_cache(maxsize=None)
def detector_file(quantization="fp32"):
    """The detector converted with ``SETTINGS`` (int8 and int16x8 calibrated on ``calibration_images``)."""
    model, anchors = detector()
    return convert_detector(model, anchors, quantization, representative_data=calibration_images(), settings=SETTINGS)
