import numpy as np
import pytest

from models.shapes import SHAPE_CLASSES, ShapesData, make_shapes, shapes_splits


@pytest.fixture(scope="module")
def shapes():
    return make_shapes(40, image_size=(48, 64), seed=5)


def test_fields_follow_the_contract(shapes):
    assert isinstance(shapes, ShapesData) and shapes.class_names == SHAPE_CLASSES
    assert shapes.images.shape == (40, 48, 64, 3) and shapes.images.dtype == np.float32
    assert 0.0 <= shapes.images.min() and shapes.images.max() <= 1.0
    assert shapes.masks.shape == (40, 48, 64) and shapes.masks.dtype == np.uint8
    assert len(shapes.boxes) == len(shapes.classes) == 40
    for boxes, classes in zip(shapes.boxes, shapes.classes):
        assert boxes.dtype == np.float32 and boxes.shape == (len(classes), 4) and len(classes) >= 1
        assert classes.dtype == np.int32 and set(classes) <= set(range(len(SHAPE_CLASSES)))
        assert np.all((boxes >= 0) & (boxes <= 1)) and np.all(boxes[:, 2:] > boxes[:, :2])
    every_class = np.concatenate(shapes.classes)
    assert np.bincount(every_class, minlength=3).min() >= 10  # all classes occur


def test_boxes_are_the_tight_boxes_of_the_masks_and_do_not_overlap(shapes):
    height, width = shapes.masks.shape[1:]
    for mask, boxes, classes in zip(shapes.masks, shapes.boxes, shapes.classes):
        covered = np.zeros_like(mask, bool)
        for box, label in zip(boxes, classes):
            y0, x0, y1, x1 = np.round(box * [height, width, height, width]).astype(int)
            inside = mask[y0:y1, x0:x1]
            assert np.all(np.isin(inside, [0, label + 1]))  # no other shape inside the box
            assert np.all(inside[[0, -1], :].any(axis=1) == [True, True])  # tight: top and bottom rows touched
            assert np.all(inside[:, [0, -1]].any(axis=0) == [True, True])
            assert not covered[y0:y1, x0:x1].any()
            covered[y0:y1, x0:x1] = True
        assert not mask[~covered].any()  # every labelled pixel belongs to a box


def test_shapes_are_recognizable_geometry(shapes):
    """The fill ratio of a shape in its box: circle pi/4, axis-free square 0.5..1, triangle <= 0.5ish."""
    height, width = shapes.masks.shape[1:]
    ratios = {c: [] for c in range(3)}
    for mask, boxes, classes in zip(shapes.masks, shapes.boxes, shapes.classes):
        for box, label in zip(boxes, classes):
            y0, x0, y1, x1 = np.round(box * [height, width, height, width]).astype(int)
            if min(y1 - y0, x1 - x0) >= 10:
                ratios[label].append(np.mean(mask[y0:y1, x0:x1] == label + 1))
    assert abs(np.median(ratios[0]) - np.pi / 4) < 0.06
    assert 0.5 <= np.median(ratios[1]) <= 1.0
    assert np.median(ratios[2]) < np.median(ratios[1]) and np.median(ratios[2]) < 0.65


def test_shapes_stand_out_from_their_background(shapes):
    from scipy.ndimage import binary_dilation

    for image, mask in zip(shapes.images, shapes.masks):
        for label in set(np.unique(mask)) - {0}:
            shape = mask == label
            ring = binary_dilation(shape, iterations=2) & (mask == 0)
            contrast = np.linalg.norm(image[shape].mean(axis=0) - image[ring].mean(axis=0))
            assert contrast > 0.2


def test_deterministic_prefix_property_and_disjoint_splits():
    first = make_shapes(6, image_size=32, seed=1)
    again = make_shapes(4, image_size=32, seed=1)
    np.testing.assert_array_equal(first.images[:4], again.images)
    np.testing.assert_array_equal(first.masks[:4], again.masks)
    other = make_shapes(4, image_size=32, seed=2)
    assert not np.array_equal(other.images, again.images)
    splits = shapes_splits(32, seed=1, train=4, validation=1, test=1)
    assert [len(splits[k].images) for k in ("train", "validation", "test")] == [4, 1, 1]
    np.testing.assert_array_equal(splits["train"].images, again.images)
    np.testing.assert_array_equal(splits["test"].images[0], first.images[5])


def test_no_clutter_keeps_the_background_smooth_and_subset_selects():
    plain = make_shapes(3, image_size=32, seed=0, clutter=False, max_objects=1)
    assert all(len(c) == 1 for c in plain.classes)
    part = plain.subset([2, 0])
    np.testing.assert_array_equal(part.masks[0], plain.masks[2])
    assert part.boxes[1] is plain.boxes[0]
    assert plain._replace(masks=None).subset([1]).masks is None  # detection sets carry no masks


@pytest.mark.parametrize("kwargs, message", [
    ({"count": 2, "image_size": 8}, "image_size >= 16"),
    ({"count": 2, "max_objects": 0}, "max_objects >= 1"),
    ({"count": 2, "min_size": 0.5, "max_size": 0.2}, "min_size <= max_size"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_shapes(**kwargs)
