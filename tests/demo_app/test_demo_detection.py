"""The demo's detector support: recognizing the four post-processed outputs, filtering detections,
drawing boxes with labels and scores (no TensorFlow involved)."""
import numpy as np
import pytest

from demo_app.detection import class_indices, detections, draw_boxes, filter_detections, is_detector
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


BOXES = np.array([[0.0, 0.0, 0.1, 0.1], [0.1, 0.1, 0.2, 0.2], [0.2, 0.2, 0.3, 0.3], [0.3, 0.3, 0.4, 0.4]])
CLASSES = np.array([0, 2, 1, 2])
SCORES = np.array([0.6, 0.7, 0.9, 0.8])


def test_filter_detections_by_class_and_count():
    boxes, classes, scores = filter_detections(BOXES, CLASSES, SCORES, allowed_classes=[2])
    np.testing.assert_array_equal(classes, [2, 2])
    np.testing.assert_array_equal(scores, [0.8, 0.7])  # best first
    np.testing.assert_array_equal(boxes, BOXES[[3, 1]])
    boxes, classes, scores = filter_detections(BOXES, CLASSES, SCORES, max_results=2)
    np.testing.assert_array_equal(scores, [0.9, 0.8])
    np.testing.assert_array_equal(classes, [1, 2])
    assert filter_detections(BOXES, CLASSES, SCORES, allowed_classes=[0, 1], max_results=1)[1].tolist() == [1]
    assert len(filter_detections(BOXES, CLASSES, SCORES)[0]) == 4
    assert filter_detections(BOXES, CLASSES, SCORES, allowed_classes=[5])[0].shape == (0, 4)
    empty = filter_detections(np.zeros((0, 4)), np.zeros(0, int), np.zeros(0), allowed_classes=[1], max_results=3)
    assert [a.shape for a in empty] == [(0, 4), (0,), (0,)]
    with pytest.raises(ValueError, match="max_results must be at least 1, got 0"):
        filter_detections(BOXES, CLASSES, SCORES, max_results=0)


def test_class_names_map_to_indices():
    names = ["person", "bicycle", "dog"]
    assert class_indices("dog, person,1", names) == [2, 0, 1]
    assert class_indices(["bicycle", 2], names) == [1, 2]
    assert class_indices("7", []) == [7]
    with pytest.raises(ValueError) as info:
        class_indices("dog,zebra", names)
    assert str(info.value) == "unknown class 'zebra': expected a class index or one of the labels person, bicycle, dog"
    with pytest.raises(ValueError, match=r"unknown class 'cat': expected a class index \(no labels were given\)"):
        class_indices("cat", [])


def test_box_lines_grow_with_the_frame():
    widths = []
    for height, width in [(120, 160), (1080, 1920)]:
        out = draw_boxes(np.zeros((height, width, 3), np.uint8), np.array([[0.25, 0.25, 0.75, 0.75]]),
                         np.array([0]), np.array([0.9]), ["cat"])
        widths.append(int(out[height // 2].any(axis=1)[: width // 2].sum()))  # the left edge, across
    assert widths[0] >= 1 and widths[1] >= 4 * widths[0]
