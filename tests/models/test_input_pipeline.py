"""Image folders streamed from disk (file splits, the disk cache) and the named augmentations."""
import os
import shutil
import tracemalloc

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import models.image_folder
from models.classification_data import ArraySplit
from models.image_folder import FileSplit, load_image_folder
from models.input_pipeline import (AUGMENTATIONS, DIGIT_AUGMENTATIONS, augment_image, color_jitter, dataset, flip,
                                   parse_augmentations, random_resized_crop, shift)
from tests.models.test_image_folder import good_folder, split_folder

SIZE = 16


def batches_of(data):
    """Every batch of a dataset as numpy ``(images, labels)`` pairs."""
    return [(images.numpy(), labels.numpy()) for images, labels in data]


def assert_same_batches(actual, expected):
    assert len(actual) == len(expected)
    for (images, labels), (expected_images, expected_labels) in zip(actual, expected):
        np.testing.assert_array_equal(images, expected_images)
        np.testing.assert_array_equal(labels, expected_labels)


def numbered(count, size=SIZE):
    """``count`` images whose pixels all hold their index (so an image names itself), and labels."""
    images = np.repeat(np.arange(count, dtype=np.uint8), size * size * 3).reshape(count, size, size, 3)
    return images, np.arange(count) % 3


@pytest.fixture
def folder(tmp_path):
    """Three classes of PNGs and JPEGs of other sizes (read resized), and one broken file."""
    root = good_folder(tmp_path / "photos", {"a": 7, "b": 6, "c": 8})
    rng = np.random.default_rng(5)
    Image.fromarray(rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)).save(root / "b" / "big.jpg")
    (root / "c" / "broken.png").write_bytes(b"\x89PNG not really")
    return root


def test_streamed_folder_gives_the_in_memory_pixels_labels_and_report(folder, tmp_path, monkeypatch):
    memory = load_image_folder(str(folder), image_size=SIZE, stream=False)
    streamed = load_image_folder(str(folder), image_size=SIZE, stream=True)
    assert not memory.info.pop("streamed") and streamed.info.pop("streamed")
    assert memory.info == streamed.info and memory.info["skipped"][0]["file"] == "c/broken.png"
    for kept, files in zip(memory[:3], streamed[:3]):
        assert isinstance(kept, ArraySplit) and isinstance(files, FileSplit)
        assert files.size == kept.size == len(kept.images)
        np.testing.assert_array_equal(files.labels, kept.labels)
        np.testing.assert_array_equal(files.take(), kept.images)
        np.testing.assert_array_equal(files.take(2), kept.take(2))
        assert_same_batches(list(files.batches(3)), list(kept.batches(3)))
        streamed_batches = batches_of(dataset(files, 4))
        assert streamed_batches[0][0].dtype == np.float32
        assert_same_batches(streamed_batches, batches_of(dataset(kept, 4)))
    # the given-split layout (val/ halved) streams the same way
    root = split_folder(tmp_path / "split")
    memory, streamed = (load_image_folder(str(root), image_size=SIZE, stream=stream) for stream in (False, True))
    for kept, files in zip(memory[:3], streamed[:3]):
        np.testing.assert_array_equal(files.take(), kept.images)
        np.testing.assert_array_equal(files.labels, kept.labels)
    # by default, a folder streams when its decoded images would pass the limit
    assert not load_image_folder(str(folder), image_size=SIZE).info["streamed"]
    monkeypatch.setattr(models.image_folder, "STREAM_ABOVE_BYTES", 22 * SIZE * SIZE * 3 - 1)  # 22 files listed
    assert isinstance(load_image_folder(str(folder), image_size=SIZE).train, FileSplit)


def test_streaming_scan_holds_no_pixels(tmp_path):
    root = tmp_path / "many"
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for i in range(100):
            Image.new("RGB", (8, 8), (i, 2 * i, 50)).save(root / name / f"{i}.png")
    size = 64
    decoded = 200 * size * size * 3
    tracemalloc.start()
    try:
        data = load_image_folder(str(root), image_size=size, stream=True)
        _, streamed_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        load_image_folder(str(root), image_size=size, stream=False)
        _, memory_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert memory_peak > decoded and streamed_peak < decoded / 8
    for split in data[:3]:
        assert isinstance(split, FileSplit) and split.image_size == size
        assert all(isinstance(file, str) for file in split.files) and split.labels.dtype == np.int64
    assert sum(split.size for split in data[:3]) == 200


def test_a_file_gone_after_the_scan_is_named_in_one_line(folder):
    data = load_image_folder(str(folder), image_size=SIZE, stream=True)
    os.remove(data.test.files[0])
    with pytest.raises(ValueError, match=r"^image file .*: cannot read: No such file or directory; expected") as error:
        data.test.take()
    assert "\n" not in str(error.value)
    with pytest.raises(tf.errors.OpError, match="cannot read: No such file"):
        batches_of(dataset(data.test, 4))


