"""tf.data pipelines of classification splits, in memory or streamed from disk, with named
augmentations applied on the fly.

``dataset(split, batch_size, ...)`` gives batches of (float32 pixels in [0, 255], int labels) for an
``ArraySplit`` (or a plain ``(images, labels)`` pair) or a ``FileSplit``; a file split is decoded
by the same Pillow reader as the folder scan (``models.image_folder.read_image``), so it yields the
pixels an in-memory load of the folder holds.

Augmentations (``AUGMENTATIONS``) are TensorFlow stateless image ops in the tf.data map, not Keras
preprocessing layers, so they behave the same under Keras 3 and tf_keras. Epoch ``e``'s order and
each image's augmentation seeds are drawn from ``(seed, e)`` with stateless ops, so the same
``seed`` gives the same batches and every epoch differs (see ``dataset``'s ``epochs``).
"""
import functools
import hashlib
import math
import os

import numpy as np
import tensorflow as tf

from models.classification_data import as_split
from models.image_folder import FileSplit, read_checked_image

# With a cache, training reads the cached images in one seeded order and shuffles them in a buffer
# of at most this many bytes of decoded pixels (without one, each epoch shuffles the whole split).
SHUFFLE_BUFFER_BYTES = 256 << 20


def _seeds(seed, count):
    """``count`` independent stateless seeds, shape (2,), from one."""
    return tf.unstack(tf.random.experimental.stateless_split(seed, count))


def flip(image, seed):
    """Mirror left-right with probability 1/2."""
    return tf.image.stateless_random_flip_left_right(image, seed)


def random_resized_crop(image, seed, scale, ratio):
    """A random crop covering ``scale`` (fractions) of the image's area with aspect ratio (width /
    height) in ``ratio``, resized back to the image's size (bilinear): the crop of Szegedy et al.,
    "Going deeper with convolutions" (CVPR 2015), as Inception and timm's ``RandomResizedCrop``
    sample it (10 tries, the whole image when none fits)."""
    height, width = image.shape[0], image.shape[1]
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image), tf.zeros([1, 0, 4]), seed, min_object_covered=0.0, aspect_ratio_range=ratio,
        area_range=scale, max_attempts=10, use_image_if_no_bounding_boxes=True)
    crop = tf.slice(image, begin, size)
    return tf.ensure_shape(tf.image.resize(crop, (height, width), method="bilinear"), image.shape)


def color_jitter(image, seed, brightness, contrast, saturation, hue):
    """Brightness (added, a fraction of the range), contrast and saturation (factors 1 +/- the
    given amount) and hue (a fraction of a turn) changed at random, in that order, clipped to
    [0, 255]; an amount of 0 leaves its property alone."""
    seeds = _seeds(seed, 4)
    jitters = (
        (brightness, lambda x, s: tf.image.stateless_random_brightness(x, brightness, s)),
        (contrast, lambda x, s: tf.image.stateless_random_contrast(x, 1 - contrast, 1 + contrast, s)),
        (saturation, lambda x, s: tf.image.stateless_random_saturation(x, 1 - saturation, 1 + saturation, s)),
        (hue, lambda x, s: tf.image.stateless_random_hue(x, hue, s)),
    )
    image = image / 255.0
    for (amount, jitter), jitter_seed in zip(jitters, seeds):
        if amount:
            image = tf.clip_by_value(jitter(image, jitter_seed), 0.0, 1.0)
    return image * 255.0


def shift(image, seed, translation, rotation, zoom):
    """A small random translation (a fraction of the size), rotation (a fraction of a turn) and zoom
    (scale 1 +/- ``zoom``) in one bilinear affine warp about the centre, filled with black: the
    kit's augmentation for digits (Keras' RandomTranslation, RandomRotation and RandomZoom, whose
    factors these are, composed)."""
    height, width = image.shape[0], image.shape[1]
    shift_y, shift_x, angle, scale = tf.unstack(tf.random.stateless_uniform(
        [4], seed, minval=-1.0, maxval=1.0) * [translation * height, translation * width,
                                                 rotation * 2 * math.pi, zoom])
    scale += 1.0
    cos, sin = tf.cos(angle) * scale, tf.sin(angle) * scale
    center_x, center_y = (width - 1) / 2.0, (height - 1) / 2.0
    # The output pixel (x, y) samples the input at A (x - c) + c - t, A a scaled rotation.
    transform = tf.stack([cos, -sin, center_x - cos * center_x + sin * center_y - shift_x,
                          sin, cos, center_y - sin * center_x - cos * center_y - shift_y, 0.0, 0.0])
    warped = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None], transforms=transform[None], output_shape=[height, width], fill_value=0.0,
        interpolation="BILINEAR", fill_mode="CONSTANT")
    return tf.ensure_shape(warped[0], image.shape)


