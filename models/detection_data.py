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
import math
import os
import xml.etree.ElementTree as ElementTree

import numpy as np
import tensorflow as tf
from PIL import Image

from models.image_folder import load_image
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


def _box(corners, width, height, where):
    """Pixel ``(xmin, ymin, xmax, ymax)`` clipped to a ``width`` x ``height`` image, as normalized
    ``[ymin, xmin, ymax, xmax]``; a one-line ValueError naming ``where`` when nothing of it is left."""
    x0, y0, x1, y1 = corners
    box = np.clip(np.array([y0 / height, x0 / width, y1 / height, x1 / width], np.float64), 0.0, 1.0)
    if not (np.isfinite(corners).all() and box[2] > box[0] and box[3] > box[1]):
        raise ValueError(f"{where}: box xmin {x0:g}, ymin {y0:g}, xmax {x1:g}, ymax {y1:g} has no area inside the "
                         f"{width}x{height} image; expected xmin < xmax and ymin < ymax, overlapping the image")
    return box


def _records_to_data(records, image_size, class_names):
    """``records`` = [(image_path, [(class_name, (xmin, ymin, xmax, ymax) pixels, where)], source)]: each
    image is read (its size scales the boxes) and named with ``source`` when it cannot be."""
    index = {name: i for i, name in enumerate(class_names)}
    images, boxes, classes = [], [], []
    for path, objects, source in records:
        image = load_image(path, f"image of {source}")
        images.append(_resize(image, image_size))
        boxes.append(np.array([_box(corners, image.width, image.height, where) for _, corners, where in objects],
                              np.float32).reshape(-1, 4))
        classes.append(np.array([index[name] for name, *_ in objects], np.int32))
    return ShapesData(np.stack(images), boxes, classes, None, tuple(class_names))


def _number(element, tag, where):
    text = element.findtext(tag) if element is not None else None
    try:
        return float(text)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: <bndbox> <{tag}> is {text!r}; expected a number of pixels") from None


def _voc_record(path, folder):
    """``(image path, objects, source)`` of the VOC annotation at ``path`` (see ``_records_to_data``)."""
    source = f"VOC annotation {path}"
    try:
        root = ElementTree.parse(path).getroot()
    except ElementTree.ParseError as error:
        raise ValueError(f"{source} is not well-formed XML ({error}); expected a Pascal VOC <annotation>") from None
    filename = (root.findtext("filename") or "").strip()
    if not filename:
        raise ValueError(f"{source} has no <filename>: expected the name of its image in JPEGImages/")
    objects = []
    for i, obj in enumerate(root.iter("object")):
        where = f"{source}, object {i}"
        name = (obj.findtext("name") or "").strip()
        if not name:
            raise ValueError(f"{where} has no <name>: expected its class name")
        objects.append((name, tuple(_number(obj.find("bndbox"), k, where) for k in ("xmin", "ymin", "xmax", "ymax")),
                        where))
    return os.path.join(folder, "JPEGImages", filename), objects, source


def load_voc(folder, image_size):
    """A Pascal VOC folder (``Annotations/*.xml`` and ``JPEGImages/``) as ``ShapesData``; classes sorted by name.

    Boxes are scaled by each image's own size and clipped to it. An annotation that is not well-formed
    XML, lacks a ``<filename>``, a class ``<name>`` or a numeric box corner, a box with no area inside
    its image (inverted, empty or outside), a missing or unreadable image, and a set without any
    ``<object>`` are one-line errors naming the file.
    """
    annotations = os.path.join(folder, "Annotations")
    if not os.path.isdir(annotations):
        raise FileNotFoundError(f"no Annotations folder in {folder}: expected a Pascal VOC layout")
    records = [_voc_record(os.path.join(annotations, name), folder)
               for name in sorted(f for f in os.listdir(annotations) if f.endswith(".xml"))]
    if not records:
        raise ValueError(f"no .xml annotations in {annotations}")
    names = sorted({name for _, objects, _ in records for name, *_ in objects})
    if not names:
        raise ValueError(f"the annotations in {annotations} hold no <object>: expected at least one box")
    return _records_to_data(records, image_size, names)


