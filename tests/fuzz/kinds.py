"""The fuzz cases of each input kind: ``KINDS[kind](rng, base, case)`` copies the base inputs it
needs from ``base`` into the case's empty folder ``case``, mutates them, and returns ``(mutation, entry,
names)``: what it did, the entry point to run (``("cli", argv)`` or ``("api", name, args)``, see
``tests.fuzz.api``) and the names one of which an error line must mention.

Entry points are drawn by weight: the cheap ones (a loader, ``inspect``, the demo) for most cases,
``mobilekit train`` / ``export`` (seconds each) for a few, at the smallest sizes that train.
"""
import json
import os
import shutil
import struct
import zlib

import numpy as np
from PIL import Image

from tests.fuzz.bases import DETECTION_IMAGES, PHOTO_CLASSES
from tests.fuzz.mutate import mutate_bytes, mutate_json, mutate_xml

TRAIN = ("train", "--name", "fuzz", "--epochs", "1", "--batch-size", "8")
CLASSIFY = (*TRAIN, "--arch", "resnet20", "--image-size", "32")
DETECT = (*TRAIN, "--task", "detect", "--image-size", "64")
SEGMENT = (*TRAIN, "--task", "segment", "--image-size", "32")
EXPORT = ("export", "fuzz", "--quantization", "fp32")
# Running as root, chmod does not stop reads: the permission cases are left out then.
CAN_DENY = os.geteuid() != 0


def _pick(rng, weighted):
    """One key of ``{key: weight}``, drawn by weight."""
    keys = list(weighted)
    weights = np.array([weighted[k] for k in keys], float)
    return keys[int(rng.choice(len(keys), p=weights / weights.sum()))]


def _copy(base, name, case):
    source, target = os.path.join(base, name), os.path.join(case, name)
    (shutil.copytree if os.path.isdir(source) else shutil.copy2)(source, target)
    return target


def _rewrite(path, rng):
    """Byte-mutate the file at ``path`` in place; the mutation's name."""
    with open(path, "rb") as f:
        name, data = mutate_bytes(f.read(), rng)
    with open(path, "wb") as f:
        f.write(data)
    return name


def _files(folder):
    """The image files under ``folder``, sorted."""
    return sorted(os.path.join(top, name) for top, _, names in os.walk(folder) for name in names
                  if name.endswith((".png", ".jpg")))


def _huge_header(path):
    """Claim 60000 x 60000 pixels in the header of the PNG or JPEG at ``path`` (a decompression bomb)."""
    with open(path, "rb") as f:
        data = bytearray(f.read())
    if data.startswith(b"\x89PNG"):
        data[16:24] = struct.pack(">II", 60000, 60000)
        data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    else:
        at = data.index(b"\xff\xc0")
        data[at + 5:at + 9] = struct.pack(">HH", 60000, 60000)
    with open(path, "wb") as f:
        f.write(data)


def _demo(model, source, *extra):
    return "cli", ("demo", "--model", model, "--source", source, "--headless", "--max-frames", "2", *extra)


def image(rng, base, case):
    """One image file of a class folder: bytes mutated, a huge header, text, a link to itself."""
    files = _files(_copy(base, "photos", case))
    target = files[int(rng.integers(len(files)))]
    mutation = _pick(rng, {"bytes": 8, "huge-header": 1, "text": 1, "self-link": 1})
    if mutation == "bytes":
        mutation = _rewrite(target, rng)
    elif mutation == "huge-header":
        _huge_header(target)
    elif mutation == "text":
        with open(target, "w") as f:
            f.write("not an image\n")
    else:
        os.remove(target)
        os.symlink(os.path.basename(target), target)
    relative = os.path.relpath(target, case)
    entry = _pick(rng, {"load": 6, "train": 1, "demo": 3, "export": 1})
    entry = {"load": ("api", "load_image_folder", ("photos", str(rng.choice(["strict", "lenient"])))),
             "train": ("cli", (*CLASSIFY, "--data", "photos")),
             "demo": _demo(os.path.join(base, "classifier.tflite"), relative),
             "export": ("cli", (*EXPORT[:2], "--model", os.path.join(base, "classifier.keras"), "--quantization",
                                "int8", "--calibration-data", "photos"))}[entry]
    return mutation, entry, (os.path.basename(target), "photos")


