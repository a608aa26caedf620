"""Training recipe and mIoU for segmenters (per-pixel class probabilities out).

Loss: per-pixel cross-entropy. Augmentation: the same random flips and quarter turns on an
image and its mask (the shapes' classes do not change under them). Optimizer and schedule
as for classifiers (Adam, cosine decay), batch-norm momentum 0.9 for short runs, and the
model with the best validation mIoU is kept and written atomically.

mIoU is the mean over classes (background included) of the intersection over union of the
predicted and true pixel sets of each class, accumulated over the whole evaluation set
(the Pascal VOC definition); classes absent from both are left out of the mean.
"""
import os

import numpy as np
import tensorflow as tf

from keras_layers.keras_api import keras
from models.train import BestCheckpoint, compile_for_fit, set_batchnorm_momentum


def confusion_matrix(predicted, truth, classes):
    """``classes x classes`` pixel counts: row = true class, column = predicted class."""
    predicted, truth = np.asarray(predicted, np.int64).ravel(), np.asarray(truth, np.int64).ravel()
    if predicted.shape != truth.shape:
        raise ValueError(f"predicted and true masks differ in size: {predicted.size} vs {truth.size} pixels")
    if truth.size and (truth.max() >= classes or predicted.max() >= classes):
        raise ValueError(f"mask values must be below the {classes} classes")
    return np.bincount(truth * classes + predicted, minlength=classes * classes).reshape(classes, classes)


def iou_from_confusion(confusion):
    """``{"miou", "class_iou"}`` from a confusion matrix; absent classes get NaN and are skipped."""
    confusion = np.asarray(confusion, np.float64)
    intersection = np.diag(confusion)
    union = confusion.sum(axis=0) + confusion.sum(axis=1) - intersection
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, intersection / union, np.nan)
    return {"miou": float(np.nanmean(iou)), "class_iou": [float(v) for v in iou]}


def mean_iou(predicted, truth, classes):
    """mIoU of predicted class maps against true ones (any shapes with the same pixel count)."""
    return iou_from_confusion(confusion_matrix(predicted, truth, classes))


def predict_masks(model, images, batch_size=32):
    """Class maps (N, H, W) of a Keras segmenter on float images."""
    probabilities = model.predict(np.asarray(images, np.float32), batch_size=batch_size, verbose=0)
    return np.argmax(probabilities, axis=-1).astype(np.uint8)


class ValidationMeanIoU(keras.callbacks.Callback):
    """Add ``val_miou`` (mIoU on held-out images) to the logs at the end of each epoch."""

    def __init__(self, images, masks, classes):
        super().__init__()
        self.images, self.masks, self.classes = images, masks, classes

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["val_miou"] = mean_iou(predict_masks(self.model, self.images), self.masks, self.classes)["miou"]


def _augment(image, mask, seed):
    """The same random flips and quarter turn of an image (H, W, 3) and its mask (H, W)."""
    stacked = tf.concat([image, tf.cast(mask[..., None], image.dtype)], axis=-1)
    stacked = tf.image.random_flip_left_right(stacked, seed=seed)
    stacked = tf.image.random_flip_up_down(stacked, seed=seed)
    if stacked.shape[0] == stacked.shape[1]:
        stacked = tf.image.rot90(stacked, tf.random.uniform([], 0, 4, tf.int32, seed=seed))
    return stacked[..., :3], tf.cast(stacked[..., 3], tf.uint8)


def segmentation_dataset(images, masks, batch_size, seed, augment=False):
    """A batched ``tf.data`` pipeline of (pixels in [0, 255], mask) pairs."""
    data = tf.data.Dataset.from_tensor_slices((np.asarray(images, np.float32), np.asarray(masks, np.uint8)))
    if augment:
        data = data.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
        data = data.map(lambda x, y: _augment(x, y, seed), num_parallel_calls=tf.data.AUTOTUNE)
    return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def train_segmenter(model, splits, out_dir, classes, epochs=30, batch_size=32, learning_rate=3e-3, patience=8,
                    seed=0, augment=True, bn_momentum=0.9, verbose=2):
    """Train ``model`` (pixels in [0, 255] -> probabilities) on ``splits`` and write to ``out_dir``.

    ``splits`` maps ``train`` and ``validation`` to ShapesData (images in [0, 1]). Writes
    ``model.keras`` (best validation mIoU).
    Returns ``(model, history)`` with the best weights restored and history as a dict.
    """
    keras.utils.set_random_seed(seed)
    set_batchnorm_momentum(model, bn_momentum)
    train, val = splits["train"], splits["validation"]
    steps = epochs * int(np.ceil(len(train.images) / batch_size))
    compile_for_fit(model, keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(learning_rate, steps)))
    callbacks = [
        ValidationMeanIoU(val.images * 255.0, val.masks, classes),
        keras.callbacks.EarlyStopping(monitor="val_miou", mode="max", patience=patience, restore_best_weights=True),
        BestCheckpoint(os.path.join(out_dir, "model.keras"), monitor="val_miou"),
    ]
    history = model.fit(segmentation_dataset(train.images * 255.0, train.masks, batch_size, seed, augment),
                        validation_data=segmentation_dataset(val.images * 255.0, val.masks, batch_size, seed),
                        epochs=epochs, callbacks=callbacks, verbose=verbose)
    history = {k: [float(v) for v in values] for k, values in history.history.items()}
    return model, history
