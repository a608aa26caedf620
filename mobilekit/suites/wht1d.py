"""1D block-WHT layer (Pan et al.) against the 1x1 convolution it replaces, channels kept.

``wht1d`` transforms all channels as one block; ``wht1d_b64`` uses blocks of 64 channels
(the paper's block division), each one FULLY_CONNECTED kernel in TFLite.
"""
from keras_layers.keras_api import keras
from keras_layers.wht import WHT1D
from mobilekit.suites import one_layer_model

DESCRIPTION = "1D block-WHT layer vs Conv2D 1x1 (same channels)"
SHAPES = ((28, 28, 256), (56, 56, 128))


def candidates(shape):
    return [
        ("conv1x1", lambda: one_layer_model(shape, keras.layers.Conv2D(shape[-1], 1))),
        ("wht1d", lambda: one_layer_model(shape, WHT1D(shape[-1]))),
        ("wht1d_b64", lambda: one_layer_model(shape, WHT1D(shape[-1], block_size=64))),
    ]