def _folder_variant(name, photos, base):
    """Give the image folder ``photos`` the trouble ``name``."""
    first = os.path.join(photos, PHOTO_CLASSES[0])
    if name == "missing":
        return
    if name == "a-file":
        with open(photos, "w") as f:
            f.write("a file\n")
        return
    if name == "empty":
        os.makedirs(photos)
        return
    shutil.copytree(os.path.join(base, "photos"), photos)
    if name == "one-class":
        shutil.rmtree(os.path.join(photos, PHOTO_CLASSES[1]))
    elif name == "one-image":
        for file in _files(first)[1:]:
            os.remove(file)
    elif name == "no-images":
        for file in _files(photos):
            os.rename(file, file + ".txt")
    elif name == "hidden":
        for file in _files(photos):
            os.rename(file, os.path.join(os.path.dirname(file), "." + os.path.basename(file)))
    elif name == "loop-to-ancestor":
        os.symlink("..", os.path.join(first, "loop"))
        os.symlink(".", os.path.join(photos, "self"))
    elif name == "loop-file":
        os.symlink("x.png", os.path.join(first, "x.png"))
    elif name == "dangling-link":
        os.symlink("nowhere.png", os.path.join(first, "x.png"))
    elif name == "nested":
        deep = os.path.join(first, "deep", "deeper")
        os.makedirs(deep)
        for file in _files(first):
            shutil.move(file, deep)
    elif name == "unreadable-folder":
        os.chmod(first, 0)
    elif name == "unreadable-file":
        os.chmod(_files(first)[0], 0)
    elif name.startswith("split"):
        os.rename(photos, photos + ".all")
        shutil.copytree(photos + ".all", os.path.join(photos, "train"))
        if name != "split-no-val":
            shutil.copytree(photos + ".all", os.path.join(photos, "val"))
        if name == "split-unknown-class":
            os.rename(os.path.join(photos, "val", PHOTO_CLASSES[1]), os.path.join(photos, "val", "c"))
        elif name == "split-both-val":
            shutil.copytree(photos + ".all", os.path.join(photos, "validation"))
        elif name == "split-empty-test":
            os.makedirs(os.path.join(photos, "test", PHOTO_CLASSES[0]))
        shutil.rmtree(photos + ".all")


FOLDER_VARIANTS = ("missing", "a-file", "empty", "one-class", "one-image", "no-images", "hidden", "loop-to-ancestor",
                   "loop-file", "dangling-link", "nested", "split-no-val", "split-unknown-class", "split-both-val",
                   "split-empty-test", *(("unreadable-folder", "unreadable-file") if CAN_DENY else ()))


def folder(rng, base, case):
    """The image folder's structure: empty, one class, links that loop, splits that do not fit."""
    variant = FOLDER_VARIANTS[int(rng.integers(len(FOLDER_VARIANTS)))]
    _folder_variant(variant, os.path.join(case, "photos"), base)
    keras_model = os.path.join(base, "classifier.keras")
    entry = _pick(rng, {"load": 5, "train": 2, "demo": 2, "calibrate": 1, "validate": 1})
    entry = {"load": ("api", "load_image_folder", ("photos", str(rng.choice(["strict", "lenient"])))),
             "train": ("cli", (*CLASSIFY, "--data", "photos")),
             "demo": _demo(os.path.join(base, "classifier.tflite"), "photos"),
             "calibrate": ("cli", (*EXPORT[:2], "--model", keras_model, "--quantization", "int8",
                                   "--calibration-data", "photos")),
             "validate": ("cli", (*EXPORT, "--model", keras_model, "--validation-data", "photos",
                                  "--labels", os.path.join(base, "labels.txt")))}[entry]
    return variant, entry, ("photos",)


def _set(path, tag_values):
    """Set the texts of the first elements ``tag`` of the XML at ``path``."""
    from xml.etree import ElementTree

    tree = ElementTree.parse(path)
    for tag, value in tag_values.items():
        tree.getroot().find(f".//{tag}").text = str(value)
    tree.write(path)


