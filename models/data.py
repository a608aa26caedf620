"""Classification data: the built-in digits, shapes and patterns (``models.patterns``) sets, users'
image folders (``models.image_folder``) and sample photos for calibration.
"""
import os

import numpy as np
from PIL import Image

from models.classification_data import ClassificationData, stratified_split
from models.image_folder import load_image_folder
from models.input_pipeline import DIGIT_AUGMENTATIONS, PHOTO_AUGMENTATIONS
from models.patterns import load_patterns_data

__all__ = ["ClassificationData", "load_dataset", "load_digits_data", "load_image_folder", "sample_photos"]


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
    splits = stratified_split(labels, fractions, seed)
    train, validation, test = ((images[idx], labels[idx]) for idx in splits)
    return ClassificationData(train, validation, test, tuple(str(d) for d in range(10)))


SHAPES_IMAGES = {"train": 1200, "validation": 200, "test": 200}


def load_shapes_data(image_size=32, seed=0):
    """The procedural shapes (``models.shapes``) as a classification set: one shape per image
    (circle, square or triangle) on a cluttered gradient, label = its class. Deterministic for
    ``seed``; the splits are disjoint streams of images (``SHAPES_IMAGES`` each)."""
    from models.shapes import SHAPE_CLASSES, shapes_splits

    if image_size < 16:
        raise ValueError(f"image_size must be >= 16 for shapes, got {image_size}")
    splits = shapes_splits(image_size, seed=seed, max_objects=1, **SHAPES_IMAGES)
    train, validation, test = ((np.round(s.images * 255).astype(np.uint8), np.array([c[0] for c in s.classes]))
                               for s in splits.values())
    return ClassificationData(train, validation, test, SHAPE_CLASSES)


DATASETS = {"digits": load_digits_data, "shapes": load_shapes_data, "patterns": load_patterns_data}


def default_augmentations(name_or_path):
    """The augmentations ``models.input_pipeline`` applies to a data set unless told otherwise: the
    built-in sets' (small shifts, no mirroring: a mirrored digit is another symbol) or a photo
    folder's (flip, random resized crop, colour jitter)."""
    return DIGIT_AUGMENTATIONS if name_or_path in DATASETS else PHOTO_AUGMENTATIONS


def load_dataset(name_or_path, image_size, seed=0, strict=False):
    """A built-in data set by name (``DATASETS``: digits, shapes, patterns) or a user's image folder by path.

    ``strict`` (image folders only): an unreadable image file is an error instead of being skipped.
    """
    if name_or_path in DATASETS:
        return DATASETS[name_or_path](image_size=image_size, seed=seed)
    if os.path.isdir(name_or_path):
        return load_image_folder(name_or_path, image_size=image_size, seed=seed, strict=strict)
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
