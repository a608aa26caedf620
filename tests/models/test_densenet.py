import numpy as np
import pytest

import layer_contract
from keras_layers.keras_api import keras
from models.densenet import (THRESHNET_79, HarmonicStage, densenet, harmonic_links, hardnet, threshnet)

TINY = (HarmonicStage(4, 8, 16, True), HarmonicStage(8, 6, 24, False))


def fan_in(model, name):
    """How many earlier outputs a layer reads: its input concatenation, or 1 without one."""
    try:
        return len(model.get_layer(name).input)
    except ValueError:
        return 1


def test_densenet121_parameter_count_equals_keras_applications():
    ours, reference = densenet(), keras.applications.DenseNet121(weights=None)
    assert ours.count_params() == reference.count_params() == 8_062_504
    assert len(ours.trainable_weights) == len(reference.trainable_weights)
    headless = densenet(input_shape=(64, 64, 3), include_top=False, pooling="avg")
    assert tuple(headless.output.shape) == (None, 1024)


@pytest.mark.parametrize("k", range(1, 65))
def test_harmonic_links_follow_the_rule(k):
    """Layer k reads k - 2^n exactly for the n with 2^n dividing k."""
    assert sorted(harmonic_links(k)) == sorted(k - 2 ** n for n in range(7) if k % 2 ** n == 0)


def test_hardnet_wiring_and_widths_follow_the_harmonic_rule():
    model = hardnet(stages=TINY, classes=3)
    for block, stage in enumerate(TINY, start=1):
        widths = [64 if block == 1 else TINY[block - 2].channels]  # layer 0: the block input
        for k in range(1, stage.repeats + 1):
            links = harmonic_links(k)
            assert fan_in(model, f"block{block}_layer{k}_in") == len(links)
            width = stage.growth * 1.7 ** (len(links) - 1)
            widths.append(int(int(width + 1) / 2) * 2)
            kernel = model.get_layer(f"block{block}_layer{k}").kernel
            assert tuple(kernel.shape[2:]) == (sum(widths[j] for j in links), widths[k])
        out = model.get_layer(f"block{block}_out").output
        assert out.shape[-1] == sum(widths[j] for j in range(1, stage.repeats + 1) if j % 2 or j == stage.repeats)


@pytest.mark.parametrize("threshold", [0, 3, 5])
def test_threshnet_connections_follow_the_threshold(threshold):
    model = threshnet(threshold=threshold)
    counts = []
    for block, stage in enumerate(THRESHNET_79, start=1):
        for k in range(1, stage.repeats + 1):
            expected = k if block <= threshold else len(harmonic_links(k))  # dense keeps all k earlier outputs
            assert fan_in(model, f"block{block}_layer{k}_in") == expected
            counts.append(expected)
    dense_total = sum(k for stage in THRESHNET_79 for k in range(1, stage.repeats + 1))
    harmonic_total = sum(len(harmonic_links(k)) for stage in THRESHNET_79 for k in range(1, stage.repeats + 1))
    assert sum(counts) == {0: harmonic_total, 5: dense_total}.get(threshold, sum(counts))
    if threshold == 3:
        assert harmonic_total < sum(counts) < dense_total
    assert tuple(model.output.shape) == (None, 10)


def test_forward_shapes_and_bad_threshold():
    x = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    probabilities = np.asarray(threshnet(stages=TINY, threshold=1, classes=4)(x, training=False))
    assert probabilities.shape == (2, 4)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-5)
    features = threshnet(stages=TINY, threshold=1, include_top=False)
    assert tuple(features.output.shape) == (None, 4, 4, 24)
    with pytest.raises(ValueError, match="threshold") as error:
        threshnet(stages=TINY, threshold=3)
    assert "\n" not in str(error.value)


def test_tiny_threshnet_converts_to_builtin_tflite():
    model = threshnet(stages=TINY, threshold=1, classes=5, classifier_activation=None)
    layer_contract.assert_tflite_matches_keras(model, (32, 32, 3), samples=16)


def test_serialization_round_trip(tmp_path):
    model = threshnet(stages=TINY, threshold=1, classes=4)
    model.save(str(tmp_path / "t.keras"))
    restored = keras.models.load_model(str(tmp_path / "t.keras"))
    x = np.random.default_rng(1).uniform(-1, 1, (1, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(restored(x, training=False), model(x, training=False), atol=1e-6)
