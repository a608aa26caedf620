"""Detection data: users' Pascal VOC XML and COCO JSON sets as ``ShapesData`` records, and
bounding-box-aware augmentation.

A loaded set has the shapes data set's structure (``models.shapes.ShapesData``): images float32
(N, H, W, 3) in [0, 1] resized to the model's input, ``boxes`` normalized
``[ymin, xmin, ymax, xmax]``, ``classes`` 0-based into ``class_names``; ``masks`` is None.

Augmentation (TensorFlow ops, run per image inside ``tf.data``) moves the boxes with the
pixels: random horizontal and vertical flips, and a random crop (zoom in) resized back to
the input size, after which boxes are clipped to the crop and dropped (class -1) when less
than half of their area is left.
"""
import json
import os
import xml.etree.ElementTree as ElementTree

import numpy as np
import tensorflow as tf
from PIL import Image

from models.shapes import ShapesData, shapes_splits

MIN_KEPT_AREA = 0.5


def pad_annotations(boxes, classes, max_objects):
    """Ragged per-image boxes/classes -> ``(N, max_objects, 4)`` float32, ``(N, max_objects)`` int32 (-1 pads)."""
    padded_boxes = np.zeros((len(boxes), max_objects, 4), np.float32)
    padded_classes = np.full((len(boxes), max_objects), -1, np.int32)
    for i, (b, c) in enumerate(zip(boxes, classes)):
        if len(b) > max_objects:
            raise ValueError(f"image {i} has {len(b)} objects: expected at most {max_objects}")
        padded_boxes[i, :len(b)], padded_classes[i, :len(c)] = b, c
    return padded_boxes, padded_classes


def random_flip(image, boxes, seed):
    """Flip the image and its boxes left-right and up-down, each with probability 1/2."""
    flips = tf.random.stateless_uniform((2,), seed) < 0.5
    ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=-1)
    image = tf.cond(flips[0], lambda: tf.image.flip_left_right(image), lambda: image)
    xmin, xmax = tf.where(flips[0], 1.0 - xmax, xmin), tf.where(flips[0], 1.0 - xmin, xmax)
    image = tf.cond(flips[1], lambda: tf.image.flip_up_down(image), lambda: image)
    ymin, ymax = tf.where(flips[1], 1.0 - ymax, ymin), tf.where(flips[1], 1.0 - ymin, ymax)
    return image, tf.stack([ymin, xmin, ymax, xmax], -1)


def random_crop(image, boxes, classes, seed, min_side=0.7):
    """Crop a random square-ish window (sides in [min_side, 1]) and resize it back; move the boxes."""
    draws = tf.random.stateless_uniform((4,), seed)
    side = min_side + (1.0 - min_side) * draws[:2]
    origin = (1.0 - side) * draws[2:]
    window = tf.concat([origin, origin + side], 0)
    size = tf.shape(image)[:2]
    image = tf.image.crop_and_resize(image[None], window[None], [0], size)[0]
    moved = (boxes - tf.tile(origin, [2])) / tf.tile(side, [2])
    clipped = tf.clip_by_value(moved, 0.0, 1.0)
    area = lambda b: tf.maximum(b[..., 2] - b[..., 0], 0.0) * tf.maximum(b[..., 3] - b[..., 1], 0.0)
    kept = area(clipped) >= MIN_KEPT_AREA * tf.maximum(area(moved), 1e-9)
    return image, clipped, tf.where(kept, classes, -1)


def augment(image, boxes, classes, seed):
    """Random flips then a random crop, with the boxes moved along (classes -1 mark dropped boxes)."""
    seeds = tf.random.experimental.stateless_split(seed, 2)
    image, boxes = random_flip(image, boxes, seeds[0])
    return random_crop(image, boxes, classes, seeds[1])


def _resize(image, size):
    return np.asarray(image.convert("RGB").resize((size[1], size[0]), Image.BILINEAR), np.float32) / 255.0


