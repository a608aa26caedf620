"""The procedural shapes data set for detection and segmentation, deterministic from a seed.

Each image is a smooth two-colour gradient with pixel noise, optional clutter (thin lines
and small dots that belong to no class), and one to ``max_objects`` filled shapes of
random colour, size and rotation that do not overlap. Every image ``i`` is drawn from its
own generator seeded with ``(seed, i)``, so a data set is the same on every machine and
a longer one starts with the images of a shorter one.

Annotations follow the TFLite detection output convention: ``boxes`` are normalized
``[ymin, xmin, ymax, xmax]`` (the tight box of the shape's pixels, max edges exclusive),
``classes`` index ``class_names``; ``masks`` hold 0 for background and ``c + 1`` for class c.
"""
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw

SHAPE_CLASSES = ("circle", "square", "triangle")

MIN_CONTRAST = 0.35  # least RGB distance (in [0, 1] units) between a shape and the background under it


class ShapesData(NamedTuple):
    """Images with boxes, classes and masks (detection and segmentation annotations alike).

    ``images`` float32 (N, H, W, 3) in [0, 1]; ``boxes`` list of N float32 (k_i, 4) normalized
    ``[ymin, xmin, ymax, xmax]``; ``classes`` list of N int32 (k_i,); ``masks`` uint8 (N, H, W)
    with 0 = background and c + 1 = class c (None in box-only sets); ``class_names`` the names
    of the classes.
    """

    images: np.ndarray
    boxes: list
    classes: list
    masks: np.ndarray
    class_names: tuple = SHAPE_CLASSES

    def subset(self, indices):
        """The images at ``indices`` with their annotations (``masks`` may be None: boxes only)."""
        indices = np.asarray(indices, np.int64)
        masks = None if self.masks is None else self.masks[indices]
        return ShapesData(self.images[indices], [self.boxes[i] for i in indices],
                          [self.classes[i] for i in indices], masks, self.class_names)


def _polygon(kind, center, radius, angle):
    """Vertices of a square or an equilateral triangle inscribed in a circle, rotated by ``angle``."""
    corners = 4 if kind == "square" else 3
    start = angle + (np.pi / 4 if kind == "square" else -np.pi / 2)
    turns = start + 2 * np.pi * np.arange(corners) / corners
    return [(center[0] + radius * np.cos(t), center[1] + radius * np.sin(t)) for t in turns]


def _draw_shape(draw, kind, center, radius, angle, fill):
    if kind == "circle":
        x, y = center
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=fill)
    else:
        draw.polygon(_polygon(kind, center, radius, angle), fill=fill)


def _background(rng, height, width):
    """A linear gradient between two random colours in a random direction, with pixel noise."""
    colors = rng.uniform(0.0, 1.0, (2, 3))
    direction = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    ramp = xx / max(width - 1, 1) * np.cos(direction) + yy / max(height - 1, 1) * np.sin(direction)
    ramp = (ramp - ramp.min()) / max(np.ptp(ramp), 1e-6)
    image = colors[0] + ramp[..., None] * (colors[1] - colors[0])
    return image + rng.normal(0.0, 0.03, image.shape)


def _contrasting_color(rng, under):
    """A random colour at least MIN_CONTRAST away from the mean colour ``under`` the shape."""
    for _ in range(100):
        color = rng.uniform(0.0, 1.0, 3)
        if np.linalg.norm(color - under) >= MIN_CONTRAST:
            return color
    return 1.0 - np.round(under)  # the farthest corner of the colour cube


def _add_clutter(rng, image, height, width):
    """Thin lines and small dots in random colours: texture that is no object."""
    canvas = Image.fromarray(np.zeros((height, width, 3), np.uint8))
    alpha = Image.new("L", (width, height), 0)
    draw, draw_alpha = ImageDraw.Draw(canvas), ImageDraw.Draw(alpha)
    side = min(height, width)
    for _ in range(rng.integers(2, 6)):
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            points = [tuple(rng.uniform(0, [width, height])) for _ in range(2)]
            width_px = max(1, int(side / 64))
            draw.line(points, fill=color, width=width_px)
            draw_alpha.line(points, fill=255, width=width_px)
        else:
            x, y = rng.uniform(0, [width, height])
            r = rng.uniform(0.5, 1.5) * max(1.0, side / 64)
            draw.ellipse([x - r, y - r, x + r, y + r], fill=color)
            draw_alpha.ellipse([x - r, y - r, x + r, y + r], fill=255)
    weight = np.asarray(alpha, np.float32)[..., None] / 255.0
    return image * (1 - weight) + np.asarray(canvas, np.float32) / 255.0 * weight


