"""Benchmark suites: a layer and the layers it replaces, timed side by side in TFLite.

Each module here is one suite, named after the module. It defines

    SHAPES: input shapes (no batch axis) to time at, e.g. ((28, 28, 256), (56, 56, 128))
    candidates(shape) -> list of (label, build) where build() returns a keras.Model taking
        ``shape``; the first entry is the baseline the others are compared with.

and, optionally, ``DESCRIPTION`` (one line for the report).
"""
import importlib
import pkgutil

from keras_layers.keras_api import keras


def suite_names():
    """Names of the available suites."""
    return sorted(module.name for module in pkgutil.iter_modules(__path__) if not module.name.startswith("_"))


def load_suite(name):
    """The suite module called ``name``."""
    if name not in suite_names():
        raise ValueError(f"unknown benchmark suite {name!r}: expected one of {', '.join(suite_names()) or 'none'}")
    return importlib.import_module(f"{__name__}.{name}")


def one_layer_model(shape, layer):
    """A ``keras.Model`` applying ``layer`` to inputs of ``shape`` (no batch axis): a candidate's build."""
    inputs = keras.Input(shape=shape)
    return keras.Model(inputs, layer(inputs))