# Each augmentation with its parameters, in the order they are applied: geometry, then colour.
AUGMENTATIONS = {
    "crop": functools.partial(random_resized_crop, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)),
    "shift": functools.partial(shift, translation=0.1, rotation=0.04, zoom=0.1),
    "flip": flip,
    "color": functools.partial(color_jitter, brightness=0.2, contrast=0.4, saturation=0.4, hue=0.05),
}
# Suggested choices: photos (image folders) may be mirrored and cropped; digits may not be mirrored.
PHOTO_AUGMENTATIONS = ("flip", "crop", "color")
DIGIT_AUGMENTATIONS = ("shift",)


def parse_augmentations(names):
    """Augmentation names, as ``"flip,crop"`` or a sequence, as a tuple in the order they are applied
    (``AUGMENTATIONS``); ``""`` or ``"none"`` is none. An unknown name is a one-line ValueError."""
    if isinstance(names, str):
        names = () if names.strip().lower() in ("", "none") else names.split(",")
    names = {name.strip() for name in names}
    unknown = sorted(names - set(AUGMENTATIONS))
    if unknown:
        raise ValueError(f"unknown augmentation(s) {', '.join(map(repr, unknown))}; expected some of "
                         f"{', '.join(AUGMENTATIONS)} (comma-separated) or none")
    return tuple(name for name in AUGMENTATIONS if name in names)


def augment_image(image, seed, names):
    """``image`` (float32 pixels in [0, 255]) through the augmentations ``names``, each with a seed
    derived from ``seed`` (shape (2,)) and its place in ``AUGMENTATIONS``, so that turning one on or
    off leaves the others' draws as they were. The result is clipped to [0, 255]: bilinear warps
    may overshoot by a rounding error."""
    seeds = _seeds(seed, len(AUGMENTATIONS))
    for index, name in enumerate(AUGMENTATIONS):
        if name in names:
            image = AUGMENTATIONS[name](image, seeds[index])
    return tf.clip_by_value(image, 0.0, 255.0)


def _decoder(image_size):
    def decode(file):
        image = tf.numpy_function(lambda path: read_checked_image(os.fsdecode(path), image_size), [file], tf.uint8,
                                  stateful=False)
        return tf.ensure_shape(image, (image_size, image_size, 3))
    return decode


def _cache_file(prefix, split, order_seed):
    """``prefix`` plus a digest of what the cache holds (the files, labels, size and the seeded order,
    None for the split's own), so a run folder's cache never serves another split's images."""
    key = hashlib.sha256(repr((split.image_size, order_seed)).encode())
    for file in split.files:
        key.update(os.fsencode(file) + b"\0")
    key.update(np.ascontiguousarray(split.labels, np.int64).tobytes())
    return f"{prefix}-{key.hexdigest()[:16]}"


def _cached(split, cache, order_seed):
    """The decoded images of a file split with their labels, cached; in a seeded order (training:
    a buffer shuffle then mixes classes that lie together in the folder) or the split's own."""
    order = np.arange(split.size) if order_seed is None else np.random.default_rng(order_seed).permutation(split.size)
    files = tf.data.Dataset.from_tensor_slices(([os.fsencode(split.files[i]) for i in order], split.labels[order]))
    decode = _decoder(split.image_size)
    data = files.map(lambda file, label: (decode(file), label), num_parallel_calls=tf.data.AUTOTUNE)
    return data.cache("" if cache is True else _cache_file(cache, split, order_seed))


def _loader(split):
    """index -> (uint8 image, label) of an in-memory split (gathered) or a file split (decoded)."""
    labels = tf.constant(split.labels, tf.int64)
    if isinstance(split, FileSplit):
        paths, decode = tf.constant([os.fsencode(file) for file in split.files]), _decoder(split.image_size)
        return lambda index: (decode(tf.gather(paths, index)), tf.gather(labels, index))
    images = tf.constant(split.images)
    return lambda index: (tf.gather(images, index), tf.gather(labels, index))


