import numpy as np
import pytest
from PIL import Image

from models.data import load_dataset, load_digits_data, load_image_folder, sample_photos


def test_digits_splits_are_disjoint_stratified_and_deterministic():
    data = load_digits_data(image_size=16, seed=3)
    assert data.info is None
    sizes = [len(split[1]) for split in data[:3]]
    assert sizes == [1257, 270, 270]  # scikit-learn's train_test_split floors 0.7 * 1797, then halves the rest
    images, labels = data.train
    assert images.shape[1:] == (16, 16, 3) and images.dtype == np.uint8 and images.max() > 200
    assert np.all(images[..., 0] == images[..., 2])  # grey digits in RGB
    for split in (data.validation, data.test):
        assert np.bincount(split[1], minlength=10).min() >= 26  # ~27 per class
    again = load_digits_data(image_size=16, seed=3)
    np.testing.assert_array_equal(again.test[0], data.test[0])
    other = load_digits_data(image_size=16, seed=4)
    assert not np.array_equal(other.test[1], data.test[1])
    # The 1,797 digits are all different (as scikit-learn's 8x8 arrays): 1,797 different images in
    # the splits means every digit is in exactly one split.
    from sklearn.datasets import load_digits

    assert len({image.tobytes() for image in load_digits().images}) == 1797
    assert len({image.tobytes() for split in data[:3] for image in split[0]}) == 1797


def test_digits_resizing_keeps_the_8x8_content():
    from sklearn.datasets import load_digits

    data = load_digits_data(image_size=8, seed=0, fractions=(0.7, 0.15, 0.15))
    reference = np.round(load_digits().images * 255 / 16).astype(np.uint8)
    stored = {tuple(image.ravel()) for image in reference}
    assert all(tuple(image[..., 0].ravel()) in stored for image in data.test[0])


def make_folder(root, classes=("cat", "dog"), per_class=10, size=20):
    rng = np.random.default_rng(0)
    for index, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.full((size, size, 3), 40 + 150 * index, np.uint8) + rng.integers(0, 20, (size, size, 3),
                                                                                         dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def test_image_folder_loader(tmp_path):
    data = load_image_folder(str(make_folder(tmp_path / "photos")), image_size=12, seed=0)
    assert data.class_names == ("cat", "dog")
    images = np.concatenate([split[0] for split in data[:3]])
    labels = np.concatenate([split[1] for split in data[:3]])
    assert images.shape == (20, 12, 12, 3) and images.dtype == np.uint8
    # Class "dog" images are brighter: labels follow the folder names.
    assert images[labels == 1].mean() > images[labels == 0].mean() + 100
    assert data.info["skipped_count"] == 0 and data.info["split"] == "stratified 70/15/15"
    assert data.info["class_counts"]["cat"] == {"train": 7, "validation": 1, "test": 2}


def test_load_dataset_errors(tmp_path):
    with pytest.raises(ValueError, match="neither a built-in data set"):
        load_dataset("imagenet", 32)
    with pytest.raises(FileNotFoundError, match="image folder not found"):
        load_image_folder(str(tmp_path / "missing"))
    (tmp_path / "one" / "only").mkdir(parents=True)
    with pytest.raises(ValueError, match="at least two class"):
        load_image_folder(str(make_folder(tmp_path / "one2", classes=("only",))))


def test_sample_photos_are_real_deterministic_crops():
    photos = sample_photos(image_size=40, count=6, seed=1)
    assert photos.shape == (6, 40, 40, 3) and photos.dtype == np.uint8
    np.testing.assert_array_equal(photos, sample_photos(image_size=40, count=6, seed=1))
    assert photos.std() > 20  # real image content, not a flat fill


def test_shapes_classification_labels_are_the_drawn_shape():
    from models.shapes import make_shapes

    data = load_dataset("shapes", 24, seed=1)
    assert data.class_names == ("circle", "square", "triangle")
    assert [len(split[1]) for split in data[:3]] == [1200, 200, 200]
    assert np.bincount(data.train[1], minlength=3).min() > 300
    # The labels are the class of the one shape in each image's segmentation mask.
    shapes = make_shapes(10, 24, seed=1, max_objects=1)
    masks = [np.unique(mask[mask > 0]) for mask in shapes.masks]
    assert all(len(m) == 1 for m in masks)
    np.testing.assert_array_equal([m[0] - 1 for m in masks], data.train[1][:10])
    np.testing.assert_array_equal(np.round(shapes.images * 255).astype(np.uint8), data.train[0][:10])
    with pytest.raises(ValueError, match="image_size must be >= 16"):
        load_dataset("shapes", 8)
