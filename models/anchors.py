"""Default boxes (anchors) of SSD (Liu et al., "SSD: Single Shot MultiBox Detector", ECCV 2016)
as SSDLite configures them (Sandler et al., "MobileNetV2", CVPR 2018, section 6.2; the
TensorFlow object detection API's ``ssd_anchor_generator``).

Level ``k`` of ``m`` feature maps gets the scale ``s_k = s_min + (s_max - s_min) k / (m - 1)``
(a fraction of the image side). Each cell has one box per aspect ratio ``a`` with
``h = s_k / sqrt(a)``, ``w = s_k * sqrt(a)``, plus a square box of scale ``sqrt(s_k s_{k+1})``
(``s_m = 1``). The lowest level keeps three boxes only: ``(0.1, 1)``, ``(s_0, 2)``, ``(s_0, 1/2)``.
Box centres sit at the cell centres ``((i + 0.5) / H, (j + 0.5) / W)``.

Anchors are ``(A, 4)`` float32 ``[y_center, x_center, height, width]``, normalized, ordered
level by level, then row, column and box: the order in which the SSDLite head flattens its
predictions and in which ``TFLite_Detection_PostProcess`` reads them.
"""
import math
from typing import NamedTuple

import numpy as np

ASPECT_RATIOS = (1.0, 2.0, 0.5, 3.0, 1.0 / 3.0)
LOWEST_LEVEL_BOXES = ((0.1, 1.0), (None, 2.0), (None, 0.5))  # None: the level's own scale


class AnchorConfig(NamedTuple):
    """The default-box settings of an SSD model (the papers' values by default)."""

    min_scale: float = 0.2
    max_scale: float = 0.95
    aspect_ratios: tuple = ASPECT_RATIOS
    reduce_lowest_level: bool = True


def level_scales(num_levels, min_scale, max_scale):
    """``s_0 .. s_{m-1}`` evenly spaced from ``min_scale`` to ``max_scale``, then 1.0."""
    if num_levels < 1:
        raise ValueError(f"anchors need at least one feature level, got {num_levels}")
    if not 0.0 < min_scale <= max_scale <= 1.0:
        raise ValueError(f"anchor scales must satisfy 0 < min_scale <= max_scale <= 1, got {min_scale}, {max_scale}")
    if num_levels == 1:
        return [min_scale, 1.0]
    step = (max_scale - min_scale) / (num_levels - 1)
    return [min_scale + step * k for k in range(num_levels)] + [1.0]


def level_box_shapes(level, scales, config=AnchorConfig()):
    """``[(scale, aspect_ratio), ...]`` of the boxes at each cell of feature level ``level``."""
    if level == 0 and config.reduce_lowest_level:
        return [(scales[0] if scale is None else scale, ratio) for scale, ratio in LOWEST_LEVEL_BOXES]
    shapes = [(scales[level], ratio) for ratio in config.aspect_ratios]
    return shapes + [(math.sqrt(scales[level] * scales[level + 1]), 1.0)]


def boxes_per_cell(num_levels, config=AnchorConfig()):
    """How many default boxes each cell of each level has (the head's predictor widths)."""
    scales = level_scales(num_levels, config.min_scale, config.max_scale)
    return [len(level_box_shapes(level, scales, config)) for level in range(num_levels)]


def default_boxes(feature_sizes, config=AnchorConfig()):
    """All default boxes for feature maps of ``feature_sizes`` = ``[(H, W), ...]``.

    Returns ``(A, 4)`` float32 ``[y_center, x_center, height, width]`` in [0, 1] units.
    """
    scales = level_scales(len(feature_sizes), config.min_scale, config.max_scale)
    levels = []
    for level, (height, width) in enumerate(feature_sizes):
        shapes = np.array([(s / math.sqrt(r), s * math.sqrt(r)) for s, r in level_box_shapes(level, scales, config)])
        ys, xs = np.meshgrid((np.arange(height) + 0.5) / height, (np.arange(width) + 0.5) / width, indexing="ij")
        centers = np.stack([ys, xs], -1).reshape(-1, 1, 2).repeat(len(shapes), axis=1)
        sizes = np.broadcast_to(shapes, centers.shape)
        levels.append(np.concatenate([centers, sizes], -1).reshape(-1, 4))
    return np.concatenate(levels).astype(np.float32)