def voc(rng, base, case):
    """A Pascal VOC folder: an XML file's bytes or fields, boxes out of the image or inverted, a
    missing or corrupt image, too few annotations."""
    root = _copy(base, "voc", case)
    index = int(rng.integers(DETECTION_IMAGES))
    xml, jpeg = (os.path.join(root, sub, f"{index}.{ext}") for sub, ext in (("Annotations", "xml"),
                                                                           ("JPEGImages", "jpg")))
    mutation = _pick(rng, {"bytes": 4, "xml": 6, "box-outside": 1, "box-inverted": 1, "zero-size": 1,
                           "missing-image": 1, "corrupt-image": 1, "too-few": 1, "no-annotations": 1})
    names = ("voc", os.path.basename(xml))
    if mutation == "bytes":
        mutation = _rewrite(xml, rng)
    elif mutation == "xml":
        with open(xml) as f:
            mutation, text = mutate_xml(f.read(), rng)
        with open(xml, "w") as f:
            f.write(text)
    elif mutation == "box-outside":
        _set(xml, {"xmax": 500, "ymin": -40})
    elif mutation == "box-inverted":
        _set(xml, {"xmin": 30, "xmax": 5})
    elif mutation == "zero-size":
        _set(xml, {"width": 0})
    elif mutation == "missing-image":
        os.remove(jpeg)
    elif mutation == "corrupt-image":
        mutation = "image-" + _rewrite(jpeg, rng)
        names += (os.path.basename(jpeg),)
    elif mutation == "too-few":
        for i in range(index, DETECTION_IMAGES):
            os.remove(os.path.join(root, "Annotations", f"{i}.xml"))
    else:
        shutil.rmtree(os.path.join(root, "Annotations"))
    entry = _pick(rng, {"load": 10, "train": 1})
    entry = {"load": ("api", "load_detection_data", ("voc",)), "train": ("cli", (*DETECT, "--data", "voc"))}[entry]
    return mutation, entry, names


def coco(rng, base, case):
    """A COCO JSON file: its bytes or values, unknown category or image ids, no annotations, odd
    boxes, a missing image."""
    root = _copy(base, "coco", case)
    path = os.path.join(root, "coco.json")
    with open(path) as f:
        value = json.load(f)
    mutation = _pick(rng, {"bytes": 4, "json": 6, "unknown-category": 1, "unknown-image": 1, "no-annotations": 1,
                           "bbox-negative": 1, "bbox-outside": 1, "no-categories": 1, "missing-image": 1})
    annotation = value["annotations"][int(rng.integers(len(value["annotations"])))]
    if mutation == "bytes":
        with open(path, "rb") as f:
            mutation, data = mutate_bytes(f.read(), rng)
    else:
        if mutation == "json":
            mutation, value = mutate_json(value, rng)
        elif mutation == "unknown-category":
            annotation["category_id"] = 99
        elif mutation == "unknown-image":
            annotation["image_id"] = 99
        elif mutation == "no-annotations":
            value["annotations"] = []
        elif mutation == "bbox-negative":
            annotation["bbox"][2] = -10
        elif mutation == "bbox-outside":
            annotation["bbox"][:2] = [300, 300]
        elif mutation == "no-categories":
            value["categories"] = []
        else:
            os.remove(os.path.join(root, value["images"][0]["file_name"]))
        data = json.dumps(value).encode()
    with open(path, "wb") as f:
        f.write(data)
    entry = _pick(rng, {"load": 10, "train": 1})
    entry = {"load": ("api", "load_detection_data", ("coco/coco.json",)),
             "train": ("cli", (*DETECT, "--data", "coco/coco.json"))}[entry]
    return mutation, entry, ("coco.json", "coco")


def mask(rng, base, case):
    """Image and mask folders: sizes that differ, class ids above the class count, RGB, 16-bit and
    float masks, corrupt files, a missing mask, odd class names."""
    root = _copy(base, "masks", case)
    index = int(rng.integers(len(os.listdir(os.path.join(root, "masks")))))
    image_file, mask_file = (os.path.join(root, sub, f"{index}.png") for sub in ("images", "masks"))
    mutation = _pick(rng, {"mask-bytes": 3, "image-bytes": 2, "size-mismatch": 1, "class-above-count": 1,
                           "rgb-mask": 1, "16-bit-mask": 1, "float-mask": 1, "missing-mask": 1, "classes-empty": 1,
                           "classes-bytes": 1, "no-images": 1})
    names = ("masks",)
    pixels = np.asarray(Image.open(mask_file))
    if mutation in ("mask-bytes", "image-bytes"):
        target = mask_file if mutation == "mask-bytes" else image_file
        mutation = f"{mutation.split('-')[0]}-{_rewrite(target, rng)}"
        names += (os.path.basename(target),)
    elif mutation == "size-mismatch":
        Image.fromarray(pixels).resize((20, 24)).save(mask_file)
    elif mutation == "class-above-count":
        Image.fromarray(np.where(pixels > 0, 7, 0).astype(np.uint8)).save(mask_file)
    elif mutation == "rgb-mask":
        Image.fromarray(np.stack([pixels] * 3, -1)).save(mask_file)
    elif mutation == "16-bit-mask":
        Image.fromarray((pixels.astype(np.uint16) * 300)).save(mask_file)
    elif mutation == "float-mask":
        Image.fromarray(pixels.astype(np.float32) + 0.5).save(mask_file, format="TIFF")
    elif mutation == "missing-mask":
        os.remove(mask_file)
    elif mutation.startswith("classes"):
        with open(os.path.join(root, "classes.txt"), "wb") as f:
            f.write(b"" if mutation == "classes-empty" else rng.integers(0, 256, 40, dtype=np.uint8).tobytes())
    else:
        shutil.rmtree(os.path.join(root, "images"))
        os.makedirs(os.path.join(root, "images"))
    entry = _pick(rng, {"load": 10, "train": 1})
    entry = {"load": ("api", "load_mask_folder", ("masks",)), "train": ("cli", (*SEGMENT, "--data", "masks"))}[entry]
    return mutation, entry, names


