"""The PIDE classifier and segmenter: shapes, operator variants as data, MACs, TFLite, training."""
import numpy as np
import pytest

import layer_contract
from keras_layers.keras_api import keras
from keras_layers.pide import FractionalLaplacian, GlobalWeightedLaplacian, InverseFractionalLaplacian
from models import profile
from models.pide_nets import OPERATORS, pide_classifier, pide_segmenter
from tflite import convert, custom_operators


def pide_layers(model):
    return [layer for layer in model.layers if isinstance(layer, tuple(OPERATORS.values()))]


@pytest.mark.parametrize("operator, cls", [("fractional", FractionalLaplacian),
                                           ("inverse", InverseFractionalLaplacian),
                                           ("weighted", GlobalWeightedLaplacian)])
def test_operator_is_data_and_profile_counts_its_macs(operator, cls):
    model, local = pide_classifier(operator=operator), pide_classifier(operator=None)
    blocks = pide_layers(model)
    assert [type(b) for b in blocks] == [cls, cls] and not pide_layers(local)
    assert [b.input.shape[1:] for b in blocks] == [(8, 8, 24), (4, 4, 32)]
    assert model.count_params() - local.count_params() == 2 * (24 + 32)  # per channel: exponent or width, rate
    cost = profile(model)
    assert all(cost["layers"][b.name] == b.count_macs() > 0 for b in blocks)
    assert cost["macs"] == profile(local)["macs"] + sum(b.count_macs() for b in blocks)


def test_classifier_head_follows_keras_applications():
    assert pide_classifier(input_shape=(48, 40, 3), classes=7).output_shape == (None, 7)
    assert pide_classifier(include_top=False, pooling="avg", alpha=0.5).output_shape == (None, 256)
    assert pide_classifier(include_top=False, alpha=2.0).output_shape == (None, 2, 2, 512)  # output stride 16


def test_segmenter_gives_per_pixel_probabilities_with_a_pide_bottleneck():
    model = pide_segmenter(input_shape=(48, 64, 3), classes=5, operator="weighted")
    assert model.output_shape == (None, 48, 64, 5)
    (block,) = pide_layers(model)
    assert block.input.shape[1:] == (6, 8, 64)
    probabilities = np.asarray(model(layer_contract.random_inputs((48, 64, 3), count=2)))
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, atol=1e-5)


def test_networks_convert_to_builtin_int8_tflite():
    data = layer_contract.random_inputs((32, 32, 3), count=8)
    for model in (pide_classifier(operator="inverse"), pide_segmenter(input_shape=(32, 32, 3))):
        assert custom_operators(convert(model, "int8", representative_data=data)) == [], model.name


@pytest.mark.parametrize("call, message", [
    (lambda: pide_classifier(operator="fft"), "operator"),
    (lambda: pide_segmenter(input_shape=(36, 32, 3)), "multiples of the output stride 8"),
    (lambda: pide_segmenter(weights="imagenet"), "weights")])
def test_bad_arguments_get_one_line_errors(call, message):
    with pytest.raises(ValueError, match=message) as error:
        call()
    assert "\n" not in str(error.value)


@pytest.mark.slow
def test_pide_classifier_learns_digits(tmp_path):
    from models.data import load_digits_data
    from models.train import evaluate_accuracy, train_classifier, with_preprocessing

    keras.utils.set_random_seed(0)
    data = load_digits_data(32)
    model = with_preprocessing(pide_classifier(input_shape=(32, 32, 3), alpha=0.5, classes=10))
    model, history = train_classifier(model, data, str(tmp_path), epochs=4, batch_size=64, learning_rate=5e-3,
                                      verbose=0)
    assert evaluate_accuracy(model, data.test) > 0.6, history["val_accuracy"]
