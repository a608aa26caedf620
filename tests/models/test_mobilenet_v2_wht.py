import numpy as np
import pytest
import tensorflow as tf

from keras_layers.keras_api import keras
from keras_layers.wht import WHT1D
from models import build, mobilenet_v2, profile
from models.mobilenet_v2 import MOBILENET_V2_WHT
from tflite import convert, custom_operators

CIFAR = {"input_shape": (32, 32, 3), "alpha": 1.0, "classes": 10}
REPLACED = [f"block{b}_{step}" for b in range(12, 17) for step in ("expand", "project")] + ["head"]


def test_parameter_counts_are_the_papers():
    # Pan et al. 2021 on CIFAR-10: MobileNetV2 2.270M parameters; 1x1 convolutions of the last
    # bottlenecks as WHT layers 947K (first version), and with the last 1x1 layer too 540K.
    plain = mobilenet_v2(**CIFAR).count_params()
    last_blocks = mobilenet_v2(**CIFAR, stages=MOBILENET_V2_WHT).count_params()
    wht = mobilenet_v2(**CIFAR, pointwise="wht1d").count_params()
    assert plain == 2_270_794
    assert last_blocks == pytest.approx(947e3, rel=0.002)
    assert wht == pytest.approx(540e3, rel=0.002)


def test_the_papers_1x1_convolutions_are_swapped_and_the_rest_kept():
    plain = mobilenet_v2(input_shape=(64, 64, 3), alpha=0.35)
    model = mobilenet_v2(input_shape=(64, 64, 3), alpha=0.35, pointwise="wht1d")
    assert [layer.name for layer in model.layers if isinstance(layer, WHT1D)] == REPLACED
    for layer, original in zip(model.layers[1:], plain.layers[1:], strict=True):
        assert layer.name == original.name and layer.output.shape == original.output.shape
        if isinstance(layer, WHT1D):
            assert isinstance(original, keras.layers.Conv2D) and original.kernel_size == (1, 1)
        else:
            assert type(layer) is type(original)
    assert model.name.endswith("_wht1d") and tuple(model.output.shape) == (None, 1000)


def test_profile_counts_the_wht_layers_as_free_of_multiplications():
    plain, wht = (mobilenet_v2(**CIFAR, pointwise=p) for p in ("conv", "wht1d"))
    plain_cost, wht_cost = profile(plain), profile(wht)
    assert wht_cost["macs"] == plain_cost["macs"] - sum(plain_cost["layers"][name] for name in REPLACED)
    assert not set(REPLACED) & set(wht_cost["layers"])
    kernels = sum(plain.get_layer(name).count_params() for name in REPLACED)
    thresholds = sum(wht.get_layer(name).count_params() for name in REPLACED)
    assert thresholds == 10 * 1024 + 2048  # one per coefficient: 576, 960 -> 1024; 1280 -> 2048
    assert plain_cost["params"] - wht_cost["params"] == kernels - thresholds


def test_registry_bad_arguments_and_a_training_step():
    model = build("mobilenet_v2_wht", input_shape=(32, 32, 3), alpha=0.35, classes=4)
    assert sum(isinstance(layer, WHT1D) for layer in model.layers) == len(REPLACED)
    with pytest.raises(ValueError, match="pointwise") as error:
        mobilenet_v2(input_shape=(32, 32, 3), pointwise="fft")
    assert "\n" not in str(error.value)
    x = np.random.default_rng(0).uniform(-1, 1, (4, 32, 32, 3)).astype("float32")
    with tf.GradientTape() as tape:
        loss = keras.losses.sparse_categorical_crossentropy(np.arange(4), model(x, training=True))
    gradients = tape.gradient(loss, model.trainable_weights)
    thresholds = [g for g, w in zip(gradients, model.trainable_weights) if "threshold" in w.name]
    assert len(thresholds) == len(REPLACED) and all(g is not None and np.any(g != 0) for g in thresholds)


def test_round_trip_and_builtin_tflite(tmp_path):
    model = mobilenet_v2(input_shape=(32, 32, 3), alpha=0.35, classes=4, pointwise="wht1d")
    path = str(tmp_path / "wht.keras")
    model.save(path)
    x = np.random.default_rng(1).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(keras.models.load_model(path)(x, training=False), model(x, training=False), atol=1e-6)
    for quantization in ("fp32", "int8"):
        assert custom_operators(convert(model, quantization, representative_data=x)) == []
