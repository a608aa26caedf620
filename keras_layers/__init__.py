"""Custom Keras layers and quantizers from the efficiency literature.

This package knows nothing of models; ``models`` builds networks from it.
"""
from keras_layers.keras_api import LEGACY_KERAS, keras, serializable

__all__ = ["keras", "LEGACY_KERAS", "serializable"]
