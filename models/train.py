"""Training recipe for classifiers: augmentation, Adam with cosine decay, early stopping and
an atomically written best checkpoint.

Models trained here take RGB pixels in [0, 255]: ``with_preprocessing`` puts the
[-1, 1] scaling MobileNets expect inside the model, so the exported ``.tflite``
(and the camera demo) feed raw pixels, and a uint8 int8 model's input scale is ~1.
"""
import os

import numpy as np
import tensorflow as tf

from keras_layers.keras_api import keras
from models.files import atomic_output

layers = keras.layers


def with_preprocessing(backbone):
    """Wrap ``backbone`` so that it takes pixels in [0, 255] and scales them to [-1, 1]."""
    inputs = keras.Input(shape=backbone.inputs[0].shape[1:], name="pixels")
    outputs = backbone(layers.Rescaling(1.0 / 127.5, offset=-1.0, name="scale_to_unit")(inputs))
    return keras.Model(inputs, outputs, name=backbone.name)


def set_batchnorm_momentum(model, momentum):
    """Set the moving-statistics momentum of every BatchNormalization layer, nested ones too.

    ImageNet recipes use 0.999 (keras.applications); on small data sets a few hundred steps
    leave such moving averages near their initial values, so evaluation sees chance-level
    features. 0.9 lets them converge within the first epochs. The walk reaches the batch
    norms inside nested models and inside the kit's composite layers (e.g. ``GhostModule``)
    through ``_flatten_layers``, which both Keras generations provide.
    """
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = momentum


def augmenter(seed):
    """Light geometric augmentation suitable for digits and small object photos."""
    return keras.Sequential([
        layers.RandomTranslation(0.1, 0.1, fill_mode="constant", seed=seed),
        layers.RandomRotation(0.04, fill_mode="constant", seed=seed),
        layers.RandomZoom(0.1, fill_mode="constant", seed=seed),
    ], name="augment")


def _dataset(images, labels, batch_size, seed=0, training=False, augment=None):
    """Batches of (images, labels). Training batches are reshuffled every epoch and all full: a
    partial last batch made oneDNN crash (segfault) in training RepVGG blocks on x86."""
    data = tf.data.Dataset.from_tensor_slices((images.astype(np.float32), labels))
    if training:
        data = data.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True).batch(batch_size,
                                                                                          drop_remainder=True)
    else:
        data = data.batch(batch_size)
    if augment is not None:
        data = data.map(lambda x, y: (augment(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE)
    return data.prefetch(tf.data.AUTOTUNE)


class BestCheckpoint(keras.callbacks.Callback):
    """Save the model whenever ``monitor`` improves, through a temporary file and a rename."""

    def __init__(self, path, monitor="val_accuracy"):
        super().__init__()
        self.path, self.monitor, self.best = path, monitor, -np.inf

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is not None and value > self.best:
            self.best = value
            with atomic_output(self.path) as tmp:
                self.model.save(tmp)


def train_classifier(model, data, out_dir, epochs=40, batch_size=64, learning_rate=3e-3, patience=10,
                     seed=0, augment=True, bn_momentum=0.9, verbose=2):
    """Train ``model`` (pixels in, class probabilities out) on ``data`` and write to ``out_dir``.

    Writes ``model.keras`` (best validation accuracy). Returns ``(model, history)`` with the best
    weights restored and history as a dict.
    """
    keras.utils.set_random_seed(seed)
    set_batchnorm_momentum(model, bn_momentum)
    (x_train, y_train), (x_val, y_val) = data.train, data.validation
    batch_size = min(batch_size, len(y_train))
    steps = epochs * (len(y_train) // batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps)
    model.compile(optimizer=keras.optimizers.Adam(schedule),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    checkpoint = os.path.join(out_dir, "model.keras")
    callbacks = [
        keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=patience, restore_best_weights=True),
        BestCheckpoint(checkpoint),
    ]
    history = model.fit(
        _dataset(x_train, y_train, batch_size, seed, training=True, augment=augmenter(seed) if augment else None),
        validation_data=_dataset(x_val, y_val, batch_size),
        epochs=epochs, callbacks=callbacks, shuffle=False, verbose=verbose)  # the dataset shuffles itself
    history = {k: [float(v) for v in values] for k, values in history.history.items()}
    return model, history


def evaluate_accuracy(model, images, labels, batch_size=128):
    """Top-1 accuracy of a Keras classifier on uint8 images."""
    probabilities = model.predict(images.astype(np.float32), batch_size=batch_size, verbose=0)
    return float(np.mean(np.argmax(probabilities, axis=-1) == labels))
