"""Box encoding and anchor matching of SSD (Liu et al., "SSD: Single Shot MultiBox Detector",
ECCV 2016), in the form ``TFLite_Detection_PostProcess`` decodes.

A ground-truth box ``(yc, xc, h, w)`` is encoded relative to its anchor ``(ya, xa, ha, wa)`` as

    t_y = s_y (yc - ya) / ha    t_x = s_x (xc - xa) / wa    t_h = s_h log(h / ha)    t_w = s_w log(w / wa)

with the scales ``(10, 10, 5, 5)`` (SSD's "variances" 0.1 and 0.2). Matching: every anchor
whose best IoU with a ground-truth box is at least 0.5 is a positive for that box, and every
ground-truth box also claims the anchor it overlaps most (so no object goes unmatched); the
rest are background. IoU comes from keras-cv. The functions take TensorFlow tensors, so they
run inside a ``tf.data`` pipeline; boxes are normalized ``[ymin, xmin, ymax, xmax]``.
"""
from typing import NamedTuple

import tensorflow as tf

BOX_SCALES = (10.0, 10.0, 5.0, 5.0)  # y, x, h, w
MATCH_THRESHOLD = 0.5
_EPSILON = 1e-8


def corners_to_center(boxes):
    """``[ymin, xmin, ymax, xmax]`` -> ``[yc, xc, h, w]``."""
    return tf.concat([(boxes[..., :2] + boxes[..., 2:]) / 2, boxes[..., 2:] - boxes[..., :2]], -1)


def center_to_corners(boxes):
    """``[yc, xc, h, w]`` -> ``[ymin, xmin, ymax, xmax]``."""
    half = boxes[..., 2:] / 2
    return tf.concat([boxes[..., :2] - half, boxes[..., :2] + half], -1)


def encode(boxes, anchors, scales=BOX_SCALES):
    """Encode corner ``boxes`` against center-form ``anchors`` (same leading shape, or broadcast)."""
    boxes = corners_to_center(tf.convert_to_tensor(boxes, tf.float32))
    anchors = tf.convert_to_tensor(anchors, tf.float32)
    scales = tf.constant(scales, tf.float32)
    offsets = (boxes[..., :2] - anchors[..., :2]) / anchors[..., 2:]
    sizes = tf.math.log(tf.maximum(boxes[..., 2:], _EPSILON) / anchors[..., 2:])
    return tf.concat([offsets, sizes], -1) * scales


def decode(encoded, anchors, scales=BOX_SCALES):
    """Inverse of ``encode``: encoded offsets -> corner boxes."""
    encoded = tf.convert_to_tensor(encoded, tf.float32) / tf.constant(scales, tf.float32)
    anchors = tf.convert_to_tensor(anchors, tf.float32)
    centers = anchors[..., :2] + encoded[..., :2] * anchors[..., 2:]
    sizes = tf.exp(encoded[..., 2:]) * anchors[..., 2:]
    return center_to_corners(tf.concat([centers, sizes], -1))


def match(anchors, boxes, classes, threshold=MATCH_THRESHOLD, scales=BOX_SCALES):
    """Training targets of one image.

    Args:
        anchors: ``(A, 4)`` center-form default boxes.
        boxes: ``(M, 4)`` ground-truth corner boxes; rows whose class is negative are padding.
        classes: ``(M,)`` int 0-based classes, ``-1`` for padding.
    Returns:
        ``(box_targets (A, 4), class_targets (A,))``: encoded boxes of the matched ground
        truth, and ``class + 1`` for positives, ``0`` (background) for the rest.
    """
    from keras_cv import bounding_box

    anchors = tf.convert_to_tensor(anchors, tf.float32)
    boxes = tf.reshape(tf.convert_to_tensor(boxes, tf.float32), (-1, 4))
    classes = tf.reshape(tf.cast(classes, tf.int32), (-1,))
    # One padding column keeps the arg-max defined when an image has no objects.
    boxes = tf.concat([boxes, tf.zeros((1, 4))], 0)
    classes = tf.concat([classes, [-1]], 0)
    valid = classes >= 0
    iou = bounding_box.compute_iou(center_to_corners(anchors), boxes, bounding_box_format="yxyx")
    iou = tf.where(valid[None, :], tf.cast(iou, tf.float32), -1.0)
    best_box = tf.argmax(iou, axis=1, output_type=tf.int32)
    best_iou = tf.reduce_max(iou, axis=1)
    # Each real ground-truth box claims its best anchor.
    claimed = tf.boolean_mask(tf.argmax(iou, axis=0, output_type=tf.int32), valid)[:, None]
    owners = tf.boolean_mask(tf.range(tf.shape(boxes)[0], dtype=tf.int32), valid)
    best_box = tf.tensor_scatter_nd_update(best_box, claimed, owners)
    best_iou = tf.tensor_scatter_nd_update(best_iou, claimed, tf.ones_like(owners, tf.float32))
    positive = best_iou >= threshold
    class_targets = tf.where(positive, tf.gather(classes, best_box) + 1, 0)
    box_targets = encode(tf.gather(boxes, best_box), anchors, scales)
    box_targets = tf.where(positive[:, None], box_targets, 0.0)
    return box_targets, class_targets


class PostProcessing(NamedTuple):
    """Settings of the detection post-processing (``TFLite_Detection_PostProcess``'s attributes)."""

    max_detections: int = 20
    score_threshold: float = 0.05
    iou_threshold: float = 0.6


def postprocess(outputs, anchors, settings=PostProcessing()):
    """Detections of one image from raw SSD outputs ``(A, 4 + C + 1)``, as the TFLite op makes them.

    Decode the boxes, take each anchor's best non-background class (softmax score), and run
    class-agnostic non-maximum suppression. Returns numpy ``boxes (D, 4)``, ``classes (D,)``
    (0-based), ``scores (D,)``, best first.
    """
    outputs = tf.convert_to_tensor(outputs, tf.float32)
    boxes = decode(outputs[:, :4], anchors)
    probabilities = tf.nn.softmax(outputs[:, 4:])[:, 1:]
    scores, classes = tf.reduce_max(probabilities, -1), tf.argmax(probabilities, -1, output_type=tf.int32)
    keep = tf.image.non_max_suppression(boxes, scores, settings.max_detections, settings.iou_threshold,
                                        settings.score_threshold)
    return tuple(tf.gather(t, keep).numpy() for t in (boxes, classes, scores))
