"""The well-formed inputs the fuzz cases start from, written into one folder from a seed: an image
folder, a Pascal VOC folder, a COCO JSON set, a mask folder, a labels file, and (``write_models``,
which runs TensorFlow, so in a child process) Keras models and ``.tflite`` files, good ones and ones
whose input is no image, dynamic, or two inputs."""
import json
import os

import numpy as np
from PIL import Image

PHOTO_CLASSES = ("a", "b")
DETECTION_CLASSES = ("cat", "dog")
SEGMENTATION_CLASSES = ("circle", "square")
DETECTION_IMAGES = 10  # the least a detection set splits 80/10/10
IMAGE_SIZE = 32  # the models' input side, and the side the API entry points load images at


def _noise(rng, shape, colour):
    return np.clip(np.array(colour) + rng.normal(0, 25, (*shape, 3)), 0, 255).astype(np.uint8)


def _save(pixels, path):
    Image.fromarray(pixels).save(path)


def photo_folder(root, rng, per_class=3):
    """``root/<class>/<i>.png|jpg``: two colours, PNG and JPEG alternating."""
    for c, name in enumerate(PHOTO_CLASSES):
        os.makedirs(os.path.join(root, name))
        for i in range(per_class):
            extension = ("png", "jpg")[i % 2]
            _save(_noise(rng, (24, 24), (200 * (1 - c), 40, 200 * c)), os.path.join(root, name, f"{i}.{extension}"))


def _objects(rng, size):
    """One or two ``(class, xmin, ymin, xmax, ymax)`` boxes in pixels of a ``size`` square image."""
    boxes = []
    for _ in range(int(rng.integers(1, 3))):
        x0, y0 = rng.integers(0, size // 2, 2)
        w, h = rng.integers(6, size // 2, 2)
        boxes.append((str(rng.choice(DETECTION_CLASSES)), int(x0), int(y0), int(x0 + w), int(y0 + h)))
    return boxes


def voc_annotation(filename, size, objects):
    """A Pascal VOC XML annotation of one image."""
    parts = "".join(f"<object><name>{name}</name><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax>"
                    f"<ymax>{y1}</ymax></bndbox></object>" for name, x0, y0, x1, y1 in objects)
    return (f"<annotation><filename>{filename}</filename><size><width>{size}</width><height>{size}</height>"
            f"<depth>3</depth></size>{parts}</annotation>")


def voc_folder(root, rng, size=40):
    """``root/Annotations/<i>.xml`` and ``root/JPEGImages/<i>.jpg``."""
    os.makedirs(os.path.join(root, "Annotations"))
    os.makedirs(os.path.join(root, "JPEGImages"))
    for i in range(DETECTION_IMAGES):
        _save(_noise(rng, (size, size), (90, 120, 150)), os.path.join(root, "JPEGImages", f"{i}.jpg"))
        with open(os.path.join(root, "Annotations", f"{i}.xml"), "w") as f:
            f.write(voc_annotation(f"{i}.jpg", size, _objects(rng, size)))


def coco_set(root, rng, size=40):
    """``root/coco.json`` with its images in ``root/images/``."""
    os.makedirs(os.path.join(root, "images"))
    categories = [{"id": 3 + 2 * i, "name": name} for i, name in enumerate(DETECTION_CLASSES)]
    images, annotations = [], []
    for i in range(DETECTION_IMAGES):
        _save(_noise(rng, (size, size), (150, 120, 90)), os.path.join(root, "images", f"{i}.png"))
        images.append({"id": 100 + i, "file_name": f"images/{i}.png", "width": size, "height": size})
        for name, x0, y0, x1, y1 in _objects(rng, size):
            annotations.append({"id": len(annotations) + 1, "image_id": 100 + i, "bbox": [x0, y0, x1 - x0, y1 - y0],
                                "category_id": categories[DETECTION_CLASSES.index(name)]["id"]})
    with open(os.path.join(root, "coco.json"), "w") as f:
        json.dump({"images": images, "annotations": annotations, "categories": categories}, f)


def mask_folder(root, rng, size=32, count=10):
    """``root/images/<i>.png``, ``root/masks/<i>.png`` (class ids 0..2) and ``root/classes.txt``."""
    for sub in ("images", "masks"):
        os.makedirs(os.path.join(root, sub))
    for i in range(count):
        _save(_noise(rng, (size, size), (100, 100, 100)), os.path.join(root, "images", f"{i}.png"))
        mask = np.zeros((size, size), np.uint8)
        for value in (1, 2):
            y, x = rng.integers(0, size - 8, 2)
            mask[y:y + 8, x:x + 8] = value
        _save(mask, os.path.join(root, "masks", f"{i}.png"))
    with open(os.path.join(root, "classes.txt"), "w") as f:
        f.write("\n".join(SEGMENTATION_CLASSES) + "\n")


def write_inputs(root, seed):
    """Every input that needs no TensorFlow, under ``root``."""
    rng = np.random.default_rng(seed)
    photo_folder(os.path.join(root, "photos"), rng)
    voc_folder(os.path.join(root, "voc"), rng)
    coco_set(os.path.join(root, "coco"), rng)
    mask_folder(os.path.join(root, "masks"), rng)
    with open(os.path.join(root, "labels.txt"), "w") as f:
        f.write("\n".join(PHOTO_CLASSES) + "\n")


def _models():
    """Small untrained Keras models by name: a classifier of the photos, and odd inputs."""
    from keras_layers.keras_api import keras

    layers = keras.layers

    def head(x, name, inputs):
        x = layers.Conv2D(4, 3, strides=2, activation="relu")(x)
        x = layers.GlobalAveragePooling2D()(x)
        return keras.Model(inputs, layers.Dense(len(PHOTO_CLASSES), activation="softmax")(x), name=name)

    image = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))
    free = keras.Input((None, None, 3))
    wide = keras.Input((IMAGE_SIZE, 2 * IMAGE_SIZE, 3))
    pair = [keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3)), keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))]
    vector = keras.Input((10,))
    return {"classifier": head(layers.Rescaling(1 / 255)(image), "classifier", image),
            "dynamic": head(free, "dynamic", free), "wide": head(wide, "wide", wide),
            "two_inputs": head(layers.Add()(pair), "two_inputs", pair),
            "vector": keras.Model(vector, layers.Dense(len(PHOTO_CLASSES), activation="softmax")(vector),
                                  name="vector")}


