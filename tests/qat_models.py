"""Models that quantization-aware training is tested on, under either Keras generation."""
from keras_layers.keras_api import keras


def kit_layer_chain():
    """One layer (or more) of every custom family that supports QAT, in one small model.

    Not here: binary / low-bit quantizer layers (they quantize themselves), RepVGG/RMNet blocks
    in their training form (QAT the folded deploy form, ``models.reparameterize``).
    """
    from keras_layers.activations import HardSigmoid, HardSwish, SqueezeExcite
    from keras_layers.channel_diversification import ChannelDiversification
    from keras_layers.conformal import ConformalLayers, ReSPro
    from keras_layers.ffconv import FFConv
    from keras_layers.ghost import GhostBottleneck
    from keras_layers.mgic import MGICBlock
    from keras_layers.pide import FractionalLaplacian
    from keras_layers.reparam import RepVGGBlock
    from keras_layers.wht import WHT1D

    layers = keras.layers
    inputs = keras.Input((8, 8, 8))
    x = layers.Conv2D(8, 1)(inputs)
    for layer in (HardSwish(), SqueezeExcite(4), GhostBottleneck(12, 8, se_channels=4), WHT1D(8),
                  FFConv(8, 3, rank=3), ChannelDiversification(), MGICBlock(group_size=4), FractionalLaplacian(),
                  RepVGGBlock(8, deploy=True), HardSigmoid(),
                  ConformalLayers([layers.Conv2D(8, 3, use_bias=False), ReSPro()])):
        x = layer(x)
    return keras.Model(inputs, layers.Dense(4)(layers.GlobalAveragePooling2D()(x)))
