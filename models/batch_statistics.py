"""Batch-norm statistics of a network measured on sample inputs.

A randomly initialised deep network keeps batch norm's initial statistics (mean 0, variance 1), and
its activations fade layer by layer (to ~1e-8 of the input in MobileNetV3, ~1e-10 in MobileNetV2), so
every input gets the same output and an int8 file calibrated on it quantizes ranges near zero. With
each batch norm's statistics set to those of real images, the activations of an untrained network
have the ranges of a trained one: what latency benchmarks of untrained architectures and tests of
int8 conversion need.
"""
from keras_layers.keras_api import keras


def batch_norms(model):
    """The batch-norm layers of ``model``, those of nested models included."""
    norms = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            norms.append(layer)
        elif isinstance(layer, keras.Model):
            norms += batch_norms(layer)
    return norms


def calibrate_batch_norm(model, x):
    """Set every batch norm's moving statistics to those of ``x`` (one training-mode pass at momentum 0)
    and return the model."""
    norms = batch_norms(model)
    momenta = [layer.momentum for layer in norms]
    for layer in norms:
        layer.momentum = 0.0
    try:
        model(x, training=True)
    finally:
        for layer, momentum in zip(norms, momenta):
            layer.momentum = momentum
    return model