def _records_to_data(records, image_size, class_names):
    """``records`` = [(image_path, [(class_name, xmin, ymin, xmax, ymax) pixels], (width, height))]."""
    index = {name: i for i, name in enumerate(class_names)}
    images, boxes, classes = [], [], []
    for path, objects, (width, height) in records:
        with Image.open(path) as image:
            images.append(_resize(image, image_size))
            width, height = width or image.width, height or image.height
        boxes.append(np.array([[y0 / height, x0 / width, y1 / height, x1 / width] for _, x0, y0, x1, y1 in objects],
                              np.float32).reshape(-1, 4).clip(0.0, 1.0))
        classes.append(np.array([index[name] for name, *_ in objects], np.int32))
    return ShapesData(np.stack(images), boxes, classes, None, tuple(class_names))


def load_voc(folder, image_size):
    """A Pascal VOC folder (``Annotations/*.xml`` and ``JPEGImages/``) as ``ShapesData``; classes sorted by name."""
    annotations = os.path.join(folder, "Annotations")
    if not os.path.isdir(annotations):
        raise FileNotFoundError(f"no Annotations folder in {folder}: expected a Pascal VOC layout")
    records = []
    for name in sorted(f for f in os.listdir(annotations) if f.endswith(".xml")):
        root = ElementTree.parse(os.path.join(annotations, name)).getroot()
        size = root.find("size")
        objects = [(obj.findtext("name").strip(), *(float(obj.find("bndbox").findtext(k))
                                                    for k in ("xmin", "ymin", "xmax", "ymax")))
                   for obj in root.iter("object")]
        dims = (int(size.findtext("width")), int(size.findtext("height"))) if size is not None else (0, 0)
        records.append((os.path.join(folder, "JPEGImages", root.findtext("filename")), objects, dims))
    if not records:
        raise ValueError(f"no .xml annotations in {annotations}")
    return _records_to_data(records, image_size, sorted({o[0] for r in records for o in r[1]}))


def load_coco(json_path, image_size, image_folder=None):
    """A COCO JSON file (``images``, ``annotations`` with ``bbox`` = [x, y, w, h] pixels, ``categories``)."""
    if not os.path.isfile(json_path):
        raise FileNotFoundError(f"COCO annotation file not found: {json_path}")
    with open(json_path) as f:
        coco = json.load(f)
    if not all(key in coco for key in ("images", "annotations", "categories")):
        raise ValueError(f"{json_path} is not COCO JSON: expected 'images', 'annotations' and 'categories'")
    folder = image_folder or os.path.dirname(os.path.abspath(json_path))
    categories = sorted(coco["categories"], key=lambda c: c["id"])
    names = {c["id"]: c["name"] for c in categories}
    objects = {image["id"]: [] for image in coco["images"]}
    for ann in coco["annotations"]:
        x, y, w, h = ann["bbox"]
        objects[ann["image_id"]].append((names[ann["category_id"]], x, y, x + w, y + h))
    records = [(os.path.join(folder, image["file_name"]), objects[image["id"]],
                (image.get("width", 0), image.get("height", 0))) for image in coco["images"]]
    return _records_to_data(records, image_size, [c["name"] for c in categories])


def detection_splits(data, image_size, seed=0, train=1500, validation=150, test=300):
    """``{"train", "validation", "test"}`` ShapesData: the shapes set, a VOC folder or a COCO JSON file.

    A user's set is shuffled with ``seed`` and split 80/10/10.
    """
    size = (image_size, image_size)
    if data == "shapes":
        return shapes_splits(size, seed=seed, train=train, validation=validation, test=test)
    if os.path.isdir(data):
        loaded = load_voc(data, size)
    elif data.endswith(".json"):
        loaded = load_coco(data, size)
    else:
        raise ValueError(f"detection data {data!r} is neither 'shapes', a Pascal VOC folder nor a COCO .json file")
    order = np.random.default_rng(seed).permutation(len(loaded.images))
    cut = [int(len(order) * 0.8), int(len(order) * 0.9)]
    if min(cut[0], cut[1] - cut[0], len(order) - cut[1]) < 1:
        raise ValueError(f"{data} has {len(order)} images: expected at least 10 to split 80/10/10")
    return {name: loaded._replace(images=loaded.images[idx], boxes=[loaded.boxes[i] for i in idx],
                                  classes=[loaded.classes[i] for i in idx])
            for name, idx in zip(("train", "validation", "test"), np.split(order, cut))}
