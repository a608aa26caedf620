"""Nonlocal PIDE layers (Bohn, Griebel, Kannan, 2022; ``keras_layers.pide``) against a 3x3
convolution (local, the baseline) and a dense global operator, all keeping the input shape.

Each PIDE layer is a residual step x - tau A x with A a per-channel function of the grid
Laplacian, applied in its separable eigenbasis: four (n x n) basis matmuls and one elementwise
product, HWC (2H + 2W + 1) multiply-adds. ``dense_global`` is the operator a PIDE layer is as a
matrix, one trainable HW x HW map shared by the channels (the channels moved first, a Dense over
the flattened map): (HW)^2 C multiply-adds, what the separable basis saves.
"""
from keras_layers.keras_api import keras
from keras_layers.pide import FractionalLaplacian, GlobalWeightedLaplacian, InverseFractionalLaplacian
from mobilekit.suites import one_layer_model

layers = keras.layers

DESCRIPTION = "PIDE nonlocal layers vs Conv2D 3x3 and a dense global HW x HW operator (same shape)"
SHAPES = ((16, 16, 64), (32, 32, 32))


def dense_global(shape):
    """y[:, :, :, c] = A x[:, :, :, c] with one (HW x HW) matrix A for all channels."""
    height, width, channels = shape
    inputs = keras.Input(shape=shape)
    x = layers.Reshape((channels, height * width))(layers.Permute((3, 1, 2))(inputs))
    x = layers.Dense(height * width, use_bias=False)(x)
    outputs = layers.Permute((2, 3, 1))(layers.Reshape((channels, height, width))(x))
    return keras.Model(inputs, outputs)


def candidates(shape):
    return [
        ("conv3x3", lambda: one_layer_model(shape, layers.Conv2D(shape[-1], 3, padding="same"))),
        ("dense_global", lambda: dense_global(shape)),
        ("fractional", lambda: one_layer_model(shape, FractionalLaplacian())),
        ("inverse_fractional", lambda: one_layer_model(shape, InverseFractionalLaplacian())),
        ("weighted", lambda: one_layer_model(shape, GlobalWeightedLaplacian())),
    ]