def write_models(root, seed):
    """``<name>.keras`` of each of ``_models`` and its ``<name>.tflite`` (the classifier also int8, an
    ``.h5`` copy and a run folder ``runs/trained``); runs TensorFlow ops."""
    from keras_layers.keras_api import keras
    from tflite import convert

    keras.utils.set_random_seed(seed)
    photos = np.random.default_rng(seed).integers(0, 256, (8, IMAGE_SIZE, IMAGE_SIZE, 3)).astype(np.float32)
    models = _models()
    for name, model in models.items():
        model.save(os.path.join(root, f"{name}.keras"))
        with open(os.path.join(root, f"{name}.tflite"), "wb") as f:
            f.write(convert(model, "fp32"))
    classifier = models["classifier"]
    classifier.save(os.path.join(root, "classifier.h5"))
    with open(os.path.join(root, "classifier_int8.tflite"), "wb") as f:
        f.write(convert(classifier, "int8", representative_data=photos))
    run = os.path.join(root, "runs", "trained")
    os.makedirs(run)
    classifier.save(os.path.join(run, "model.keras"))
    config = {"task": "classify", "arch": "resnet20", "data": os.path.join(root, "photos"), "image_size": IMAGE_SIZE,
              "epochs": 1, "classes": len(PHOTO_CLASSES), "seed": 0}
    with open(os.path.join(run, "report.json"), "w") as f:
        json.dump({"status": "complete", "config": config}, f)
