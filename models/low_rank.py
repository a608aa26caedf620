"""Low-rank factorization of a trained network: every d x d convolution (d > 1) becomes an FFConv.

``factorize(model, rank_fraction)`` replaces each square, undilated, ungrouped ``Conv2D`` with
kernel size > 1 by ``keras_layers.ffconv.factorize_conv2d`` of it at rank
``ceil(rank_fraction * C_out)`` (the truncated SVD, the best rank-r approximation of the
reshaped kernel), and keeps every other layer with its weights. Multiply-adds of a factorized
layer go from d^2 C_in C_out to (d^2 C_in + C_out) r per output pixel (Lu et al., "FFConv", 2021).
"""
import math

from keras_layers.ffconv import factorize_conv2d
from keras_layers.keras_api import keras


def _factorizable(layer):
    return (type(layer) is keras.layers.Conv2D and layer.kernel_size[0] == layer.kernel_size[1] > 1
            and tuple(layer.dilation_rate) == (1, 1) and layer.groups == 1 and len(set(layer.strides)) == 1)


def factorize(model, rank_fraction):
    """Return ``(factorized_model, errors)``: ``model`` with its d x d convolutions as FFConvs and
    {layer name: relative Frobenius error of its kernel}."""
    if not 0.0 < rank_fraction <= 1.0:
        raise ValueError(f"rank_fraction must be in (0, 1], got {rank_fraction!r}")
    errors = {}

    def replace(layer):
        if not _factorizable(layer):
            return type(layer).from_config(layer.get_config())
        ffconv, errors[layer.name] = factorize_conv2d(layer, math.ceil(rank_fraction * layer.filters),
                                                      name=layer.name)
        return ffconv

    factorized = keras.models.clone_model(model, clone_function=replace)
    for layer, target in zip(model.layers, factorized.layers):  # clone_model keeps the layer order
        if layer.name not in errors:
            target.set_weights(layer.get_weights())
    return factorized, errors
