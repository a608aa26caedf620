"""Batch-norm statistics for randomly initialised test networks."""
from keras_layers.keras_api import keras


def calibrate_batch_norm(model, x):
    """Set every batch norm's moving statistics to those of ``x`` (one training-mode pass at momentum 0) and
    return the model: with the initial statistics (mean 0, variance 1) a random-weight deep network's
    activations fade (to ~1e-10 in MobileNetV2) and every input gets the same outputs."""
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in norms]
    for layer in norms:
        layer.momentum = 0.0
    model(x, training=True)
    for layer, momentum in zip(norms, momenta):
        layer.momentum = momentum
    return model