def labels(rng, base, case):
    """A labels file: bytes mutated, not UTF-8, too few labels, blank, a folder, missing."""
    path = os.path.join(case, "labels.txt")
    mutation = _pick(rng, {"bytes": 4, "not-utf8": 1, "one-label": 1, "blank": 1, "a-folder": 1, "missing": 1,
                           "huge-line": 1})
    contents = {"not-utf8": b"\xff\xfe\x00a\n\x80b\n", "one-label": b"a\n", "blank": b"\n \n\n",
                "huge-line": b"a" * (1 << 20) + b"\nb\n"}
    if mutation == "bytes":
        _copy(base, "labels.txt", case)
        mutation = _rewrite(path, rng)
    elif mutation == "a-folder":
        os.makedirs(path)
    elif mutation in contents:
        with open(path, "wb") as f:
            f.write(contents[mutation])
    entry = _pick(rng, {"demo": 6, "export": 1})
    entry = {"demo": _demo(os.path.join(base, "classifier.tflite"), os.path.join(base, "photos", "a", "0.png"),
                           "--labels", "labels.txt"),
             "export": ("cli", (*EXPORT, "--model", os.path.join(base, "classifier.keras"), "--labels",
                                "labels.txt"))}[entry]
    return mutation, entry, ("labels.txt",)


def tflite(rng, base, case):
    """A ``.tflite`` file: bytes mutated, a text file, or a valid model whose input is no image, is
    dynamic or is two inputs."""
    mutation = _pick(rng, {"bytes": 8, "int8-bytes": 3, "text": 1, "vector": 1, "dynamic": 1, "two_inputs": 1})
    source = {"bytes": "classifier", "int8-bytes": "classifier_int8", "text": "labels"}.get(mutation, mutation)
    path = os.path.join(case, f"{source}.tflite")
    shutil.copy2(os.path.join(base, f"{source}.{'txt' if mutation == 'text' else 'tflite'}"), path)
    if mutation.endswith("bytes"):
        mutation = ("int8-" if mutation.startswith("int8") else "") + _rewrite(path, rng)
    entry = _pick(rng, {"inspect": 3, "demo": 3, "bench": 1, "profile": 1, "validate": 2})
    timing = ("--runs", "1", "--rounds", "1", "--warmup", "0")
    entry = {"inspect": ("cli", ("inspect", path)),
             "demo": _demo(path, os.path.join(base, "photos", "a", "0.png")),
             "bench": ("cli", ("bench", path, *timing)),
             "profile": ("cli", ("bench", "--profile", path, "--name", "fuzz", *timing)),
             "validate": ("api", "validate", (path, os.path.join(base, "classifier.keras")))}[entry]
    return mutation, entry, (os.path.basename(path),)


