"""The splits of a classification data set, and the stratified split every loader uses.

A split is one of two kinds, which answer the same questions:

- ``ArraySplit(images, labels)``: the pixels in memory, uint8 RGB ``(N, H, W, 3)`` in [0, 255]
  (the kit's models normalize inside), and int labels ``(N,)``. It is a pair, so
  ``images, labels = split`` and ``split[0]`` work as they always have.
- ``models.image_folder.FileSplit(files, labels, image_size)``: image files read when needed, for
  folders larger than memory.

Both have ``labels``, ``size`` (the number of images), ``take(limit)`` (up to ``limit`` images as a
uint8 array, e.g. for int8 calibration or a demo clip), ``batches(batch_size)`` (every image in
order, as ``(uint8 images, labels)`` pairs, e.g. for evaluation without holding a large split) and
``select(indices)`` (a split of the same kind with those images). ``models.input_pipeline.dataset``
makes a ``tf.data`` pipeline of either.
"""
from typing import NamedTuple

import numpy as np


class ArraySplit(NamedTuple):
    """A split held in memory: uint8 images ``(N, H, W, 3)`` and int labels ``(N,)``."""

    images: np.ndarray
    labels: np.ndarray

    @property
    def size(self):
        return len(self.labels)

    def take(self, limit=None):
        """The first ``limit`` images (all when None) as a uint8 array."""
        return self.images[:limit]

    def batches(self, batch_size):
        """``(images, labels)`` batches of every image in order; the last one may be smaller."""
        for start in range(0, self.size, batch_size):
            yield self.images[start:start + batch_size], self.labels[start:start + batch_size]

    def select(self, indices):
        return ArraySplit(self.images[indices], self.labels[indices])


def as_split(split):
    """``split`` as a split object: a plain ``(images, labels)`` pair becomes an ``ArraySplit``."""
    if hasattr(split, "take"):
        return split
    images, labels = split
    return ArraySplit(np.asarray(images), np.asarray(labels))


class _Fields(NamedTuple):
    train: tuple
    validation: tuple
    test: tuple
    class_names: tuple
    info: dict = None


class ClassificationData(_Fields):
    """Train / validation / test splits, the class names, and facts about the data for the report.

    Each split is an ``ArraySplit`` or a ``FileSplit`` (see the module docstring); plain
    ``(images, labels)`` pairs given here, or to ``_replace``, become ``ArraySplit``s.
    ``info`` is None for the built-in sets; ``load_image_folder`` fills it (skipped files, counts per
    class and split, how the split was made, whether the images are streamed from disk).
    """

    __slots__ = ()

    def __new__(cls, train, validation, test, class_names, info=None):
        return super().__new__(cls, as_split(train), as_split(validation), as_split(test), class_names, info)

    @classmethod
    def _make(cls, iterable):
        return cls(*iterable)


def stratified_split(labels, fractions, seed):
    """Indices of each split, stratified by label, deterministic for ``seed``."""
    from sklearn.model_selection import train_test_split

    indices = np.arange(len(labels))
    train_idx, rest = train_test_split(indices, train_size=fractions[0], stratify=labels, random_state=seed)
    val_share = fractions[1] / (fractions[1] + fractions[2])
    val_idx, test_idx = train_test_split(rest, train_size=val_share, stratify=labels[rest], random_state=seed)
    return np.sort(train_idx), np.sort(val_idx), np.sort(test_idx)
