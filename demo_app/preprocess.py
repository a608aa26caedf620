"""RGB uint8 frame -> float32 model input: resize, grayscale if needed, scale to the input range.

The kit's own models take RGB pixel values in [0, 255] and normalize inside the model; models
from elsewhere often expect [0, 1] or [-1, 1], chosen here with ``input_range``.
"""
import cv2
import numpy as np

INPUT_RANGES = {"0,255": (0.0, 255.0), "0,1": (0.0, 1.0), "-1,1": (-1.0, 1.0)}


def parse_input_range(input_range):
    """``"0,255"``, ``"0,1"`` or ``"-1,1"`` (or a ``(low, high)`` pair, e.g. from a file's metadata)
    -> ``(low, high)``."""
    if isinstance(input_range, (tuple, list)) and len(input_range) == 2:
        low, high = (float(v) for v in input_range)
        if not high > low:
            raise ValueError(f"input range {input_range!r}: expected low < high")
        return low, high
    key = str(input_range).replace(" ", "")
    if key not in INPUT_RANGES:
        raise ValueError(f"input range {input_range!r} is not supported: expected one of {', '.join(INPUT_RANGES)}")
    return INPUT_RANGES[key]


def normalization(input_range):
    """``(mean, std)`` with ``(pixel - mean) / std`` mapping pixels 0..255 onto ``input_range``, as TFLite
    Model Metadata's NormalizationOptions state it: ``0,255`` -> (0, 1), ``-1,1`` -> (127.5, 127.5)."""
    low, high = parse_input_range(input_range)
    std = 255.0 / (high - low)
    return -low * std, std


def image_size(input_shape):
    """``(height, width, channels)`` of an image model input ``(1, H, W, C)`` with C in {1, 3}."""
    shape = tuple(int(d) for d in input_shape)
    if len(shape) != 4 or shape[3] not in (1, 3):
        raise ValueError(f"model input shape {shape} is not an image: expected (1, height, width, 1 or 3)")
    return shape[1:]


def resize(frame, height, width):
    """Resize ``frame`` to ``height x width``: area averaging when shrinking, bilinear otherwise."""
    h, w = frame.shape[:2]
    if (h, w) == (height, width):
        return frame
    shrink = height <= h and width <= w
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def preprocess(frame, input_shape, input_range="0,255"):
    """An RGB ``HxWx3`` uint8 frame -> a float32 ``(height, width, channels)`` input (no batch axis)."""
    height, width, channels = image_size(input_shape)
    x = resize(np.asarray(frame), height, width)
    if channels == 1:
        x = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY)[..., None]
    return to_input_range(x, input_range)


def to_input_range(pixels, input_range):
    """uint8 pixels (any shape) as float32 in the model's ``input_range`` (``parse_input_range``)."""
    low, high = parse_input_range(input_range)
    return np.asarray(pixels).astype(np.float32) * np.float32((high - low) / 255.0) + np.float32(low)
