"""QSFM filter pruning: exact removal of copied maps, physical shapes, untouched parts unchanged."""
import numpy as np
import pytest

from keras_layers.keras_api import keras
from models import mobilenet_v2, profile, resnet20, rm_resnet
from models.reparameterize import plain_network
from models.repvgg import Stage
from models.train import with_preprocessing
from tflite.qsfm import backbone, channel_groups, qsfm_prune, reconstruction, select_redundant

layers = keras.layers


def _images(count=24, size=8, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (count, size, size, 3)).astype(np.float32)


def test_affine_copies_are_removed_with_outputs_unchanged():
    """Maps 3 and 4 are scaled copies of 0 and 1 and map 5 is dead, so removing three
    filters and compensating in the next convolution changes nothing."""
    inputs = keras.Input((8, 8, 3))
    x = layers.ReLU(name="relu1")(layers.Conv2D(6, 3, padding="same", name="conv1")(inputs))
    x = layers.ReLU(name="relu2")(layers.Conv2D(5, 3, padding="same", name="conv2")(x))
    model = keras.Model(inputs, layers.Dense(3, name="dense")(layers.GlobalAveragePooling2D(name="gap")(x)))
    rng = np.random.default_rng(1)
    kernel, bias = rng.normal(size=(3, 3, 3, 6)) * 0.05, rng.normal(size=6) * 0.1
    kernel[..., 3], bias[3] = 2.0 * kernel[..., 0], 2.0 * bias[0]
    kernel[..., 4], bias[4] = 0.5 * kernel[..., 1], 0.5 * bias[1]
    kernel[..., 5], bias[5] = 0.0, -1.0
    model.get_layer("conv1").set_weights([kernel, bias])
    images = _images()

    assert [g.producer for g in channel_groups(model)] == ["conv1", "conv2"]
    pruned, kept = qsfm_prune(model, images, ratio={"conv1": 0.5})
    assert pruned.get_layer("conv1").weights[0].shape == (3, 3, 3, 3)
    assert pruned.get_layer("conv2").weights[0].shape == (3, 3, 3, 5)
    assert len(kept["conv1"]) == 3 and 5 not in kept["conv1"]
    assert {0, 3} & set(kept["conv1"]) and {1, 4} & set(kept["conv1"])
    np.testing.assert_allclose(pruned.predict(images, verbose=0), model.predict(images, verbose=0),
                               rtol=1e-5, atol=1e-4)
    # conv1 keeps 3 of its 6 filters and conv2 reads 3 channels: 8x8 positions, 3x3 kernels
    assert profile(model)["macs"] == 64 * 9 * (3 * 6 + 6 * 5) + 5 * 3
    assert profile(pruned)["macs"] == 64 * 9 * (3 * 3 + 3 * 5) + 5 * 3


