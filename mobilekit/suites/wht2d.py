"""2D-FWHT layer (Pan et al.) against the 3x3 convolution it replaces, channels kept.

``wht2d`` transforms each channel's whole map (padded to powers of two, as in the paper);
``wht2d_4x4`` transforms 4x4 tiles (block WHT), all sharing 16 thresholds.
"""
from keras_layers.keras_api import keras
from keras_layers.wht import WHT2D
from mobilekit.suites import one_layer_model

DESCRIPTION = "2D-FWHT layer vs Conv2D 3x3 (same channels)"
SHAPES = ((28, 28, 256), (56, 56, 128))


def candidates(shape):
    return [
        ("conv3x3", lambda: one_layer_model(shape, keras.layers.Conv2D(shape[-1], 3, padding="same"))),
        ("wht2d", lambda: one_layer_model(shape, WHT2D())),
        ("wht2d_4x4", lambda: one_layer_model(shape, WHT2D(block_size=4))),
    ]
