"""The demo's detector support: recognizing the four post-processed outputs, filtering detections,
drawing boxes with labels and scores (no TensorFlow involved)."""
import numpy as np

from demo_app.detection import detections, draw_boxes, is_detector
from demo_app.segmentation import class_colors


def test_detector_outputs_are_recognized_by_their_shapes():
    assert is_detector([(1, 10, 4), (1, 10), (1, 10), (1,)])
    assert not is_detector([(1, 10)])
    assert not is_detector([(1, 10, 4), (1, 10), (1, 9), (1,)])
    assert not is_detector([(1, 10, 5), (1, 10), (1, 10), (1,)])


def test_detections_keep_the_valid_ones_above_the_score():
    boxes = np.array([[[0.1, 0.1, 0.5, 0.5], [0.2, 0.2, 1.2, 0.9], [0.0, 0.0, 0.1, 0.1]]], np.float32)
    classes = np.array([[2.0, 0.0, 1.0]], np.float32)
    scores = np.array([[0.9, 0.6, 0.95]], np.float32)  # the third is past the count: garbage
    kept_boxes, kept_classes, kept_scores = detections([boxes, classes, scores, np.array([2.0])], min_score=0.5)
    np.testing.assert_array_equal(kept_classes, [2, 0])
    np.testing.assert_allclose(kept_boxes[1], [0.2, 0.2, 1.0, 0.9])  # clipped to the frame
    assert len(detections([boxes, classes, scores, np.array([2.0])], min_score=0.7)[2]) == 1


def test_boxes_are_drawn_in_their_class_colour_with_a_label():
    frame = np.full((100, 200, 3), 128, np.uint8)
    out = draw_boxes(frame, np.array([[0.2, 0.25, 0.8, 0.75]]), np.array([1]), np.array([0.87]), ["cat", "dog"])
    color = class_colors(3)[2]
    np.testing.assert_array_equal(out[50, 50], color)  # left edge at x = 0.25 * 200
    np.testing.assert_array_equal(out[50, 100], frame[50, 100])  # inside the box: untouched
    assert np.any(out[5:20, 50:100] != 128)  # the label above the box
    assert np.array_equal(frame, np.full((100, 200, 3), 128, np.uint8))  # the input is not modified
