"""Cost profile of a Keras model: parameters and multiply-accumulates (MACs).

MACs follow the MobileNet papers' convention (Sze et al., "Efficient Processing of Deep
Neural Networks", 2017, section on metrics): one forward pass at batch 1, counting the
multiply-adds of convolutions, depthwise convolutions and dense layers; batch norm
(folded into the preceding convolution at inference), activations, pooling and
additions are not counted.

    Conv2D          H_out * W_out * k_h * k_w * (C_in / groups) * C_out
    DepthwiseConv2D H_out * W_out * k_h * k_w * C_in * depth_multiplier
    Dense           (product of the non-batch, non-channel output dims) * C_in * units

A kit layer states its own cost by defining ``count_macs()`` (MACs of one call at batch
1 for its built shapes, counted as its paper counts them); ``profile`` uses it when present.
"""
import math

from keras_layers.keras_api import keras

layers = keras.layers


def _spatial(shape):
    """Product of the dimensions between batch and channels."""
    return math.prod(int(d) for d in shape[1:-1])


def _kernel_macs(layer):
    """Output positions times kernel size: the kernel is the first weight of each counted layer."""
    return _spatial(layer.output.shape) * math.prod(int(d) for d in layer.weights[0].shape)


# Layers whose multiply-adds are counted; all three share the formula above because their
# kernels are (k_h, k_w, C_in/groups, C_out), (k_h, k_w, C_in, multiplier) and (C_in, units).
COUNTED_LAYERS = (layers.Conv2D, layers.DepthwiseConv2D, layers.Dense)


def _leaf_layers(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _leaf_layers(layer)
        else:
            yield layer


def layer_macs(layer):
    """MACs of one built layer at batch 1 (0 for layers that do no multiply-adds)."""
    if hasattr(layer, "count_macs"):
        return int(layer.count_macs())
    return _kernel_macs(layer) if isinstance(layer, COUNTED_LAYERS) else 0


def profile(model):
    """Return ``{"params", "trainable_params", "macs", "layers"}`` for a built model.

    ``layers`` maps each layer that does multiply-adds to its MACs, so a table of where
    the cost goes is one sort away.
    """
    per_layer = {layer.name: layer_macs(layer) for layer in _leaf_layers(model)}
    trainable = sum(math.prod(int(d) for d in w.shape) for w in model.trainable_weights)
    return {
        "params": int(model.count_params()),
        "trainable_params": int(trainable),
        "macs": int(sum(per_layer.values())),
        "layers": {name: macs for name, macs in per_layer.items() if macs},
    }