def test_disk_cache_decodes_once(folder, tmp_path):
    data = load_image_folder(str(folder), image_size=SIZE, stream=True)
    prefix = tmp_path / "run" / "cache" / "train"
    prefix.parent.mkdir(parents=True)
    evaluation = dataset(data.train, 4, cache=str(prefix))
    training = dataset(data.train, 4, training=True, seed=3, augment="flip", cache=str(prefix), epochs=(0, 2))
    first, two_epochs = batches_of(evaluation), batches_of(training)
    np.testing.assert_array_equal(np.concatenate([images for images, _ in first]), data.train.take())
    cached = sorted(path.name for path in prefix.parent.iterdir())
    assert cached and all(name.startswith("train-") for name in cached)
    assert any(name.endswith(".index") for name in cached)
    assert len({name.split(".")[0] for name in cached}) == 2  # one cache per order (as given, seeded)
    shutil.move(str(folder), str(tmp_path / "moved"))  # the source files are gone: only the cache is left
    assert_same_batches(batches_of(evaluation), first)
    steps = data.train.size // 4
    assert len(two_epochs) == 2 * steps
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(two_epochs[:steps], two_epochs[steps:]))
    # a new dataset of the same split and prefix reads the same files: here a run resumed at epoch 1
    resumed = batches_of(dataset(data.train, 4, training=True, seed=3, augment="flip", cache=str(prefix),
                                 epochs=(1, 2)))
    assert_same_batches(resumed, two_epochs[steps:])
    assert sorted(path.name for path in prefix.parent.iterdir()) == cached


def test_memory_cache_and_file_shuffle_give_full_shuffled_epochs(folder):
    data = load_image_folder(str(folder), image_size=SIZE, stream=True)
    everything = data.train.take().astype(np.float32)
    for cache in (None, True):
        training = dataset(data.train, 4, training=True, seed=1, cache=cache)
        epochs = [batches_of(training) for _ in range(2)]
        orders = []
        for epoch in epochs:
            assert [len(labels) for _, labels in epoch] == [4] * (data.train.size // 4)
            images = np.concatenate([batch for batch, _ in epoch])
            # each image at most once, each one of the split's
            index = [int(np.flatnonzero((everything == image).all(axis=(1, 2, 3)))[0]) for image in images]
            assert len(set(index)) == len(index)
            orders.append(index)
        assert orders[0] != orders[1]
        again = batches_of(dataset(data.train, 4, training=True, seed=1, cache=cache))
        np.testing.assert_array_equal(again[0][0], epochs[0][0][0])  # seeded


def test_training_batches_are_full_and_reshuffled_evaluation_is_complete_and_in_order():
    images, labels = numbered(50)
    training = dataset((images, labels), 8, training=True, seed=0)
    epochs = [batches_of(training) for _ in range(3)]
    for epoch in epochs:
        assert [len(batch_labels) for _, batch_labels in epoch] == [8] * 6
        seen = np.concatenate([batch[:, 0, 0, 0] for batch, _ in epoch]).astype(int)
        assert len(set(seen)) == 48
        np.testing.assert_array_equal(np.concatenate([lab for _, lab in epoch]), labels[seen])
    assert len({tuple(np.concatenate([b[:, 0, 0, 0] for b, _ in epoch])) for epoch in epochs}) == 3
    same = batches_of(dataset((images, labels), 8, training=True, seed=0))
    np.testing.assert_array_equal(same[0][0], epochs[0][0][0])
    other = batches_of(dataset((images, labels), 8, training=True, seed=1))
    assert not np.array_equal(other[0][0], epochs[0][0][0])

    evaluation = batches_of(dataset(ArraySplit(images, labels), 8))
    assert [len(lab) for _, lab in evaluation] == [8] * 6 + [2]
    np.testing.assert_array_equal(np.concatenate([b for b, _ in evaluation]), images.astype(np.float32))
    np.testing.assert_array_equal(np.concatenate([lab for _, lab in evaluation]), labels)
    with pytest.raises(ValueError, match=r"^training split has 50 image\(s\); expected at least batch_size \(64\)$"):
        dataset((images, labels), 64, training=True)
    with pytest.raises(ValueError, match=r"^epochs \(3, 1\): expected \(first, end\) with 0 <= first < end$"):
        dataset((images, labels), 8, training=True, epochs=(3, 1))


@pytest.mark.parametrize("kind", ["arrays", "files", "files in a memory cache"])
def test_epoch_e_depends_on_seed_and_e_only(kind, folder):
    data = load_image_folder(str(folder), image_size=SIZE, stream=kind != "arrays")
    cache = True if kind == "files in a memory cache" else None

    def epochs(first, end, seed=0):
        return batches_of(dataset(data.train, 4, training=True, seed=seed, augment="crop,flip", cache=cache,
                                  epochs=(first, end)))

    steps = data.train.size // 4
    run = epochs(0, 3)
    assert len(run) == 3 * steps and all(len(labels) == 4 for _, labels in run)
    assert_same_batches(epochs(1, 3), run[steps:])  # a run resumed at epoch 1
    assert not np.array_equal(run[0][0], run[steps][0]) and not np.array_equal(run[0][0], epochs(0, 1, seed=1)[0][0])
    order = [np.concatenate([labels for _, labels in run[e * steps:(e + 1) * steps]]) for e in range(3)]
    assert not np.array_equal(order[0], order[1]) and not np.array_equal(order[1], order[2])  # reshuffled


def test_parse_augmentations():
    assert parse_augmentations("flip,crop") == ("crop", "flip")  # applied geometry first
    assert parse_augmentations(" color , flip ") == ("flip", "color")
    assert parse_augmentations(("shift",)) == DIGIT_AUGMENTATIONS and "flip" not in DIGIT_AUGMENTATIONS
    assert parse_augmentations("none") == parse_augmentations("") == parse_augmentations(()) == ()
    with pytest.raises(ValueError, match=r"^unknown augmentation\(s\) 'mirror'; expected some of crop, shift, flip, "
                                         r"color \(comma-separated\) or none$"):
        parse_augmentations("flip,mirror")
    with pytest.raises(ValueError, match="unknown augmentation"):
        dataset(numbered(8), 4, augment="flip,rotate")


@pytest.mark.parametrize("name", list(AUGMENTATIONS))
def test_each_augmentation_is_seeded_new_every_epoch_and_keeps_shape_dtype_range(name):
    images = np.random.default_rng(0).integers(0, 256, (12, SIZE, SIZE, 3), dtype=np.uint8)
    images[:4] = 0
    images[4:8] = 255
    split = (images, np.zeros(12, np.int64))
    augmented = dataset(split, 6, augment=name, seed=7)  # evaluation order: only the augmentation varies
    first, second = batches_of(augmented), batches_of(augmented)
    again = batches_of(dataset(split, 6, augment=name, seed=7))
    other = batches_of(dataset(split, 6, augment=name, seed=8))
    for batches in (first, second, other):
        result = np.concatenate([batch for batch, _ in batches])
        assert result.shape == images.shape and result.dtype == np.float32
        assert result.min() >= 0 and result.max() <= 255
        assert not np.array_equal(result, images)  # something changed
    first, second, again, other = (np.concatenate([batch for batch, _ in b]) for b in (first, second, again, other))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, second) and not np.array_equal(first, other)