def _field(record, key, kinds, where, expected):
    """``record[key]`` when it is one of ``kinds`` (never a bool), else a one-line ValueError."""
    value = record.get(key) if isinstance(record, dict) else None
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise ValueError(f"{where} has {key} {value!r}: expected {expected}")
    return value


def _coco(json_path):
    """The COCO JSON value at ``json_path``, its three lists checked."""
    if not os.path.isfile(json_path):
        raise FileNotFoundError(f"COCO annotation file not found: {json_path}")
    expected = "expected COCO JSON: an object with the lists 'images', 'annotations' and 'categories'"
    try:
        with open(json_path, "rb") as f:
            coco = json.load(f)
    except (ValueError, RecursionError) as error:  # not JSON, not UTF-8, nested too deep
        raise ValueError(f"{json_path} is not JSON ({' '.join(str(error).split())[:120]}); {expected}") from None
    if not isinstance(coco, dict) or not all(isinstance(coco.get(k), list) for k in ("images", "annotations",
                                                                                       "categories")):
        raise ValueError(f"{json_path} is not COCO JSON: {expected}")
    return coco


def load_coco(json_path, image_size, image_folder=None):
    """A COCO JSON file (``images``, ``annotations`` with ``bbox`` = [x, y, w, h] pixels, ``categories``);
    classes in the order of their category ids, image paths relative to ``image_folder`` (default:
    the file's folder).

    Boxes are scaled by each image's own size and clipped to it. A file that is not COCO JSON, a
    record without its fields, an annotation whose image or category id is unknown, a box with no
    area inside its image, a missing or unreadable image, and a file without categories or
    annotations are one-line errors naming the file and the record.
    """
    coco = _coco(json_path)
    folder = image_folder or os.path.dirname(os.path.abspath(json_path))
    ids, where = (int, str), lambda key, i: f"COCO file {json_path}, {key}[{i}]"
    names = {_field(c, "id", ids, where("categories", i), "a number or string"):
             _field(c, "name", str, where("categories", i), "a class name") for i, c in enumerate(coco["categories"])}
    files = {_field(image, "id", ids, where("images", i), "a number or string"):
             _field(image, "file_name", str, where("images", i), "the image's path") for i, image in
             enumerate(coco["images"])}
    for key, found in (("categories", names), ("annotations", coco["annotations"])):
        if not found:
            raise ValueError(f"COCO file {json_path} has no {key}: expected at least one")
    objects = {image_id: [] for image_id in files}
    for i, annotation in enumerate(coco["annotations"]):
        at = where("annotations", i)
        image_id = _field(annotation, "image_id", ids, at, "the id of an image in 'images'")
        category = _field(annotation, "category_id", ids, at, "the id of a category in 'categories'")
        bbox = _field(annotation, "bbox", list, at, "[x, y, width, height] in pixels")
        if image_id not in objects:
            raise ValueError(f"{at} has image_id {image_id!r}, which no image has: expected an id listed in 'images'")
        if category not in names:
            raise ValueError(f"{at} has category_id {category!r}, which no category has: expected an id listed in "
                             f"'categories'")
        if len(bbox) != 4 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bbox):
            raise ValueError(f"{at} has bbox {bbox!r}: expected [x, y, width, height] in pixels")
        x, y, width, height = (float(v) if abs(v) < 1e300 else math.inf for v in bbox)  # huge ints: no overflow
        objects[image_id].append((names[category], (x, y, x + width, y + height), at))
    records = [(os.path.join(folder, file), objects[image_id], f"COCO file {json_path}")
               for image_id, file in files.items()]
    order = sorted(names, key=lambda c: (isinstance(c, str), c))
    return _records_to_data(records, image_size, [names[c] for c in order])


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
