"""Cost profile of a Keras model: parameters and multiply-accumulates (MACs).

MACs follow the MobileNet papers' convention (Sze et al., "Efficient Processing of Deep
Neural Networks", 2017, section on metrics): one forward pass at batch 1, counting the
multiply-adds of convolutions, depthwise convolutions and dense layers; batch norm
(folded into the preceding convolution at inference), activations, pooling and
additions are not counted.

    Conv2D          H_out * W_out * k_h * k_w * (C_in / groups) * C_out
    DepthwiseConv2D H_out * W_out * k_h * k_w * C_in * depth_multiplier
    Dense           (product of the non-batch, non-channel output dims) * C_in * units

A kit layer states its own cost through the ``CountsMacs`` hook of ``keras_layers.protocol``
(``count_macs()``: MACs of one call at batch 1 for its built shapes, counted as its paper
counts them); ``profile`` uses it when present.

Binary and low-bit layers (``keras_layers.binary``) add operand bit widths. ACE, the
arithmetic computation effort of PokeBNN (Zhang et al., CVPR 2022), weights each MAC by the
bit widths of its two operands (the hooks are declared in ``keras_layers.protocol``):

    ACE = sum over MACs of input_bits * kernel_bits

so a float MAC counts 32 * 32 = 1024, an int8 one 64 and a binary (XNOR + popcount) one 1;
``binary_macs`` counts the MACs with both operands 1-bit. A layer states its operand widths
through ``OperandBits`` (``input_bits`` and ``kernel_bits`` attributes; 32 when absent), or,
when it mixes widths (a block of several convolutions), through ``MacsByBits``
(``macs_by_bits()`` returning ``[(input_bits, kernel_bits, macs), ...]``). ``weight_bits`` is
the storage of all weights: 32 bits per value unless the layer states its own through
``CountsWeightBits`` (``count_weight_bits()``).
"""
import math

from keras_layers.keras_api import keras
from keras_layers.protocol import CountsMacs, CountsWeightBits, MacsByBits, implements, operand_bits
from keras_layers.quantizers import FLOAT_BITS

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


def leaf_layers(model):
    """The layers of ``model`` that are not models themselves (nested models are walked through)."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from leaf_layers(layer)
        else:
            yield layer


def layer_macs(layer):
    """MACs of one built layer at batch 1 (0 for layers that do no multiply-adds)."""
    if implements(layer, CountsMacs):
        return int(layer.count_macs())
    return _kernel_macs(layer) if isinstance(layer, COUNTED_LAYERS) else 0


def layer_macs_by_bits(layer):
    """``[(input_bits, kernel_bits, macs), ...]`` of one built layer (see the module docstring)."""
    if implements(layer, MacsByBits):
        return [(int(a), int(b), int(macs)) for a, b, macs in layer.macs_by_bits()]
    return [(*operand_bits(layer), layer_macs(layer))]


def layer_weight_bits(layer):
    """Storage of one layer's weights in bits."""
    if implements(layer, CountsWeightBits):
        return int(layer.count_weight_bits())
    return FLOAT_BITS * sum(math.prod(int(d) for d in w.shape) for w in layer.weights)


def profile(model):
    """Return ``{"params", "trainable_params", "macs", "binary_macs", "ace", "weight_bits",
    "layers"}`` for a built model.

    ``layers`` maps each layer that does multiply-adds to its MACs, so a table of where
    the cost goes is one sort away.
    """
    leaves = list(leaf_layers(model))
    per_layer = {layer.name: layer_macs(layer) for layer in leaves}
    by_bits = [term for layer in leaves for term in layer_macs_by_bits(layer)]
    trainable = sum(math.prod(int(d) for d in w.shape) for w in model.trainable_weights)
    return {
        "params": int(model.count_params()),
        "trainable_params": int(trainable),
        "macs": int(sum(per_layer.values())),
        "binary_macs": sum(macs for a, b, macs in by_bits if a == b == 1),
        "ace": sum(a * b * macs for a, b, macs in by_bits),
        "weight_bits": sum(layer_weight_bits(layer) for layer in leaves),
        "layers": {name: macs for name, macs in per_layer.items() if macs},
    }
