"""The splits of a classification data set, and the stratified split every loader uses.

Every split is a pair ``(images, labels)``: uint8 RGB images ``(N, H, W, 3)`` with pixel values
in [0, 255] (the kit's models normalize inside) and int labels ``(N,)``.
"""
from typing import NamedTuple

import numpy as np


class ClassificationData(NamedTuple):
    """Train / validation / test splits, the class names, and facts about the data for the report.

    ``info`` is None for the built-in sets; ``load_image_folder`` fills it (skipped files, counts per
    class and split, how the split was made).
    """

    train: tuple
    validation: tuple
    test: tuple
    class_names: tuple
    info: dict = None


def stratified_split(labels, fractions, seed):
    """Indices of each split, stratified by label, deterministic for ``seed``."""
    from sklearn.model_selection import train_test_split

    indices = np.arange(len(labels))
    train_idx, rest = train_test_split(indices, train_size=fractions[0], stratify=labels, random_state=seed)
    val_share = fractions[1] / (fractions[1] + fractions[2])
    val_idx, test_idx = train_test_split(rest, train_size=val_share, stratify=labels[rest], random_state=seed)
    return np.sort(train_idx), np.sort(val_idx), np.sort(test_idx)
