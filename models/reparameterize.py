"""One call from a trained multi-branch model to its deploy form (structural re-parameterization).

Every layer implementing ``keras_layers.protocol.Foldable`` (``fold()`` and a ``deploy``
config entry; ``keras_layers.reparam``: RepVGG blocks, RMNet Reserve-and-Merge residual blocks) is
replaced by its ``deploy=True`` form carrying the folded weights; every other layer is cloned
with its weights. The outputs are unchanged with batch norm in inference mode (Ding et al.,
"RepVGG", CVPR 2021; Meng et al., "RMNet", 2021).

``plain_network`` goes one step further: the deploy form as a chain of Keras built-in layers
(zero padding, convolution, ReLU; the ``HasPlainLayers`` hook), which is what RMNet's removal of
the residual connections is for: every convolution's width becomes free to prune
(``tflite.qsfm``), including the block outputs that the shortcuts of a ResNet tie together.
"""
from keras_layers.keras_api import keras
from keras_layers.protocol import Foldable, HasPlainLayers, deploy_form, implements


def _deploy_layer(layer):
    if implements(layer, Foldable):
        return deploy_form(layer)
    return type(layer).from_config(layer.get_config())


def reparameterize(model):
    """Return a new functional ``keras.Model``: ``model`` with every foldable block folded."""
    if not isinstance(model, keras.Model) or not hasattr(model, "inputs") or not model.inputs:
        raise ValueError(f"reparameterize needs a built functional keras.Model, got {type(model).__name__}")
    deployed = keras.models.clone_model(model, clone_function=_deploy_layer)
    for layer, target in zip(model.layers, deployed.layers):  # clone_model keeps the layer order
        target.set_weights(layer.fold() if implements(layer, Foldable) else layer.get_weights())
    return deployed


def _clone(layer):
    return [(type(layer).from_config(layer.get_config()), layer.get_weights())]


def plain_network(model):
    """Return ``model``'s deploy form with each folded block spelled out as built-in layers
    (``plain_layers()`` of ``keras_layers.reparam``); ``model`` must be a chain (each layer reads
    the previous one), as RepVGG and RMNet networks are."""
    deployed = reparameterize(model)
    chain = deployed.layers
    if any(layer.input is not previous.output for previous, layer in zip(chain, chain[1:])):
        raise ValueError(f"plain_network needs a chain of layers, and {model.name} branches")
    x = inputs = keras.Input(deployed.input_shape[1:])
    for layer in chain[1:]:
        for plain, weights in layer.plain_layers() if implements(layer, HasPlainLayers) else _clone(layer):
            x = plain(x)
            plain.set_weights(weights)
    return keras.Model(inputs, x, name=f"{deployed.name}_plain")