def _place(rng, taken, height, width, min_size, max_size):
    """A shape's (center, radius) whose bounding square overlaps none of ``taken``; None if none fits."""
    side = min(height, width)
    for _ in range(50):
        radius = rng.uniform(min_size, max_size) * side / 2
        x, y = rng.uniform(radius, width - radius), rng.uniform(radius, height - radius)
        box = (y - radius - 1, x - radius - 1, y + radius + 1, x + radius + 1)
        if all(box[2] <= t[0] or t[2] <= box[0] or box[3] <= t[1] or t[3] <= box[1] for t in taken):
            taken.append(box)
            return (x, y), radius
    return None


def _shapes_image(rng, height, width, max_objects, clutter, min_size, max_size):
    image = _background(rng, height, width)
    if clutter:
        image = _add_clutter(rng, image, height, width)
    labels = Image.new("L", (width, height), 0)
    draw_labels = ImageDraw.Draw(labels)
    taken, boxes, classes = [], [], []
    for index in range(1, rng.integers(1, max_objects + 1) + 1):
        spot = _place(rng, taken, height, width, min_size, max_size)
        if spot is None:
            break
        center, radius = spot
        label = int(rng.integers(len(SHAPE_CLASSES)))
        angle = rng.uniform(0, 2 * np.pi)
        _draw_shape(draw_labels, SHAPE_CLASSES[label], center, radius, angle, fill=index)
        drawn = np.asarray(labels) == index
        if not drawn.any():
            continue
        color = _contrasting_color(rng, image[drawn].mean(axis=0))
        image[drawn] = color + rng.normal(0.0, 0.03, (int(drawn.sum()), 3))
        rows, cols = np.flatnonzero(drawn.any(axis=1)), np.flatnonzero(drawn.any(axis=0))
        boxes.append([rows[0] / height, cols[0] / width, (rows[-1] + 1) / height, (cols[-1] + 1) / width])
        classes.append(label)
    instance = np.asarray(labels)
    lookup = np.zeros(256, np.uint8)
    lookup[1:len(classes) + 1] = np.array(classes, np.uint8) + 1
    return (np.clip(image, 0.0, 1.0).astype(np.float32), np.array(boxes, np.float32).reshape(-1, 4),
            np.array(classes, np.int32), lookup[instance])


def make_shapes(count, image_size=(96, 96), seed=0, max_objects=4, clutter=True, start=0,
                min_size=0.2, max_size=0.45):
    """``count`` shapes images (images ``start`` .. ``start + count - 1`` of ``seed``'s stream).

    Args:
        image_size: ``(height, width)`` or one int for squares.
        max_objects: each image holds 1 to ``max_objects`` shapes (fewer when no space is left).
        clutter: add thin lines and dots that are background.
        min_size, max_size: shape diameter as a fraction of the image's shorter side.
    Returns:
        ShapesData.
    """
    height, width = (image_size, image_size) if np.isscalar(image_size) else tuple(image_size)
    if count < 0 or height < 16 or width < 16:
        raise ValueError(f"shapes need count >= 0 and image_size >= 16x16, got count {count}, size {image_size}")
    if max_objects < 1 or not 0 < min_size <= max_size <= 1:
        raise ValueError(f"shapes need max_objects >= 1 and 0 < min_size <= max_size <= 1, got "
                         f"{max_objects}, {min_size}, {max_size}")
    samples = [_shapes_image(np.random.default_rng([seed, start + i]), height, width, max_objects, clutter,
                             min_size, max_size) for i in range(count)]
    images = np.stack([s[0] for s in samples]) if samples else np.zeros((0, height, width, 3), np.float32)
    masks = np.stack([s[3] for s in samples]) if samples else np.zeros((0, height, width), np.uint8)
    return ShapesData(images, [s[1] for s in samples], [s[2] for s in samples], masks)


def shapes_splits(image_size=(96, 96), seed=0, train=1200, validation=200, test=200, **options):
    """Disjoint train / validation / test shapes sets, deterministic for ``seed``."""
    sizes = {"train": train, "validation": validation, "test": test}
    starts = np.cumsum([0, train, validation])
    return {name: make_shapes(size, image_size, seed=seed, start=int(first), **options)
            for (name, size), first in zip(sizes.items(), starts)}
