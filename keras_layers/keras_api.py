"""The one place that decides which Keras generation the kit uses.

Keras 3 (``keras``) is the default. Setting ``TF_USE_LEGACY_KERAS=1`` (the same switch
TensorFlow's ``tf.keras`` obeys) selects ``tf_keras`` (Keras 2), which TFMOT needs for
quantization-aware training and pruning. Every other module imports ``keras`` from here,
and layer ``call``s use TensorFlow ops, so one code base builds under both.
"""
import os

LEGACY_KERAS = os.environ.get("TF_USE_LEGACY_KERAS", "").strip().lower() in {"1", "true", "yes"}

if LEGACY_KERAS:
    import tf_keras as keras
else:
    import keras

__all__ = ["keras", "LEGACY_KERAS", "serializable"]


def serializable(cls):
    """Register a kit layer for Keras serialization (``.keras`` files) under ``mobilekit>``."""
    return keras.saving.register_keras_serializable(package="mobilekit")(cls)