def keras_model(rng, base, case):
    """A Keras model to export: bytes mutated, text, an unknown type, a SavedModel folder without its
    graph, missing, or a valid model whose input is no image, dynamic, not square or two inputs."""
    mutation = _pick(rng, {"bytes": 5, "h5-bytes": 2, "text": 1, "unknown-type": 1, "savedmodel-empty": 1,
                           "missing": 1, "vector": 1, "dynamic": 1, "dynamic-sized": 1, "wide": 1, "two_inputs": 1})
    source = {"bytes": "classifier.keras", "h5-bytes": "classifier.h5", "text": "labels.txt",
              "unknown-type": "classifier.keras", "dynamic-sized": "dynamic.keras"}.get(mutation, f"{mutation}.keras")
    target = {"text": "model.keras", "unknown-type": "model.pb", "savedmodel-empty": "saved"}.get(mutation, source)
    path = os.path.join(case, target)
    if mutation == "savedmodel-empty":
        os.makedirs(os.path.join(path, "variables"))
    elif mutation != "missing":
        shutil.copy2(os.path.join(base, source), path)
    if mutation.endswith("bytes"):
        mutation = ("h5-" if mutation.startswith("h5") else "") + _rewrite(path, rng)
    entry = _pick(rng, {"export": 4, "convert": 2})
    sized = ("--image-size", "32") if mutation == "dynamic-sized" else ()
    entry = {"export": ("cli", (*EXPORT, "--model", target, *sized)),
             "convert": ("api", "convert", (target, str(rng.choice(["fp32", "dynamic", "int8", "bogus"]))))}[entry]
    arguments = ("quantization", "representative_data") if entry[0] == "api" else ()  # convert's own
    return mutation, entry, (target, *arguments)


def run(rng, base, case):
    """A run name: none such, a folder without a model, a corrupt model or report, not a plain name."""
    mutation = _pick(rng, {"nonexistent": 2, "no-model": 2, "model-bytes": 3, "report-bytes": 2, "report-json": 2,
                           "not-a-name": 1})
    name = "fuzzrun"
    path = os.path.join(case, "runs", name)
    if mutation == "not-a-name":
        name = str(rng.choice(["../fuzzrun", "fuzz/run", "..", "."]))
    elif mutation != "nonexistent":
        shutil.copytree(os.path.join(base, "runs", "trained"), path)
    if mutation == "no-model":
        os.remove(os.path.join(path, "model.keras"))
    elif mutation == "model-bytes":
        mutation = "model-" + _rewrite(os.path.join(path, "model.keras"), rng)
    elif mutation == "report-bytes":
        mutation = "report-" + _rewrite(os.path.join(path, "report.json"), rng)
    elif mutation == "report-json":
        with open(os.path.join(path, "report.json")) as f:
            mutation, value = mutate_json(json.load(f), rng)
        with open(os.path.join(path, "report.json"), "w") as f:
            json.dump(value, f)
    entry = _pick(rng, {"export": 3, "report": 2, "resume": 2})
    entry = {"export": ("cli", ("export", name)), "report": ("cli", ("report", name)),
             "resume": ("cli", ("train", "--name", name, "--resume"))}[entry]
    return mutation, entry, (name,)


