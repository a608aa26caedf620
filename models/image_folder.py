"""Users' image folders, read the way real folders are: one file at a time with Pillow, so a
corrupt or odd file is skipped and named instead of ending the run (see ``load_image_folder``).
A folder too large for memory is streamed: its splits are ``FileSplit``s of checked file paths.
"""
import os
import warnings
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageOps

from models.classification_data import ArraySplit, ClassificationData, stratified_split


IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
# ``load_image_folder(stream=None)`` streams a folder whose images, decoded at the model's size,
# would take more memory than this (1 GiB: about 39,000 images at 96x96, 7,000 at 224x224).
STREAM_ABOVE_BYTES = 1 << 30


def _hidden(name):
    """Hidden files and folders (``.name``) and the ``__MACOSX`` folder zip files leave behind."""
    return name.startswith(".") or name == "__MACOSX"


def _one_line(text, limit=160):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _failure_reason(error):
    """One short line saying why Pillow could not read a file."""
    from PIL import UnidentifiedImageError

    if isinstance(error, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return _one_line(f"possible decompression bomb: {str(error).split(', could be')[0]}")
    if isinstance(error, UnidentifiedImageError):
        return "not an image Pillow can decode"
    if isinstance(error, PermissionError):
        return "permission denied"
    if isinstance(error, OSError) and error.strerror:
        return _one_line(error.strerror)  # without the path, which the report names anyway
    message = _one_line(error)
    return message if message and isinstance(error, OSError) else _one_line(f"{type(error).__name__}: {error}")


def _to_rgb(image):
    """A loaded Pillow image of any mode as an RGB Pillow image (see ``load_image_folder``)."""
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        pixels = np.asarray(image, dtype=np.float64) / 257.0  # 0..65535 -> 0..255
        return Image.fromarray(np.clip(np.round(pixels), 0, 255).astype(np.uint8)).convert("RGB")
    if image.mode == "F":
        pixels = np.asarray(image, dtype=np.float64)
        if np.nanmin(pixels) >= 0 and np.nanmax(pixels) <= 1:
            pixels = pixels * 255.0
        return Image.fromarray(np.clip(np.round(np.nan_to_num(pixels)), 0, 255).astype(np.uint8)).convert("RGB")
    if image.mode in ("RGBA", "RGBa", "LA", "La", "PA") or "transparency" in image.info:
        rgba = np.asarray(image.convert("RGBA"), dtype=np.uint16)
        rgb = (rgba[..., :3] * rgba[..., 3:] + 127) // 255  # composited on black
        return Image.fromarray(rgb.astype(np.uint8))
    return image.convert("RGB")


def read_image(file, image_size):
    """One image file as a (image_size, image_size, 3) uint8 RGB array, the way ``load_image_folder`` reads it.

    Raises whatever Pillow or the file system raises for a file it cannot read; decompression-bomb
    warnings are raised as errors.
    """
    if os.path.getsize(file) == 0:
        raise OSError("empty file (0 bytes)")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(file) as image:
            if image.format == "JPEG":
                image.draft(None, (image_size, image_size))  # decode big photos at 1/2, 1/4 or 1/8 scale
            image.load()
            try:
                image = ImageOps.exif_transpose(image)
            except Exception:  # noqa: BLE001 - unreadable EXIF: the pixels are fine, keep them as stored
                pass
            rgb = _to_rgb(image)
            return np.asarray(rgb.resize((image_size, image_size), Image.Resampling.BILINEAR), np.uint8)


def read_checked_image(file, image_size):
    """``read_image`` of a file the folder scan found readable; a one-line ValueError naming it if it no
    longer is (changed or removed since)."""
    try:
        return read_image(file, image_size)
    except Exception as error:  # noqa: BLE001 - whatever Pillow or the file system raised, as one line
        raise ValueError(f"image file {file}: cannot read: {_failure_reason(error)}; expected the readable "
                         f"image the folder scan found") from None


def load_image(file, what="image"):
    """The image at ``file`` decoded by Pillow as it is stored (any mode, first frame), for the readers
    of annotated sets: a FileNotFoundError or a one-line ValueError naming ``what`` it is and the
    file when it cannot be read (decompression-bomb warnings are errors)."""
    if not os.path.isfile(file):
        raise FileNotFoundError(f"{what} {file} not found: expected an image file there")
    try:
        if os.path.getsize(file) == 0:
            raise OSError("empty file (0 bytes)")
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(file) as image:
                image.load()
                return image
    except Exception as error:  # noqa: BLE001 - whatever Pillow or the file system raised, as one line
        raise ValueError(f"{what} {file}: cannot read: {_failure_reason(error)}; expected an image file") from None


class FileSplit(NamedTuple):
    """A split streamed from disk: image files (checked readable by the folder scan), int labels
    ``(N,)`` and the side ``image_size`` every file is read at (``read_image``: the same pixels an
    in-memory load of the folder holds). Answers what an ``ArraySplit`` answers (see
    ``models.classification_data``), reading the files it needs."""

    files: tuple
    labels: np.ndarray
    image_size: int

    @property
    def size(self):
        return len(self.labels)

    def _read(self, files):
        images = np.empty((len(files), self.image_size, self.image_size, 3), np.uint8)
        for index, file in enumerate(files):
            images[index] = read_checked_image(file, self.image_size)
        return images

    def take(self, limit=None):
        """The first ``limit`` images (all when None) as a uint8 array."""
        return self._read(self.files[:limit])

    def batches(self, batch_size):
        """``(images, labels)`` batches of every image in order; the last one may be smaller."""
        for start in range(0, self.size, batch_size):
            yield self._read(self.files[start:start + batch_size]), self.labels[start:start + batch_size]

    def select(self, indices):
        return FileSplit(tuple(self.files[i] for i in indices), self.labels[indices], self.image_size)


def _subfolders(folder):
    """Names of the visible sub-folders of ``folder`` (symlinked folders count), sorted."""
    names = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if not _hidden(entry.name) and entry.is_dir():
                names.append(entry.name)
    return sorted(names)


def _image_files(folder, root, skipped):
    """Image files under ``folder`` (recursively, sorted; symlinked sub-folders are not followed)."""
    def unlistable(error):
        skipped.append({"file": _relative(error.filename or folder, root) + "/",
                        "reason": _one_line(f"cannot list folder: {error.strerror or error}")})

    files = []
    for current, dirs, names in os.walk(folder, onerror=unlistable, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not _hidden(d))
        files.extend(os.path.join(current, name) for name in sorted(names)
                     if not _hidden(name) and name.lower().endswith(IMAGE_EXTENSIONS))
    return files


def _relative(file, root):
    return os.path.relpath(file, root).replace(os.sep, "/")


def _class_folders(folder, what):
    """The class sub-folders of ``folder``; one that links back to ``folder`` or above is left out."""
    real = os.path.realpath(folder)
    names = []
    for name in _subfolders(folder):
        target = os.path.realpath(os.path.join(folder, name))
        if not (real + os.sep).startswith(target.rstrip(os.sep) + os.sep):  # a symlink loop to an ancestor
            names.append(name)
    if len(names) < 2:
        found = f" ({', '.join(names)})" if names else ""
        raise ValueError(f"{what} has {len(names)} class folder(s){found}; expected at least two class "
                         f"sub-folders, each with at least 2 images")
    return names


def _list_classes(folder, class_names, root, skipped, known_only=False):
    """Image files and labels of the class folders of ``folder`` named in ``class_names`` (a class may
    be missing); with ``known_only`` another sub-folder is an error."""
    files, labels = [], []
    names = _subfolders(folder)
    if known_only:
        for name in names:
            if name not in class_names:
                classes = ", ".join(class_names[:12]) + (", ..." if len(class_names) > 12 else "")
                raise ValueError(f"class folder {_relative(os.path.join(folder, name), root)} in image folder "
                                 f"{root} is not a class of train/; expected one of: {classes}")
    for name in (name for name in names if name in class_names):
        found = _image_files(os.path.join(folder, name), root, skipped)
        files.extend(found)
        labels.extend([class_names.index(name)] * len(found))
    return files, labels


def _read_files(files, labels, root, image_size, strict, skipped, stream):
    """The readable ones of ``files``: a ``FileSplit`` when ``stream`` (each file is decoded once to
    check it, its pixels dropped), else an ``ArraySplit`` of their pixels. Unreadable files are
    skipped and named, or raise with ``strict``."""
    kept_images, kept_files, kept_labels = [], [], []
    for file, label in zip(files, labels):
        try:
            image = read_image(file, image_size)
        except Exception as error:  # noqa: BLE001 - any file Pillow cannot read is skipped and named
            reason = _failure_reason(error)
            if strict:
                raise ValueError(f"image folder {root}: cannot read {_relative(file, root)}: {reason}") from None
            skipped.append({"file": _relative(file, root), "reason": reason})
            continue
        kept_files.append(file)
        kept_labels.append(label)
        if not stream:
            kept_images.append(image)
    kept_labels = np.asarray(kept_labels, np.int64)
    if stream:
        return FileSplit(tuple(kept_files), kept_labels, image_size)
    images = np.stack(kept_images) if kept_images else np.zeros((0, image_size, image_size, 3), np.uint8)
    return ArraySplit(images, kept_labels)


def _check_class_sizes(labels, class_names, folder, root, skipped):
    counts = np.bincount(labels, minlength=len(class_names))
    for name, count in zip(class_names, counts):
        if count < 2:
            class_folder = os.path.join(folder, name)
            unreadable = sum(s["file"].startswith(_relative(class_folder, root) + "/") for s in skipped)
            note = f" ({unreadable} unreadable file(s) skipped)" if unreadable else ""
            raise ValueError(f"class {name!r} ({class_folder}) has {count} readable image(s){note}; "
                             f"expected at least 2 images per class")


def _smallstratified_split(labels, fractions, seed):
    """A per-class split for classes too small for scikit-learn's: each class keeps a train image, and
    validation and test each get at least one image."""
    rng = np.random.default_rng(seed)
    parts = [[], [], []]
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_val = int(np.floor(fractions[1] * len(members) + 0.5))
        n_test = min(int(np.floor(fractions[2] * len(members) + 0.5)), len(members) - 1 - n_val)
        parts[1].append(members[:n_val])
        parts[2].append(members[n_val:n_val + n_test])
        parts[0].append(members[n_val + n_test:])
    for target in (1, 2):
        if not sum(len(p) for p in parts[target]):
            donor = max(range(len(parts[0])), key=lambda i: len(parts[0][i]))  # first of the largest
            parts[target][donor] = np.append(parts[target][donor], parts[0][donor][-1])
            parts[0][donor] = parts[0][donor][:-1]
    return tuple(np.sort(np.concatenate(p)).astype(np.int64) for p in parts)


def _half_split(labels, seed):
    """Indices of two halves of ``labels``, stratified and seeded; odd classes alternate the extra image."""
    rng = np.random.default_rng(seed)
    first, second = [], []
    extra_first = True
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        half = len(members) // 2 + (len(members) % 2 if extra_first else 0)
        extra_first ^= bool(len(members) % 2)
        first.append(members[:half])
        second.append(members[half:])
    return np.sort(np.concatenate(first)).astype(np.int64), np.sort(np.concatenate(second)).astype(np.int64)


def _split_folders(path):
    """``{"train": ..., "validation": ..., "test": ...}`` sub-folder names when ``path`` holds a split, else None."""
    names = set(_subfolders(path))
    if not names & {"train", "val", "validation"}:
        return None
    if "val" in names and "validation" in names:
        raise ValueError(f"image folder {path} has both val/ and validation/; expected one validation folder")
    validation = "val" if "val" in names else "validation" if "validation" in names else None
    if "train" not in names or validation is None:
        raise ValueError(f"image folder {path} has {'train/' if 'train' in names else validation + '/'} without "
                         f"{'val/' if 'train' in names else 'train/'}; expected train/ and val/ (optionally "
                         f"test/), each with one sub-folder per class")
    return {"train": "train", "validation": validation, "test": "test" if "test" in names else None}


def load_image_folder(path, image_size=96, seed=0, fractions=(0.7, 0.15, 0.15), strict=False, stream=None):
    """A user's folder of images, one sub-folder per class, read with Pillow and split.

    Layouts:

    - ``path/<class>/...``: every image, stratified and seeded split ``fractions`` (70/15/15 by default;
      classes too small for that split keep at least one train image, and validation and test get at
      least one image each).
    - ``path/train/<class>/...`` and ``path/val/<class>/...`` (or ``validation/``), optionally
      ``path/test/<class>/...``: the split as given. Class names come from ``train/``; a class may be
      missing from val/ or test/, a class folder unknown to train/ is an error. Without ``test/``,
      ``val/`` is halved (stratified, seeded with ``seed``, odd classes alternate the extra image)
      into validation and test.

    Class folders are searched recursively (sorted; symlinked sub-folders are not followed, so links
    that loop cannot hang). Files whose extension is not an image's (jpg jpeg png bmp gif webp tif
    tiff, any case), hidden files and folders (``.name``) and ``__MACOSX`` are ignored silently.
    Files Pillow cannot read (corrupt, truncated, not an image, empty, no permission, over Pillow's
    decompression-bomb limit ``PIL.Image.MAX_IMAGE_PIXELS``) are skipped and listed in ``info``;
    with ``strict=True`` the first one raises a ValueError naming it.

    Every image becomes 8-bit RGB: EXIF orientation is applied (``ImageOps.exif_transpose``);
    grayscale, palette, CMYK, YCbCr are converted by Pillow; alpha (RGBA, LA, palette or colour-key
    transparency) is composited on black, so transparent pixels become black; 16-bit images
    (``I;16``, ``I``) are scaled from 0..65535 to 0..255; float images (``F``) are read as 0..1
    when all values lie there, else as 0..255. Multi-frame files give their first frame. Images are
    resized to ``image_size`` x ``image_size`` (bilinear; large JPEGs are decoded at a reduced
    scale first, never below ``image_size``).

    ``stream``: False holds every image in memory (``ArraySplit``s); True gives ``FileSplit``s of
    file paths instead, after a scan that decodes each file once to check it and drops its pixels,
    so memory stays flat and the skipped files are the same; None (default) streams when the
    folder's images, decoded at ``image_size``, would take more than ``STREAM_ABOVE_BYTES``. Both
    give the same images, labels and order.

    Raises a one-line ValueError for a folder with fewer than two classes or a class with fewer than
    two readable images (train/ in the split layout). ``info`` of the result holds ``skipped``
    (``[{"file": path relative to the folder, "reason": ...}]``), ``skipped_count``,
    ``class_counts`` (``{class: {"train": n, "validation": n, "test": n}}``), ``split``
    (``"folders"`` or ``"stratified 70/15/15"``), ``note`` (one line on how the split was made) and
    ``streamed`` (whether the splits are ``FileSplit``s).
    """
    if not os.path.isdir(path):
        raise FileNotFoundError(f"image folder not found: {path}")
    skipped = []
    folders = _split_folders(path)
    if folders is None:
        class_names = tuple(_class_folders(path, f"image folder {path}"))
        listed = {"all": (path, *_list_classes(path, class_names, path, skipped))}
    else:
        train_folder = os.path.join(path, folders["train"])
        class_names = tuple(_class_folders(train_folder, f"train folder {train_folder}"))
        listed = {split: (os.path.join(path, folders[split]),
                          *_list_classes(os.path.join(path, folders[split]), class_names, path, skipped,
                                         known_only=split != "train"))
                  for split in ("train", "validation", "test") if folders[split]}
    if stream is None:
        stream = sum(len(files) for _, files, _ in listed.values()) * image_size * image_size * 3 > STREAM_ABOVE_BYTES
    read = {split: _read_files(files, labels, path, image_size, strict, skipped, stream)
            for split, (_, files, labels) in listed.items()}
    if folders is None:
        _check_class_sizes(read["all"].labels, class_names, path, path, skipped)
        try:
            indices = stratified_split(read["all"].labels, fractions, seed)
        except ValueError:  # scikit-learn needs about 6 images per class
            indices = _smallstratified_split(read["all"].labels, fractions, seed)
        train, validation, test = (read["all"].select(idx) for idx in indices)
        split = "stratified " + "/".join(f"{100 * f:g}" for f in fractions)
        note = f"{split} split of the class folders, seed {seed}"
    else:
        train, validation = read["train"], read["validation"]
        _check_class_sizes(train.labels, class_names, listed["train"][0], path, skipped)
        validation_folder = listed["validation"][0]
        needed = 1 if folders["test"] else 2
        if validation.size < needed:
            raise ValueError(f"validation folder {validation_folder} has {validation.size} readable image(s); "
                             f"expected at least {needed}" + ("" if folders["test"] else
                                                              " (it is halved into validation and test)"))
        if folders["test"]:
            test = read["test"]
            if not test.size:
                raise ValueError(f"test folder {listed['test'][0]} has no readable images; expected at least 1")
            note = f"{folders['train']}/, {folders['validation']}/ and {folders['test']}/ as given"
        else:
            first, second = _half_split(validation.labels, seed)
            validation, test = validation.select(first), validation.select(second)
            note = (f"{folders['train']}/ as given; {folders['validation']}/ halved into validation and test "
                    f"(stratified, seed {seed})")
        split = "folders"
    counts = {name: {} for name in class_names}
    for split_name, part in zip(("train", "validation", "test"), (train, validation, test)):
        per_class = np.bincount(part.labels, minlength=len(class_names))
        for name, count in zip(class_names, per_class):
            counts[name][split_name] = int(count)
    info = {"skipped": skipped, "skipped_count": len(skipped), "class_counts": counts, "split": split,
            "note": note, "streamed": bool(stream)}
    return ClassificationData(train, validation, test, class_names, info)


def read_image_files(folder, image_size, strict=False):
    """Every image under ``folder`` (any layout, searched as class folders are), read as ``load_image_folder``
    reads them: ``(images (N, image_size, image_size, 3) uint8, skipped)``. At least one must be readable."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"image folder not found: {folder}")
    skipped = []
    files = _image_files(folder, folder, skipped)
    images = _read_files(files, [0] * len(files), folder, image_size, strict, skipped, stream=False).images
    if not len(images):
        raise ValueError(f"image folder {folder} has no readable images; expected image files "
                         f"({', '.join(IMAGE_EXTENSIONS)}) in it or its sub-folders")
    return images, skipped


def read_labelled_folder(folder, image_size, class_names, strict=False):
    """Images in class sub-folders of ``folder`` named after ``class_names`` (a class may be missing, another
    folder is an error), labelled with their index in ``class_names``: ``(ArraySplit, skipped)``."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"image folder not found: {folder}")
    skipped = []
    files, labels = _list_classes(folder, tuple(class_names), folder, skipped, known_only=True)
    split = _read_files(files, labels, folder, image_size, strict, skipped, stream=False)
    if not split.size:
        raise ValueError(f"image folder {folder} has no readable images in class folders; expected sub-folders "
                         f"named after the labels, e.g. {folder}/{class_names[0]}/")
    return split, skipped
