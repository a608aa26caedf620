"""Classification data: the built-in digits set and users' image folders.

Every split is a pair ``(images, labels)``: uint8 RGB images ``(N, H, W, 3)`` with
pixel values in [0, 255] (the kit's models normalize inside) and int labels ``(N,)``.
"""
import os
from typing import NamedTuple

import numpy as np
from PIL import Image


class ClassificationData(NamedTuple):
    """Train / validation / test splits and the class names."""

    train: tuple
    validation: tuple
    test: tuple
    class_names: tuple


def _stratified_split(labels, fractions, seed):
    """Indices of each split, stratified by label, deterministic for ``seed``."""
    from sklearn.model_selection import train_test_split

    indices = np.arange(len(labels))
    train_idx, rest = train_test_split(indices, train_size=fractions[0], stratify=labels, random_state=seed)
    val_share = fractions[1] / (fractions[1] + fractions[2])
    val_idx, test_idx = train_test_split(rest, train_size=val_share, stratify=labels[rest], random_state=seed)
    return np.sort(train_idx), np.sort(val_idx), np.sort(test_idx)


def resize_images(images, size):
    """Resize uint8 images (N, h, w[, c]) to (N, size, size, 3) RGB with bilinear filtering."""
    out = np.empty((len(images), size, size, 3), np.uint8)
    for i, image in enumerate(images):
        out[i] = np.asarray(Image.fromarray(image).convert("RGB").resize((size, size), Image.BILINEAR))
    return out


def digit_images(size=32):
    """All 1,797 scikit-learn digits as (size x size) white-on-black RGB uint8 images, with labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)  # 8x8, values 0..16
    return resize_images(pixels, size), digits.target.astype(np.int64)


def load_digits_data(image_size=32, seed=0, fractions=(0.7, 0.15, 0.15)):
    """scikit-learn's real handwritten digits, split train/val/test (stratified, seeded)."""
    if image_size < 8:
        raise ValueError(f"image_size must be >= 8 for digits, got {image_size}")
    images, labels = digit_images(image_size)
    splits = _stratified_split(labels, fractions, seed)
    train, validation, test = ((images[idx], labels[idx]) for idx in splits)
    return ClassificationData(train, validation, test, tuple(str(d) for d in range(10)))


def load_image_folder(path, image_size=96, seed=0, fractions=(0.7, 0.15, 0.15)):
    """A folder with one sub-folder of images per class, loaded into memory and split.

    Decoding and resizing go through ``keras.utils.image_dataset_from_directory``.
    """
    if not os.path.isdir(path):
        raise FileNotFoundError(f"image folder not found: {path}")
    from keras_layers.keras_api import keras

    dataset = keras.utils.image_dataset_from_directory(
        path, image_size=(image_size, image_size), batch_size=None, shuffle=False, color_mode="rgb")
    class_names = tuple(dataset.class_names)
    pairs = [(np.asarray(x), int(y)) for x, y in dataset.as_numpy_iterator()]
    if len(class_names) < 2 or not pairs:
        raise ValueError(f"image folder {path} needs at least two class sub-folders with images")
    images = np.clip(np.round(np.stack([p[0] for p in pairs])), 0, 255).astype(np.uint8)
    labels = np.array([p[1] for p in pairs], np.int64)
    splits = _stratified_split(labels, fractions, seed)
    train, validation, test = ((images[idx], labels[idx]) for idx in splits)
    return ClassificationData(train, validation, test, class_names)


DATASETS = {"digits": load_digits_data}


def load_dataset(name_or_path, image_size, seed=0):
    """A built-in data set by name (``digits``) or a user's image folder by path."""
    if name_or_path in DATASETS:
        return DATASETS[name_or_path](image_size=image_size, seed=seed)
    if os.path.isdir(name_or_path):
        return load_image_folder(name_or_path, image_size=image_size, seed=seed)
    raise ValueError(f"data {name_or_path!r} is neither a built-in data set ({', '.join(DATASETS)}) nor a folder")


SAMPLE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field",
                 "retina", "camera", "brick", "grass", "gravel", "moon", "coins", "clock")


def sample_photos(image_size=224, count=64, seed=0):
    """Random crops of scikit-image's bundled photos, as (count, size, size, 3) uint8 RGB.

    Real images that ship with the package: calibration data for models that have no data
    set of their own here (e.g. an ImageNet-shaped network timed at 224x224).
    """
    import skimage.data

    rng = np.random.default_rng(seed)
    photos = [np.asarray(Image.fromarray(getattr(skimage.data, name)()).convert("RGB")) for name in SAMPLE_PHOTOS]
    crops = np.empty((count, image_size, image_size, 3), np.uint8)
    for i in range(count):
        photo = photos[i % len(photos)]
        side = int(rng.uniform(0.4, 1.0) * min(photo.shape[:2]))
        top = rng.integers(0, photo.shape[0] - side + 1)
        left = rng.integers(0, photo.shape[1] - side + 1)
        crop = Image.fromarray(photo[top:top + side, left:left + side])
        crops[i] = np.asarray(crop.resize((image_size, image_size), Image.BILINEAR))
    return crops
