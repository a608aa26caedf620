"""ConformalLayers (Sousa et al.): the composed operator at depth 1, 2, 4 and 8 against the depth-8
network evaluated layer by layer.

Each level is a 3x3 valid convolution (no bias, 16 filters) followed by ReSPro, on MNIST- and
CIFAR-sized inputs. Composed, a network is one convolution (kernel 2 * depth + 1) plus the
quadratic form x^T Q x (an n x n FULLY_CONNECTED, n the input size), whatever its depth.
"""
from keras_layers.conformal import ConformalLayers, ReSPro
from keras_layers.keras_api import keras
from mobilekit.suites import one_layer_model

DESCRIPTION = "ConformalLayers: composed operator at depth 1-8 vs layer by layer at depth 8"
SHAPES = ((28, 28, 1), (32, 32, 3))
FILTERS = 16


def network(depth, inference="composed"):
    """``depth`` levels of Conv2D(FILTERS, 3, valid, no bias) + ReSPro as one ConformalLayers."""
    sequence = [layer for _ in range(depth) for layer in (keras.layers.Conv2D(FILTERS, 3, use_bias=False), ReSPro())]
    return ConformalLayers(sequence, inference=inference)


def candidates(shape):
    composed = [(f"composed_d{depth}", lambda depth=depth: one_layer_model(shape, network(depth)))
                for depth in (1, 2, 4, 8)]
    return [*composed, ("layers_d8", lambda: one_layer_model(shape, network(8, "layers")))]