def seeds(count):
    return [tf.constant([7, i], tf.int64) for i in range(count)]


def test_flip_gives_the_image_or_its_mirror():
    image = tf.constant(np.random.default_rng(1).uniform(0, 255, (SIZE, SIZE, 3)), tf.float32)
    mirrored = image.numpy()[:, ::-1]
    results = [flip(image, seed).numpy() for seed in seeds(16)]
    assert all(np.array_equal(r, image.numpy()) or np.array_equal(r, mirrored) for r in results)
    assert sum(np.array_equal(r, mirrored) for r in results) in range(3, 14)


def test_crop_of_the_whole_image_is_the_identity_and_crops_zoom_in():
    image = tf.constant(np.random.default_rng(2).uniform(0, 255, (SIZE, SIZE, 3)), tf.float32)
    for seed in seeds(4):
        whole = random_resized_crop(image, seed, scale=(1.0, 1.0), ratio=(1.0, 1.0))
        np.testing.assert_allclose(whole.numpy(), image.numpy(), atol=1e-4)
    # a quarter of the area, square: an upscaled quadrant-sized window of the image
    ramp = tf.constant(np.broadcast_to(np.arange(SIZE, dtype=np.float32)[None, :, None], (SIZE, SIZE, 3)))
    part = random_resized_crop(ramp, seeds(1)[0], scale=(0.25, 0.25), ratio=(1.0, 1.0)).numpy()
    assert part.shape == (SIZE, SIZE, 3) and 6 <= part[0, -1, 0] - part[0, 0, 0] <= 8  # 8 columns over 16


def test_color_jitter_without_change_is_the_identity_and_stays_in_range():
    image = tf.constant(np.random.default_rng(3).uniform(0, 255, (SIZE, SIZE, 3)), tf.float32)
    same = color_jitter(image, seeds(1)[0], brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0)
    np.testing.assert_allclose(same.numpy(), image.numpy(), atol=1e-3)
    for seed in seeds(8):
        strong = color_jitter(image, seed, brightness=0.9, contrast=0.9, saturation=0.9, hue=0.5).numpy()
        assert strong.min() >= 0 and strong.max() <= 255


def test_shift_moves_a_digit_a_little_without_mirroring():
    digit = np.zeros((32, 32, 3), np.float32)
    digit[8:24, 14:18] = 255  # a vertical bar
    digit[8:12, 10:14] = 255  # with a flag on its left: a mirror would put it on the right
    image = tf.constant(digit)
    np.testing.assert_allclose(shift(image, seeds(1)[0], translation=0.0, rotation=0.0, zoom=0.0).numpy(), digit,
                               atol=1e-3)
    for seed in seeds(8):
        moved = augment_image(image, seed, DIGIT_AUGMENTATIONS).numpy()[..., 0]
        ys, xs = np.nonzero(moved > 127)
        assert abs(ys.mean() - 15.5) < 5 and abs(xs.mean() - 15.5) < 5  # within 10% plus rotation
        assert np.mean(xs[ys < ys.min() + 3]) < np.median(xs)  # the flag stays on the left of the bar
        assert not np.allclose(moved, digit[..., 0], atol=1)
