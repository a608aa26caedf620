"""Segmentation data sets by name or path: the built-in shapes, or a user's image and mask folders.

A mask folder set is ``root/images/NAME.(png|jpg|jpeg|bmp)`` with ``root/masks/NAME.png`` beside
it, a single-channel PNG whose pixel values are class ids (0 = background, c + 1 = class c),
and optionally ``root/classes.txt`` naming the classes 1, 2, ... one a line. Boxes and classes
are the connected regions of each class, so detection code can read the same data.
"""
import os

import numpy as np
from PIL import Image

from models.image_folder import load_image
from models.shapes import ShapesData, shapes_splits

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
MASK_MODES = ("1", "L", "P", "I", "I;16", "I;16L", "I;16B")  # Pillow's single-channel integer modes
MAX_CLASS_ID = 255  # masks are held as uint8
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


def _class_names(root):
    """The names in ``root/classes.txt`` (classes 1, 2, ...), or None without the file."""
    path = os.path.join(root, "classes.txt")
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            names = tuple(line.strip() for line in f if line.strip())
    except UnicodeDecodeError:
        raise ValueError(f"classes file {path} is not UTF-8 text: expected one class name per line") from None
    if not names:
        raise ValueError(f"classes file {path} is empty: expected one class name per line (classes 1, 2, ...)")
    return names


def _class_ids(mask_path, image_path, image, limit, named):
    """The class ids of the mask at ``mask_path`` (an integer array) after the checks of ``load_mask_folder``."""
    mask = load_image(mask_path, "mask")
    if mask.mode not in MASK_MODES:
        raise ValueError(f"mask {mask_path} has mode {mask.mode}: expected a single-channel PNG of integer class ids")
    if mask.size != image.size:
        raise ValueError(f"mask {mask_path} is {mask.width}x{mask.height} but its image {image_path} is "
                         f"{image.width}x{image.height}: expected the same size")
    ids = np.asarray(mask).astype(np.int64)
    if ids.min() < 0 or ids.max() > limit:
        bad = ids.min() if ids.min() < 0 else ids.max()
        raise ValueError(f"mask {mask_path} holds class id {bad}: expected ids 0 (background) to {limit} "
                         f"({'the classes named in classes.txt' if named else 'the most a mask of this kit holds'})")
    return ids.astype(np.uint8)


def load_mask_folder(root, image_size=(96, 96), seed=0, fractions=(0.7, 0.15, 0.15)):
    """Images and masks of ``root``, resized (bilinear / nearest), split train / validation / test.

    A mask is a single-channel integer image (modes ``MASK_MODES``) of the size of its image, with ids
    from 0 to the number of classes (those of ``classes.txt`` when there is one). A missing or
    unreadable file, an RGB or float mask, a size that differs, an id out of range, an empty or
    non-UTF-8 ``classes.txt`` and too few images to fill each split are one-line errors naming the file.

    Returns a dict of ShapesData keyed by ``train``, ``validation`` and ``test``.
    """
    height, width = (image_size, image_size) if np.isscalar(image_size) else tuple(image_size)
    class_names = _class_names(root)
    limit = len(class_names) if class_names else MAX_CLASS_ID
    images, masks = [], []
    for image_path, mask_path in _pairs(root):
        image = load_image(image_path, "image")
        ids = _class_ids(mask_path, image_path, image, limit, class_names is not None)
        images.append(np.asarray(image.convert("RGB").resize((width, height), Image.BILINEAR)))
        masks.append(np.asarray(Image.fromarray(ids).resize((width, height), Image.NEAREST)))
    images, masks = np.stack(images).astype(np.float32) / 255.0, np.stack(masks)
    class_names = class_names or tuple(f"class{c}" for c in range(1, max(int(masks.max()), 1) + 1))
    annotations = [regions(mask, len(class_names)) for mask in masks]
    data = ShapesData(images, [a[0] for a in annotations], [a[1] for a in annotations], masks, class_names)
    order = np.random.default_rng(seed).permutation(len(images))
    ends = np.round(np.cumsum(fractions) / np.sum(fractions) * len(images)).astype(int)
    parts = np.split(order, ends[:-1])
    if min(map(len, parts)) < 1:
        raise ValueError(f"mask folder {root} has {len(images)} image(s): too few to split "
                         f"{'/'.join(f'{100 * f:g}' for f in fractions)} with at least one image in each split")
    return {name: data.subset(np.sort(part)) for name, part in zip(SPLITS, parts)}


def load_segmentation_data(name_or_path, image_size, seed=0, **sizes):
    """``shapes`` (the built-in procedural set; ``sizes``: its train/validation/test counts) or a mask folder
    (split 70/15/15)."""
    if name_or_path == "shapes":
        return shapes_splits(image_size, seed=seed, **sizes)
    if os.path.isdir(name_or_path):
        return load_mask_folder(name_or_path, image_size, seed=seed)
    raise ValueError(f"segmentation data {name_or_path!r} is neither 'shapes' nor a folder with images/ and masks/")
