"""Shared by the pretrained-weights tests of both Keras generations: keras.applications models with
seeded random weights (batch-norm statistics too), saved as weights files."""
import numpy as np

from keras_layers.keras_api import LEGACY_KERAS, keras
from models import densenet, mobilenet_v2, mobilenet_v3_large, mobilenet_v3_small, resnet50

# name: (keras.applications builder, kit builder, input size, width arguments)
CASES = {
    "mobilenet_v2_0.35": ("MobileNetV2", mobilenet_v2, 96, {"alpha": 0.35}),
    "mobilenet_v2_1.3": ("MobileNetV2", mobilenet_v2, 96, {"alpha": 1.3}),
    "mobilenet_v3_large": ("MobileNetV3Large", mobilenet_v3_large, 64, {"alpha": 1.0}),
    "mobilenet_v3_small": ("MobileNetV3Small", mobilenet_v3_small, 64, {"alpha": 0.75}),
    "resnet50": ("ResNet50", resnet50, 32, {}),
    "densenet121": ("DenseNet121", densenet, 32, {}),
}
SUFFIX = ".h5" if LEGACY_KERAS else ".weights.h5"  # tf_keras writes legacy HDF5, Keras 3 its own format


def randomize(model, seed=0):
    """Every weight of ``model`` set to seeded random values, variances positive."""
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        values = rng.uniform(0.5, 1.5, weight.shape) if "variance" in weight.name else rng.normal(0, 0.1, weight.shape)
        weight.assign(values.astype(np.float32))
    return model


def reference(case, include_top=True, seed=0, **kwargs):
    """The ``keras.applications`` model of ``case`` (logits), seeded random weights."""
    application, _, size, widths = CASES[case]
    options = {"include_preprocessing": False} if application.startswith("MobileNetV3") else {}
    model = getattr(keras.applications, application)(input_shape=(size, size, 3), include_top=include_top,
                                                     weights=None, classifier_activation=None,
                                                     **widths, **options, **kwargs)
    return randomize(model, seed)


def saved(model, folder, name):
    """``model``'s weights written to ``folder/name`` + ``SUFFIX``; returns the path."""
    path = str(folder / f"{name}{SUFFIX}")
    model.save_weights(path)
    return path


def kit(case, weights, include_top=True, **kwargs):
    """The kit's model of ``case`` (logits) loading ``weights``."""
    _, builder, size, widths = CASES[case]
    return builder(input_shape=(size, size, 3), include_top=include_top, weights=weights,
                   classifier_activation=None, **widths, **kwargs)


def images(case, count=2, seed=1):
    size = CASES[case][2]
    return np.random.default_rng(seed).normal(size=(count, size, size, 3)).astype(np.float32)
