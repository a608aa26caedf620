"""One call from a trained multi-branch model to its deploy form (structural re-parameterization).

Every layer with a ``fold()`` method and a ``deploy`` config entry (``keras_layers.rep``:
RepVGG blocks, RMNet Reserve-and-Merge residual blocks) is replaced by its ``deploy=True``
form carrying the folded weights; every other layer is cloned with its weights. The outputs
are unchanged with batch norm in inference mode (Ding et al., "RepVGG", CVPR 2021; Meng et
al., "RMNet", 2021).
"""
from keras_layers.keras_api import keras


def _deploy_layer(layer):
    config = layer.get_config()
    if hasattr(layer, "fold"):
        config["deploy"] = True
    return type(layer).from_config(config)


def reparameterize(model):
    """Return a new functional ``keras.Model``: ``model`` with every foldable block folded."""
    if not isinstance(model, keras.Model) or not hasattr(model, "inputs") or not model.inputs:
        raise ValueError(f"reparameterize needs a built functional keras.Model, got {type(model).__name__}")
    deployed = keras.models.clone_model(model, clone_function=_deploy_layer)
    for layer, target in zip(model.layers, deployed.layers):  # clone_model keeps the layer order
        target.set_weights(layer.fold() if hasattr(layer, "fold") else layer.get_weights())
    return deployed
