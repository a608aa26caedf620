import re

import numpy as np
import pytest
from PIL import Image

from models.segmentation_data import load_mask_folder, load_segmentation_data, regions
from models.segmentation_train import confusion_matrix, mean_iou, segmentation_dataset
from models.shapes import make_shapes


def test_mean_iou_against_scikit_learn():
    from sklearn.metrics import jaccard_score

    rng = np.random.default_rng(0)
    truth = rng.integers(0, 4, (3, 20, 20))
    predicted = np.where(rng.random(truth.shape) < 0.7, truth, rng.integers(0, 4, truth.shape))
    scores = mean_iou(predicted, truth, 4)
    expected = jaccard_score(truth.ravel(), predicted.ravel(), average=None, labels=range(4))
    np.testing.assert_allclose(scores["class_iou"], expected)
    assert scores["miou"] == pytest.approx(expected.mean())


def test_mean_iou_skips_absent_classes_and_rejects_bad_masks():
    truth = np.array([[0, 0, 1, 1]])
    assert mean_iou(truth, truth, 5)["miou"] == 1.0  # classes 2..4 absent from both: not counted
    scores = mean_iou(np.array([[0, 1, 1, 1]]), truth, 3)
    assert scores["class_iou"][:2] == [0.5, 2 / 3] and np.isnan(scores["class_iou"][2])
    assert confusion_matrix([0, 1], [1, 1], 2).tolist() == [[0, 0], [1, 1]]
    with pytest.raises(ValueError, match="differ in size"):
        mean_iou(np.zeros(3), np.zeros(4), 2)
    with pytest.raises(ValueError, match="below the 2 classes"):
        mean_iou(np.array([2]), np.array([1]), 2)


def test_augmentation_moves_image_and_mask_together():
    shapes = make_shapes(4, image_size=32, seed=2)
    batches = list(segmentation_dataset(shapes.images, shapes.masks, batch_size=4, seed=1, augment=True))
    images, masks = (np.asarray(t) for t in batches[0])
    assert images.shape == (4, 32, 32, 3) and masks.dtype == np.uint8
    for image, mask in zip(images, masks):
        # the pair is one of the eight flips/turns of an original pair, the same one for both
        matches = [(i, k, flip) for i in range(4) for k in range(4) for flip in (False, True)
                   if np.array_equal(np.rot90(shapes.masks[i][:, ::-1] if flip else shapes.masks[i], k), mask)
                   and np.allclose(np.rot90(shapes.images[i][:, ::-1] if flip else shapes.images[i], k), image)]
        assert matches, "image and mask were transformed differently"


def test_mask_folder_loader(tmp_path):
    shapes = make_shapes(10, image_size=(24, 32), seed=3)
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for i in range(10):
        Image.fromarray(np.round(shapes.images[i] * 255).astype(np.uint8)).save(tmp_path / "images" / f"{i}.png")
        Image.fromarray(shapes.masks[i]).save(tmp_path / "masks" / f"{i}.png")
    (tmp_path / "classes.txt").write_text("circle\nsquare\ntriangle\n")
    splits = load_segmentation_data(str(tmp_path), (24, 32), seed=0)
    sizes = [len(splits[k].images) for k in ("train", "validation", "test")]
    assert sizes[0] == 7 and min(sizes) >= 1 and sum(sizes) == 10
    loaded = {splits[k].images[j].tobytes(): splits[k].masks[j] for k in splits for j in range(len(splits[k].images))}
    for i in range(10):
        key = (np.round(shapes.images[i] * 255).astype(np.uint8) / np.float32(255)).astype(np.float32).tobytes()
        np.testing.assert_array_equal(loaded[key], shapes.masks[i])
    assert splits["train"].class_names == ("circle", "square", "triangle")
    boxes, classes = regions(shapes.masks[0], 3)
    order, expected = np.lexsort(boxes.T[::-1]), np.lexsort(shapes.boxes[0].T[::-1])
    np.testing.assert_allclose(boxes[order], shapes.boxes[0][expected])
    np.testing.assert_array_equal(classes[order], shapes.classes[0][expected])


def test_mask_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="needs sub-folders images/ and masks/"):
        load_mask_folder(str(tmp_path))
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "images" / "a.png")
    with pytest.raises(FileNotFoundError, match="has no mask a.png"):
        load_mask_folder(str(tmp_path))
    with pytest.raises(ValueError, match="neither 'shapes' nor a folder"):
        load_segmentation_data("voc", 32)


def mask_folder(root, count=6):
    """``count`` 16x16 images with masks of classes 1 and 2, named in classes.txt."""
    (root / "images").mkdir()
    (root / "masks").mkdir()
    for i in range(count):
        Image.fromarray(np.full((16, 16, 3), 100, np.uint8)).save(root / "images" / f"{i}.png")
        Image.fromarray(np.repeat(np.arange(3, dtype=np.uint8), [6, 5, 5])[:, None].repeat(16, 1)).save(
            root / "masks" / f"{i}.png")
    (root / "classes.txt").write_text("circle\nsquare\n")


@pytest.mark.parametrize("change, message", [
    (lambda root: Image.new("L", (16, 12)).save(root / "masks" / "0.png"),
     "masks/0.png is 16x12 but its image"),
    (lambda root: Image.fromarray(np.full((16, 16), 3, np.uint8)).save(root / "masks" / "0.png"),
     "masks/0.png holds class id 3: expected ids 0 (background) to 2 (the classes named in classes.txt)"),
    (lambda root: Image.fromarray(np.full((16, 16), 258, np.uint16)).save(root / "masks" / "0.png"),
     "holds class id 258"),  # a 16-bit id that uint8 would wrap to 2
    (lambda root: Image.new("RGB", (16, 16)).save(root / "masks" / "0.png"), "has mode RGB: expected a single-channel"),
    (lambda root: Image.new("F", (16, 16)).save(root / "masks" / "0.png", format="TIFF"), "has mode F"),
    (lambda root: (root / "masks" / "0.png").write_bytes(b"\x89PNG broken"), "masks/0.png: cannot read"),
    (lambda root: (root / "images" / "0.png").write_bytes(b""), "images/0.png: cannot read: empty file"),
    (lambda root: (root / "classes.txt").write_text("\n"), "classes.txt is empty"),
    (lambda root: (root / "classes.txt").write_bytes(b"\xff\xfe\x80"), "classes.txt is not UTF-8 text"),
    (lambda root: [(root / sub / f"{i}.png").unlink() for i in range(3) for sub in ("images", "masks")],
     "has 3 image(s): too few to split 70/15/15"),
])
def test_mask_folder_errors_are_one_line_naming_the_file(tmp_path, change, message):
    mask_folder(tmp_path)
    load_mask_folder(str(tmp_path), 16)
    change(tmp_path)
    with pytest.raises(ValueError, match=re.escape(message)):
        load_mask_folder(str(tmp_path), 16)
