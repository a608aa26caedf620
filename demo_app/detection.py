"""Detector output on the device: the four outputs of ``TFLite_Detection_PostProcess`` and boxes
drawn with labels and scores.

SSD-style ``.tflite`` detectors (the kit's, and those that ship for phones) end in that op and
output boxes ``(1, D, 4)`` normalized ``[ymin, xmin, ymax, xmax]``, classes ``(1, D)``, scores
``(1, D)`` and the number of valid detections ``(1,)``, in that order.
"""
import cv2
import numpy as np

from demo_app.overlay import FONT, font_scale
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


def draw_boxes(frame, boxes, classes, scores, names):
    """A copy of the RGB ``frame`` with each box outlined in its class colour and labelled ``name score``."""
    out = np.ascontiguousarray(frame).copy()
    height, width = out.shape[:2]
    colors = class_colors(max(len(names), int(classes.max(initial=0)) + 1) + 1)[1:]
    scale = font_scale(out)
    thickness = max(1, round(scale * 2))
    for box, label, score in zip(boxes, classes, scores):
        y0, x0, y1, x1 = (np.asarray(box) * [height, width, height, width]).round().astype(int)
        color = tuple(int(c) for c in colors[label])
        cv2.rectangle(out, (x0, y0), (x1, y1), color, thickness)
        text = f"{names[label] if label < len(names) else label} {score:.2f}"
        (text_w, text_h), base = cv2.getTextSize(text, FONT, scale, 1)
        top = max(y0 - text_h - base, 0)
        cv2.rectangle(out, (x0, top), (x0 + text_w, top + text_h + base), color, -1)
        cv2.putText(out, text, (x0, top + text_h), FONT, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return out
