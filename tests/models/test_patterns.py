import functools
import inspect

import numpy as np
import pytest

from models.data import DATASETS, default_augmentations, load_dataset
from models.input_pipeline import DIGIT_AUGMENTATIONS
from models.patterns import PATTERN_CLASSES, PATTERN_IMAGES, load_patterns_data, make_patterns

SMALL = {"train_images": 40, "validation_images": 20, "test_images": 30}


@pytest.fixture(scope="module")
def data():
    return load_patterns_data(24, seed=1, **SMALL)


def test_arrays_labels_and_exact_balance(data):
    assert data.class_names == PATTERN_CLASSES and len(set(PATTERN_CLASSES)) == 10
    for split, size in zip(data[:3], SMALL.values()):
        assert split.images.shape == (size, 24, 24, 3) and split.images.dtype == np.uint8
        assert split.labels.dtype == np.int64
        np.testing.assert_array_equal(np.bincount(split.labels, minlength=10), np.full(10, size // 10))
        assert all(np.ptp(image) > 60 for image in split.images)  # something is drawn on every image
    assert PATTERN_IMAGES["test"] >= 5000  # the experiments' held-out split (one image = 0.02 points)
    defaults = inspect.signature(load_patterns_data).parameters
    assert {name: defaults[f"{name}_images"].default for name in PATTERN_IMAGES} == PATTERN_IMAGES


def test_deterministic_for_a_seed_and_different_across_seeds(data):
    again = load_patterns_data(24, seed=1, **SMALL)
    for split, other in zip(data[:3], again[:3]):
        assert split.images.tobytes() == other.images.tobytes()
    other_seed = load_patterns_data(24, seed=2, **SMALL)
    assert not any(np.array_equal(a, b) for a, b in zip(data.train.images, other_seed.train.images))


def test_a_shorter_set_is_the_start_of_a_longer_one(data):
    short = load_patterns_data(24, seed=1, train_images=10, validation_images=0, test_images=30)
    np.testing.assert_array_equal(short.train.images, data.train.images[:10])
    np.testing.assert_array_equal(short.train.labels, data.train.labels[:10])
    np.testing.assert_array_equal(short.test.images, data.test.images)  # other splits' sizes do not matter


def test_splits_are_disjoint_streams(data):
    seen = [{image.tobytes() for image in split.images} for split in data[:3]]
    assert [len(s) for s in seen] == list(SMALL.values())  # no image repeats within a split
    assert not (seen[0] & seen[1]) and not (seen[0] & seen[2]) and not (seen[1] & seen[2])


def test_too_small_image_size_is_a_one_line_error():
    with pytest.raises(ValueError, match=r"^image_size must be >= 16 for patterns, got 8$"):
        load_patterns_data(8)


def test_registered_as_a_built_in_data_set(monkeypatch):
    assert DATASETS["patterns"] is load_patterns_data
    assert default_augmentations("patterns") == DIGIT_AUGMENTATIONS  # shifts, no mirroring
    monkeypatch.setitem(DATASETS, "patterns", functools.partial(load_patterns_data, **SMALL))
    data = load_dataset("patterns", 16, seed=3)
    images, labels = make_patterns(SMALL["train_images"], 16, seed=3, stream=0)
    np.testing.assert_array_equal(data.train.images, images)
    np.testing.assert_array_equal(data.train.labels, labels)


def spectrum_features(images):
    """Translation-invariant features: log magnitudes of the 2-D FFT of 16x16 standardized grey."""
    grey = images.astype(np.float32).mean(axis=3)
    grey = grey.reshape(len(grey), 16, grey.shape[1] // 16, 16, grey.shape[2] // 16).mean(axis=(2, 4))
    grey = (grey - grey.mean(axis=(1, 2), keepdims=True)) / (grey.std(axis=(1, 2), keepdims=True) + 1e-6)
    return np.log1p(np.abs(np.fft.rfft2(grey))).reshape(len(grey), -1)


def test_classes_are_learnable_from_the_pixels():
    """A nearest-centroid classifier on FFT magnitudes: ~43% on 1,000 test images (chance 10%),
    every class recognized sometimes. Labels that did not follow the drawing would give ~10%."""
    from sklearn.neighbors import NearestCentroid

    data = load_patterns_data(32, seed=0, train_images=1000, validation_images=0, test_images=1000)
    train, test = spectrum_features(data.train.images), spectrum_features(data.test.images)
    mean, std = train.mean(axis=0), train.std(axis=0) + 1e-6
    predicted = NearestCentroid().fit((train - mean) / std, data.train.labels).predict((test - mean) / std)
    assert np.mean(predicted == data.test.labels) > 0.3
    recall = [np.mean(predicted[data.test.labels == c] == c) for c in range(10)]
    assert min(recall) > 0.05, recall
