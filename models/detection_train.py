"""Training recipe for SSDLite detectors.

Images go in as pixels in [0, 255] (the model scales them). Each epoch the ``tf.data``
pipeline augments every image with its boxes (``models.detection_data.augment``), matches
the boxes to the anchors and encodes them (``models.box_coding.match``); the model minimizes
``MultiBoxLoss`` with Adam and a cosine-decayed learning rate, batch norm momentum 0.9
(``models.train.set_batchnorm_momentum``). The weights of the last epoch are kept.
"""
import os

import numpy as np
import tensorflow as tf

from keras_layers.keras_api import keras
from models.anchors import AnchorConfig
from models.box_coding import match
from models.detection_data import augment, pad_annotations
from models.detection_loss import MultiBoxLoss
from models.files import atomic_output
from models.ssdlite import model_anchors
from models.train import compile_for_fit, set_batchnorm_momentum

# The head for small inputs such as the 96x96 shapes: at 96 pixels the papers' levels (6x6 and
# coarser) leave most objects without a default box of IoU >= 0.5, so the head also reads the
# stride-8 expansion layer (12x12), with one extra level and scales 0.2-0.6 (every object then
# matches about five default boxes).
SMALL_INPUT_HEAD = {"taps": ("stride8_expanded", "stride16_expanded", "last"), "extra_depths": (256,),
                    "anchors": {"min_scale": 0.2, "max_scale": 0.6, "reduce_lowest_level": False}}
SMALL_INPUT = 160  # inputs below this side get SMALL_INPUT_HEAD


def small_input_head(image_size):
    """The SSDLite head settings (``taps``, ``extra_depths``, ``anchors``) for ``image_size``: the
    papers' head (empty) from ``SMALL_INPUT`` pixels up, ``SMALL_INPUT_HEAD`` below."""
    return dict(SMALL_INPUT_HEAD) if image_size < SMALL_INPUT else {}


def detection_dataset(data, anchors, batch_size, seed=0, training=False, max_objects=None):
    """``tf.data`` of ``(pixels, targets)`` batches; ``targets`` is ``(A, 5)`` per image (boxes, class)."""
    max_objects = max_objects or max(1, max(len(b) for b in data.boxes))
    boxes, classes = pad_annotations(data.boxes, data.classes, max_objects)
    anchors = tf.constant(anchors)
    indices = tf.range(len(data.images), dtype=tf.int64)
    dataset = tf.data.Dataset.from_tensor_slices((data.images.astype(np.float32), boxes, classes, indices))
    if training:
        dataset = dataset.shuffle(len(data.images), seed=seed, reshuffle_each_iteration=True)
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False)

    def prepare(image, image_boxes, image_classes, index):
        if training:
            image, image_boxes, image_classes = augment(image, image_boxes, image_classes,
                                                        tf.stack([index + seed * 1_000_003, epoch]))
        box_targets, class_targets = match(anchors, image_boxes, image_classes)
        targets = tf.concat([box_targets, tf.cast(class_targets, tf.float32)[:, None]], -1)
        return image * 255.0, targets

    dataset = dataset.map(prepare, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size)
    return dataset.prefetch(tf.data.AUTOTUNE), epoch


class _EpochCounter(keras.callbacks.Callback):
    """Advance the augmentation seed's epoch, so every epoch sees new augmentations."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch.assign(epoch)


def anchor_config(settings):
    """The ``AnchorConfig`` of a run's ``anchors`` settings (a dict; the papers' when empty)."""
    return AnchorConfig(**settings.get("anchors", {}))


def train_detector(model, splits, out_dir, anchors=AnchorConfig(), epochs=30, batch_size=32, learning_rate=4e-3,
                   seed=0, bn_momentum=0.9, verbose=2):
    """Train an SSDLite ``model`` on ``splits["train"]``, validating on ``splits["validation"]``.

    Writes ``model.keras`` to ``out_dir``; returns the history dict.
    """
    keras.utils.set_random_seed(seed)
    set_batchnorm_momentum(model, bn_momentum)
    anchors = model_anchors(model, anchors)
    train_data, epoch = detection_dataset(splits["train"], anchors, batch_size, seed, training=True)
    val_data, _ = detection_dataset(splits["validation"], anchors, batch_size)
    steps = epochs * int(np.ceil(len(splits["train"].images) / batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps)
    # XLA made a training step ~10x slower on a 2-core CPU.
    compile_for_fit(model, keras.optimizers.Adam(schedule), loss=MultiBoxLoss(), accuracy=False, jit_compile=False)
    history = model.fit(train_data, validation_data=val_data, epochs=epochs, callbacks=[_EpochCounter(epoch)],
                        shuffle=False, verbose=verbose)
    history = {k: [float(v) for v in values] for k, values in history.history.items()}
    with atomic_output(os.path.join(out_dir, "model.keras")) as tmp:
        model.save(tmp)
    return history