def _shuffle_seed(seed):
    """A scalar int64 seed for ``Dataset.shuffle`` from a stateless seed."""
    return tf.random.stateless_uniform([], seed, minval=None, maxval=None, dtype=tf.int64)


def dataset(split, batch_size, training=False, seed=0, augment=(), cache=None, epochs=None):
    """A ``tf.data.Dataset`` of ``(float32 images (B, H, W, 3) in [0, 255], int64 labels (B,))``.

    Args:
        split: an ``ArraySplit``, a plain ``(images, labels)`` pair or a ``FileSplit``.
        batch_size: images per batch.
        training: shuffle every epoch and keep only full batches (a partial last batch made oneDNN
            crash in training RepVGG blocks on x86); the split needs at least ``batch_size``
            images. Without it: every image once, in order, the last batch possibly smaller.
        seed: the seed of the shuffle and the augmentations.
        augment: augmentation names (``parse_augmentations``), applied to each image after the
            cache, differently every epoch.
        cache: file splits only (an in-memory split holds its pixels already). None decodes the
            files every epoch; True keeps the decoded images in memory after the first full pass;
            a path prefix keeps them in files on disk whose names start with it (the first full
            pass decodes, later passes, and later datasets of the same split, read the files),
            for splits larger than memory: use a prefix in the run folder, one per split. When
            training with a cache, the images are cached in one seeded order and each epoch
            shuffles them in a buffer of ``SHUFFLE_BUFFER_BYTES``; without one, each epoch
            shuffles the whole split.
        epochs: ``(first, end)``: the dataset holds the batches of epochs ``first`` to ``end - 1``
            back to back (for ``fit(steps_per_epoch=...)``), epoch ``e`` shuffled and augmented
            from ``(seed, e)`` alone, so a run resumed at epoch ``e`` sees the batches an unbroken
            run sees. None: the dataset is one epoch, and each pass over it (each of Keras'
            epochs) is shuffled and augmented anew, the sequence of passes fixed by ``seed``.
    """
    split = as_split(split)
    names = parse_augmentations(augment)
    if training and split.size < batch_size:
        raise ValueError(f"training split has {split.size} image(s); expected at least batch_size ({batch_size})")
    if epochs is not None and not 0 <= epochs[0] < epochs[1]:
        raise ValueError(f"epochs {tuple(epochs)}: expected (first, end) with 0 <= first < end")
    if isinstance(split, FileSplit) and cache is not None:
        cached = _cached(split, cache, seed if training else None)
        buffer = min(split.size, max(batch_size, SHUFFLE_BUFFER_BYTES // (3 * split.image_size ** 2)))
    else:
        cached, load = None, _loader(split)

    def epoch(key):
        epoch_seed = tf.stack([tf.constant(seed, tf.int64), key])
        if cached is not None:
            data = cached.shuffle(buffer, seed=_shuffle_seed(epoch_seed)) if training else cached
        else:
            order = tf.range(split.size, dtype=tf.int64)
            if training:
                order = tf.random.experimental.stateless_shuffle(order, seed=epoch_seed)
            data = tf.data.Dataset.from_tensor_slices(order).map(load, num_parallel_calls=tf.data.AUTOTUNE)
        data = data.map(lambda image, label: (tf.cast(image, tf.float32), label))
        if names:
            data = data.enumerate().map(
                lambda position, example: (augment_image(example[0], tf.random.experimental.stateless_fold_in(
                    epoch_seed, position), names), example[1]), num_parallel_calls=tf.data.AUTOTUNE)
        return data.batch(batch_size, drop_remainder=training)

    if epochs is None:
        keys = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1)
    else:
        keys = tf.data.Dataset.range(*epochs)
    per_epoch = split.size // batch_size if training else math.ceil(split.size / batch_size)
    count = per_epoch * (1 if epochs is None else epochs[1] - epochs[0])
    # flat_map hides the length; stating it lets Keras size its epochs and progress bars
    return keys.flat_map(epoch).apply(tf.data.experimental.assert_cardinality(count)).prefetch(tf.data.AUTOTUNE)