def test_offsets_are_compensated_through_the_following_batch_norm():
    """Batch norm makes map 2 = a * map 0 + b with b != 0; the 1x1 consumer has no bias, so b goes
    into the moving mean of the batch norm after it."""
    inputs = keras.Input((6, 6, 3))
    x = layers.BatchNormalization(name="bn1")(layers.Conv2D(4, 1, use_bias=False, name="conv1")(inputs))
    x = layers.BatchNormalization(name="bn2")(layers.Conv2D(3, 1, use_bias=False, name="conv2")(x))
    model = keras.Model(inputs, layers.Dense(2, name="dense")(layers.GlobalAveragePooling2D()(x)))
    rng = np.random.default_rng(2)
    conv1 = rng.normal(size=(1, 1, 3, 4)) * 0.02
    conv1[..., 2] = conv1[..., 0]
    model.get_layer("conv1").set_weights([conv1])
    model.get_layer("bn1").set_weights([np.array([1.0, 0.7, -1.5, 0.9]), np.array([0.1, 0.2, 0.8, -0.3]),
                                        np.array([0.2, 0.0, -0.1, 0.1]), np.array([1.0, 2.0, 0.5, 1.5])])
    model.get_layer("bn2").set_weights([rng.uniform(0.5, 1.5, 3), rng.normal(size=3), rng.normal(size=3),
                                        rng.uniform(0.5, 1.5, 3)])
    images = _images(size=6)
    maps = keras.Model(inputs, model.get_layer("bn1").output).predict(images, verbose=0)
    a, b = reconstruction(maps[..., [0, 1, 3]], maps[..., [2]])
    np.testing.assert_allclose(maps[..., [0, 1, 3]] @ a + b, maps[..., [2]], atol=1e-4)
    assert a[0, 0] < 0 and abs(b[0]) > 0.1  # gamma -1.5 and beta 0.8: a negative, shifted copy
    assert select_redundant(maps, np.ones(4), 0.25) in ([0], [2])

    pruned, kept = qsfm_prune(model, images, ratio={"conv1": 0.25})
    assert len(kept["conv1"]) == 3 and pruned.get_layer("bn1").weights[0].shape == (3,)
    np.testing.assert_allclose(pruned.predict(images, verbose=0), model.predict(images, verbose=0),
                               rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("builder, prune_all", [
    (lambda: with_preprocessing(resnet20(input_shape=(32, 32, 3))), True),
    (lambda: mobilenet_v2(input_shape=(32, 32, 3), alpha=0.35, classes=10), False),
], ids=["resnet20_wrapped", "mobilenet_v2"])
def test_residual_networks_shrink_physically_and_keep_unpruned_parts(builder, prune_all):
    model = builder()
    images = _images(8, 32)
    groups = channel_groups(model)
    residual_outputs = {"conv2_block1_2_conv", "block2_project"}  # feed additions: never producers
    assert groups and not residual_outputs & {g.producer for g in groups}

    same, _ = qsfm_prune(model, images, ratio=0.0)
    np.testing.assert_array_equal(np.asarray(same(images)), np.asarray(model(images)))

    first = groups[-1] if prune_all else next(g for g in groups if g.producer.endswith("_expand"))
    pruned, kept = qsfm_prune(model, images, ratio={first.producer: 0.5})
    assert list(kept) == [first.producer]
    assert np.asarray(pruned(images)).shape == np.asarray(model(images)).shape
    old_graph, new_graph = backbone(model)[1], backbone(pruned)[1]
    for name in (first.producer, *first.followers):  # conv, batch norms, depthwise: all lose the channels
        for weight in new_graph.get_layer(name).weights:
            assert len(kept[first.producer]) in weight.shape[-2:], (name, weight.shape)
    assert new_graph.get_layer(first.consumer).weights[0].shape[-2] == len(kept[first.producer])
    touched = {first.producer, first.consumer, first.after_consumer, *first.followers}
    for layer in old_graph.layers:
        if layer.name not in touched:
            for old, new in zip(layer.get_weights(), new_graph.get_layer(layer.name).get_weights()):
                np.testing.assert_array_equal(old, new)

    if prune_all:
        halved, _ = qsfm_prune(model, images, ratio=0.5)
        assert profile(halved)["macs"] < 0.6 * profile(model)["macs"]


def test_rmnet_plain_network_prunes_every_convolution_below_the_residual_network():
    """RMNet removes the residual additions, so the block outputs become prunable too, and
    pruning pays back the reserved channels' multiply-adds (Meng et al., 2021)."""
    model = with_preprocessing(rm_resnet((32, 32, 3), stages=(Stage(8, 2, 1), Stage(16, 2, 2)), classes=3))
    plain = with_preprocessing(plain_network(model.layers[-1]))
    convs = [layer.name for layer in backbone(plain)[1].layers if type(layer) is layers.Conv2D]
    assert sorted(g.producer for g in channel_groups(plain)) == sorted(convs)
    pruned, kept = qsfm_prune(plain, _images(8, 32), ratio=0.4)
    assert sorted(kept) == sorted(convs)
    assert profile(plain)["macs"] > profile(model)["macs"] > profile(pruned)["macs"]


def test_bad_arguments_are_one_line_errors():
    model = mobilenet_v2(input_shape=(32, 32, 3), alpha=0.35, classes=10)
    with pytest.raises(ValueError, match="ratio"):
        qsfm_prune(model, _images(2, 32), ratio=1.0)
    with pytest.raises(ValueError, match="calibration images"):
        qsfm_prune(model, _images(0, 32), ratio=0.5)
