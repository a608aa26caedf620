"""Detector output on the device: the four outputs of ``TFLite_Detection_PostProcess`` and boxes
drawn with labels and scores.

SSD-style ``.tflite`` detectors (the kit's, and those that ship for phones) end in that op and
output boxes ``(1, D, 4)`` normalized ``[ymin, xmin, ymax, xmax]``, classes ``(1, D)``, scores
``(1, D)`` and the number of valid detections ``(1,)``, in that order.
"""
import cv2
import numpy as np

from demo_app.overlay import FONT, font_scale, line_width, text_thickness
from demo_app.segmentation import class_colors

MIN_SCORE = 0.5


def is_detector(output_shapes):
    """True for the four outputs of a post-processed SSD: ``(1, D, 4), (1, D), (1, D), (1,)``."""
    if len(output_shapes) != 4:
        return False
    boxes, classes, scores, count = (tuple(s) for s in output_shapes)
    return len(boxes) == 3 and boxes[2] == 4 and classes == scores == boxes[:2] and int(np.prod(count)) == 1


def detections(outputs, min_score=MIN_SCORE):
    """``(boxes (k, 4), classes (k,), scores (k,))`` of the valid detections scoring at least ``min_score``."""
    boxes, classes, scores, count = (np.asarray(o) for o in outputs)
    n = int(min(count.reshape(-1)[0], scores.shape[-1]))
    boxes, classes, scores = boxes.reshape(-1, 4)[:n], classes.reshape(-1)[:n], scores.reshape(-1)[:n]
    keep = scores >= min_score
    return np.clip(boxes[keep], 0.0, 1.0), np.round(classes[keep]).astype(np.int64), scores[keep]


def class_indices(allowed, names):
    """Class indices of ``allowed``: label names (from ``names``) or indices, as a list or one
    comma-separated string such as ``"person,dog,3"``."""
    items = allowed.split(",") if isinstance(allowed, str) else allowed
    indices = []
    for item in items:
        text = str(item).strip()
        if text in names:
            indices.append(names.index(text))
        elif text.isdigit():
            indices.append(int(text))
        else:
            expected = f"or one of the labels {', '.join(names)}" if names else "(no labels were given)"
            raise ValueError(f"unknown class {text!r}: expected a class index {expected}")
    return indices


def filter_detections(boxes, classes, scores, allowed_classes=None, max_results=None):
    """Keep the detections of ``allowed_classes`` (class indices; ``None``: all), at most the
    ``max_results`` best (``None``: all), best first: ``(boxes (k, 4), classes (k,), scores (k,))``."""
    if max_results is not None and int(max_results) < 1:
        raise ValueError(f"max_results must be at least 1, got {max_results}")
    boxes, classes, scores = np.asarray(boxes).reshape(-1, 4), np.asarray(classes), np.asarray(scores)
    keep = np.flatnonzero(np.isin(classes, list(allowed_classes))) if allowed_classes is not None else \
        np.arange(len(scores))
    keep = keep[np.argsort(-scores[keep], kind="stable")][:max_results]
    return boxes[keep], classes[keep], scores[keep]


def draw_boxes(frame, boxes, classes, scores, names):
    """A copy of the RGB ``frame`` with each box outlined in its class colour and labelled ``name score``;
    line widths and text grow with the frame."""
    out = np.ascontiguousarray(frame).copy()
    height, width = out.shape[:2]
    colors = class_colors(max(len(names), int(classes.max(initial=0)) + 1) + 1)[1:]
    scale, thickness = font_scale(out), line_width(out)
    text_stroke, pad = text_thickness(scale), max(1, round(2 * scale))
    for box, label, score in zip(boxes, classes, scores):
        y0, x0, y1, x1 = (np.asarray(box) * [height, width, height, width]).round().astype(int)
        color = tuple(int(c) for c in colors[label])
        cv2.rectangle(out, (x0, y0), (x1, y1), color, thickness)
        text = f"{names[label] if label < len(names) else label} {score:.2f}"
        (text_w, text_h), base = cv2.getTextSize(text, FONT, scale, text_stroke)
        left = max(0, min(x0, width - text_w - 2 * pad))  # keep the label inside the frame
        top = max(y0 - text_h - base - 2 * pad, 0)
        cv2.rectangle(out, (left, top), (left + text_w + 2 * pad, top + text_h + base + 2 * pad), color, -1)
        cv2.putText(out, text, (left + pad, top + pad + text_h), FONT, scale, (0, 0, 0), text_stroke, cv2.LINE_AA)
    return out