def _flag_cases(base):
    """``(argv, names)`` of option combinations that do not apply or values out of range; ``names``: one
    name or a tuple of the ways an error may name what is wrong."""
    model, keras_file = os.path.join(base, "classifier.tflite"), os.path.join(base, "classifier.keras")
    image_file = os.path.join(base, "photos", "a", "0.png")
    return [
        ((*TRAIN, "--task", "detect", "--strict"), "--strict"),
        ((*CLASSIFY, "--image-size", "0"), "--image-size"),
        ((*CLASSIFY, "--image-size", "-3"), "--image-size"),
        ((*CLASSIFY, "--epochs", "0"), "--epochs"),
        ((*CLASSIFY, "--batch-size", "0"), "--batch-size"),
        ((*CLASSIFY, "--alpha", "-1"), "--alpha"),
        ((*CLASSIFY, "--learning-rate", "-1"), "--learning-rate"),
        ((*CLASSIFY, "--patience", "-1"), "--patience"),
        ((*CLASSIFY, "--arch", "nonexistent"), "nonexistent"),
        ((*CLASSIFY, "--augment", "bogus"), "bogus"),
        ((*CLASSIFY, "--backbone", "resnet20"), "--backbone"),
        ((*CLASSIFY, "--data", "nowhere"), "nowhere"),
        ((*SEGMENT, "--arch", "resnet20"), "resnet20"),
        ((*DETECT, "--output-stride", "8"), "--output-stride"),
        ((*DETECT, "--train-images", "0"), "--train-images"),
        ((*SEGMENT, "--output-stride", "5"), ("--output-stride", "output stride")),
        (("quickstart", "--arch", "bogus"), "bogus"),
        (("quickstart", "--task", "detect", "--strict"), "--strict"),
        (("quickstart", "--epochs", "-1"), "--epochs"),
        (("export",), "export"),
        (("export", "r", "--labels", "labels.txt"), "--labels"),
        (("export", "--model", keras_file, "--qat"), "--qat"),
        (("export", "--model", keras_file, "--task", "detect"), "detect"),
        (("export", "--model", keras_file, "--quantization", "int8"), "--calibration-data"),
        (("export", "--model", keras_file, "--image-size", "64"), "--image-size"),
        (("export", "--model", keras_file, "--quantization", "binary"), "binary"),
        (("bench", "--suite", "nothing"), "nothing"),
        (("bench", "--suite", "wht1d", "--arch", "resnet20"), "--arch"),
        (("bench", "--profile", model, "--arch", "resnet20"), "--arch"),
        (("bench", "--profile", "missing.tflite"), "missing.tflite"),
        (("bench", model, "--runs", "0"), "runs"),
        (("bench", model, "--rounds", "-1"), "rounds"),
        (("bench", model, "--threads", "-2"), "threads"),
        (("bench", "--arch", "nonexistent"), "nonexistent"),
        (("bench", "--arch", "resnet20", "--image-size", "0"), "--image-size"),
        (("zoo", "--only", "nothing"), "nothing"),
        (("zoo", "--epochs", "-1"), "--epochs"),
        (("zoo", "--image-size", "0"), "--image-size"),
        (("binary", "--only", "nothing"), "nothing"),
        (("binary", "--seeds", "0"), "--seeds"),
        (("transfer", "--source", "nothing"), "nothing"),
        (("transfer", "--fraction", "2"), "--fraction"),
        (("optimize", "--archs", "nonexistent"), "nonexistent"),
        (("optimize", "--epochs", "-1"), "--epochs"),
        (("qsfm", "--ratio", "2"), "--ratio"),
        (("inspect", "missing.tflite"), "missing.tflite"),
        (("report", "nothing"), "nothing"),
        (_demo(model, image_file, "--top-k", "0")[1], "top"),
        (_demo(model, image_file, "--classes", "a")[1], "classes"),
        (_demo(model, image_file, "--max-frames", "0")[1], "max"),
        (_demo(model, image_file, "--serve", "notaport")[1], "notaport"),
        (_demo(model, image_file, "--camera-size", "axb")[1], "axb"),
        (_demo(model, image_file, "--threads", "0")[1], "threads"),
        (_demo(model, "nothing.png")[1], "nothing.png"),
        (_demo(model, image_file, "--output", "/proc/none/out.avi")[1], "out.avi"),
    ]


def flags(rng, base, case):
    """Options that do not apply to the command, the task or the architecture, and values out of range."""
    cases = _flag_cases(base)
    argv, names = cases[int(rng.integers(len(cases)))]
    names = names if isinstance(names, tuple) else (names,)
    return f"{argv[0]} {names[0]}", ("cli", argv), names


BUILDERS = ("mobilenet_v2", "mobilenet_v3_small", "ghostnet", "resnet20", "densenet", "repvgg", "mgic_net",
            "pide_classifier", "lr_aspp", "binary_resnet20")
# Values of the right type out of range (a wrong type or keyword is the caller's TypeError).
BAD_ARGUMENTS = ({"input_shape": [8, 8, 3]}, {"input_shape": [32, 32]}, {"input_shape": [0, 0, 3]},
                 {"input_shape": [32, 32, 0]}, {"input_shape": [-32, 32, 3]}, {"alpha": 0}, {"alpha": -1},
                 {"classes": 0}, {"classes": -3}, {"pooling": "bogus"}, {"weights": "nowhere.h5"},
                 {"output_stride": 5}, {"include_top": False, "pooling": "max", "classes": 0})


def builder(rng, base, case):
    """A ``models.<builder>`` called with out-of-range arguments it takes."""
    import inspect

    import models

    name = BUILDERS[int(rng.integers(len(BUILDERS)))]
    taken = inspect.signature(getattr(models, name)).parameters
    choices = [a for a in BAD_ARGUMENTS if set(a) <= set(taken)]
    arguments = choices[int(rng.integers(len(choices)))]
    key = next(iter(arguments))
    return f"{name} {key}", ("api", "build", (name, json.dumps(arguments))), (key, key.replace("_", " "), name)


KINDS = {f.__name__: f for f in (image, folder, voc, coco, mask, labels, tflite, keras_model, run, flags, builder)}
