"""The procedural patterns classification set: ten classes of shapes and textures, deterministic.

Why: the kit's experiment jobs compare architectures and compression methods by test accuracy,
which needs a held-out split of >= 5,000 images (on the 270 test digits one image is 0.37
points). No packaged data set of this kind ships offline (scikit-learn's digits have 1,797
images, scikit-image's samples are a few photos), so the kit draws its own.

Classes (``PATTERN_CLASSES``): six objects (circle, square, triangle, cross, ring, star) and
four textures (stripes, checkerboard, dots, zigzag).

Variation: foreground and background colours at least ``models.shapes.MIN_CONTRAST`` apart
(the drawing helpers are those of ``models.shapes``); a two-colour gradient background with
pixel noise; objects vary in size, position, rotation and proportions (ring width, cross arm,
star depth); textures vary in period, phase, duty and rotation (stripes and zigzags within 30
degrees of horizontal) and cover a random window of the image. Clutter that belongs to no class
(thin lines, small dots) lies on every background, and pixel noise of a random strength covers
the image. Masks are drawn at twice the size and averaged down (anti-aliasing).

Determinism: image ``i`` of a split comes from its own generator seeded with ``(seed, split
stream, i)`` and has label ``i % 10``, so a longer set starts with the images of a shorter one,
every split of a multiple of ten images is exactly balanced, and the splits are disjoint streams.
"""
import numpy as np

from models.classification_data import ClassificationData
from models.shapes import _add_clutter, _background, _contrasting_color

PATTERN_IMAGES = {"train": 8000, "validation": 1000, "test": 5000}  # default split sizes
SPLIT_STREAMS = {"train": 0, "validation": 1, "test": 2}


def _rotated(x, y, center, angle):
    """Coordinates ``(x, y)`` relative to ``center``, rotated by ``-angle``."""
    dx, dy = x - center[0], y - center[1]
    cos, sin = np.cos(angle), np.sin(angle)
    return dx * cos + dy * sin, -dx * sin + dy * cos


def _object(mask_of):
    """A class drawn as one object: ``mask_of(rng, u, v)`` on coordinates in units of its radius."""
    def draw(rng, x, y):
        radius = rng.uniform(0.25, 0.42)
        center = rng.uniform(radius, 1 - radius, 2)
        u, v = _rotated(x, y, center, rng.uniform(0, 2 * np.pi))
        return mask_of(rng, u / radius, v / radius)
    return draw


def _texture(mask_of, max_angle=np.pi):
    """A class drawn as a texture: ``mask_of(rng, u, v)`` on coordinates in units of its period,
    rotated by at most ``max_angle`` either way, inside a random window of the image."""
    def draw(rng, x, y):
        period = rng.uniform(0.14, 0.3)
        u, v = _rotated(x, y, rng.uniform(0, 1, 2), rng.uniform(-max_angle, max_angle))
        low = rng.uniform(0, 0.3, 2)
        high = low + rng.uniform(0.55, 1.0 - low)
        window = (x >= low[0]) & (x < high[0]) & (y >= low[1]) & (y < high[1])
        return window & mask_of(rng, u / period, v / period)
    return draw


def _triangle(rng, u, v):
    normals = np.pi / 2 + 2 * np.pi * np.arange(3) / 3
    return np.all([u * np.cos(n) + v * np.sin(n) < 0.55 for n in normals], axis=0)


def _cross(rng, u, v):
    arm = rng.uniform(0.22, 0.38)
    return ((abs(u) < arm) & (abs(v) < 1)) | ((abs(v) < arm) & (abs(u) < 1))


def _star(rng, u, v, points=5):
    """A straight-edged star: each point folded onto the edge from (1, 0) to the inner vertex."""
    inner, half = rng.uniform(0.38, 0.5), np.pi / points
    phi = np.mod(np.arctan2(v, u), 2 * half)
    phi = np.minimum(phi, 2 * half - phi)
    r = np.hypot(u, v)
    px, py = r * np.cos(phi), r * np.sin(phi)
    bx, by = inner * np.cos(half), inner * np.sin(half)
    return (bx - 1) * py - by * (px - 1) <= 0  # on the origin's side of the edge


def _zigzag(rng, u, v):
    wavelength, amplitude = rng.uniform(1.5, 3.0), rng.uniform(0.8, 1.4)
    return np.mod(v + amplitude * abs(2 * np.mod(u / wavelength, 1) - 1), 1) < rng.uniform(0.35, 0.6)


def _dots(rng, u, v):
    return np.hypot(u - np.round(u), v - np.round(v)) < rng.uniform(0.2, 0.32)


PATTERNS = {
    "circle": _object(lambda rng, u, v: u * u + v * v < 1),
    "square": _object(lambda rng, u, v: np.maximum(abs(u), abs(v)) < 0.75),
    "triangle": _object(_triangle),
    "cross": _object(_cross),
    "ring": _object(lambda rng, u, v: (u * u + v * v < 1) & (u * u + v * v > rng.uniform(0.45, 0.7) ** 2)),
    "star": _object(_star),
    "stripes": _texture(lambda rng, u, v: np.mod(v, 1) < rng.uniform(0.35, 0.65), max_angle=np.pi / 6),
    "checkerboard": _texture(lambda rng, u, v: (np.floor(u) + np.floor(v)) % 2 == 0),
    "dots": _texture(_dots),
    "zigzag": _texture(_zigzag, max_angle=np.pi / 6),
}
PATTERN_CLASSES = tuple(PATTERNS)


def pattern_image(rng, label, size):
    """One float (size, size, 3) image in [0, 1] of class ``label``, drawn from ``rng``."""
    grid = (np.arange(2 * size) + 0.5) / (2 * size)
    x, y = np.meshgrid(grid, grid)
    mask = PATTERNS[PATTERN_CLASSES[label]](rng, x, y)
    alpha = mask.reshape(size, 2, size, 2).mean(axis=(1, 3))[..., None]
    image = _add_clutter(rng, _background(rng, size, size), size, size)
    under = (image * alpha).sum(axis=(0, 1)) / max(alpha.sum(), 1e-6)  # mean background colour under the mask
    color = _contrasting_color(rng, under)
    image = image * (1 - alpha) + color * alpha
    image += rng.normal(0.0, rng.uniform(0.0, 0.04), image.shape)
    return np.clip(image, 0.0, 1.0)


def make_patterns(count, image_size=32, seed=0, stream=0):
    """Images 0 .. ``count - 1`` of ``seed``'s ``stream``: uint8 (count, size, size, 3) RGB and
    int64 labels ``i % 10``."""
    labels = np.arange(count, dtype=np.int64) % len(PATTERN_CLASSES)
    images = np.empty((count, image_size, image_size, 3), np.uint8)
    for i, label in enumerate(labels):
        image = pattern_image(np.random.default_rng([seed, stream, i]), label, image_size)
        images[i] = np.round(image * 255)
    return images, labels


def load_patterns_data(image_size=32, seed=0, train_images=PATTERN_IMAGES["train"],
                       validation_images=PATTERN_IMAGES["validation"], test_images=PATTERN_IMAGES["test"]):
    """The patterns set as ``ClassificationData``: train / validation / test drawn from disjoint
    streams of ``seed`` (see the module docstring)."""
    if image_size < 16:
        raise ValueError(f"image_size must be >= 16 for patterns, got {image_size}")
    sizes = {"train": train_images, "validation": validation_images, "test": test_images}
    splits = (make_patterns(sizes[name], image_size, seed, stream) for name, stream in SPLIT_STREAMS.items())
    return ClassificationData(*splits, PATTERN_CLASSES)
