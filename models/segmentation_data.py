"""Segmentation data sets by name or path: the built-in shapes, or a user's image and mask folders.

A mask folder set is ``root/images/NAME.(png|jpg|jpeg|bmp)`` with ``root/masks/NAME.png`` beside
it, a single-channel PNG whose pixel values are class ids (0 = background, c + 1 = class c),
and optionally ``root/classes.txt`` naming the classes 1, 2, ... one a line. Boxes and classes
are the connected regions of each class, so detection code can read the same data.
"""
import os

import numpy as np
from PIL import Image

from models.shapes import ShapesData, shapes_splits

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
SPLITS = ("train", "validation", "test")


def regions(mask, class_count):
    """Boxes (normalized ``[ymin, xmin, ymax, xmax]``) and 0-based classes of each connected region."""
    from scipy.ndimage import find_objects, label

    height, width = mask.shape
    boxes, classes = [], []
    for value in range(1, class_count + 1):
        components, _ = label(mask == value, structure=np.ones((3, 3)))  # 8-connected
        for rows, cols in find_objects(components):
            boxes.append([rows.start / height, cols.start / width, rows.stop / height, cols.stop / width])
            classes.append(value - 1)
    return np.array(boxes, np.float32).reshape(-1, 4), np.array(classes, np.int32)


def _pairs(root):
    images, masks = os.path.join(root, "images"), os.path.join(root, "masks")
    if not (os.path.isdir(images) and os.path.isdir(masks)):
        raise FileNotFoundError(f"mask folder {root} needs sub-folders images/ and masks/")
    pairs = []
    for name in sorted(os.listdir(images)):
        stem, suffix = os.path.splitext(name)
        if suffix.lower() in IMAGE_SUFFIXES:
            mask = os.path.join(masks, stem + ".png")
            if not os.path.isfile(mask):
                raise FileNotFoundError(f"image {name} in {images} has no mask {stem}.png in {masks}")
            pairs.append((os.path.join(images, name), mask))
    if not pairs:
        raise ValueError(f"mask folder {root} has no images in images/")
    return pairs


def load_mask_folder(root, image_size=(96, 96), seed=0, fractions=(0.7, 0.15, 0.15)):
    """Images and masks of ``root``, resized (bilinear / nearest), split train / validation / test.

    Returns a dict of ShapesData keyed by ``train``, ``validation`` and ``test``.
    """
    height, width = (image_size, image_size) if np.isscalar(image_size) else tuple(image_size)
    images, masks = [], []
    for image_path, mask_path in _pairs(root):
        images.append(np.asarray(Image.open(image_path).convert("RGB").resize((width, height), Image.BILINEAR)))
        mask = Image.open(mask_path)
        if mask.mode not in ("L", "P", "I", "I;16"):
            raise ValueError(f"mask {mask_path} must be a single-channel PNG of class ids, got mode {mask.mode}")
        masks.append(np.asarray(mask.resize((width, height), Image.NEAREST)).astype(np.uint8))
    images, masks = np.stack(images).astype(np.float32) / 255.0, np.stack(masks)
    names_file = os.path.join(root, "classes.txt")
    if os.path.isfile(names_file):
        with open(names_file) as f:
            class_names = tuple(line.strip() for line in f if line.strip())
    else:
        class_names = tuple(f"class{c}" for c in range(1, max(int(masks.max()), 1) + 1))
    if masks.max() > len(class_names):
        raise ValueError(f"mask folder {root}: mask value {masks.max()} exceeds the {len(class_names)} classes named")
    annotations = [regions(mask, len(class_names)) for mask in masks]
    data = ShapesData(images, [a[0] for a in annotations], [a[1] for a in annotations], masks, class_names)
    order = np.random.default_rng(seed).permutation(len(images))
    ends = np.round(np.cumsum(fractions) / np.sum(fractions) * len(images)).astype(int)
    parts = np.split(order, ends[:-1])
    return {name: data.subset(np.sort(part)) for name, part in zip(SPLITS, parts)}


def load_segmentation_data(name_or_path, image_size, seed=0, **sizes):
    """``shapes`` (the built-in procedural set; ``sizes``: its train/validation/test counts) or a mask folder
    (split 70/15/15)."""
    if name_or_path == "shapes":
        return shapes_splits(image_size, seed=seed, **sizes)
    if os.path.isdir(name_or_path):
        return load_mask_folder(name_or_path, image_size, seed=seed)
    raise ValueError(f"segmentation data {name_or_path!r} is neither 'shapes' nor a folder with images/ and masks/")
