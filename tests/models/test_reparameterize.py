"""models.reparameterize: RepVGG and RMNet networks fold to plain ones with the same outputs."""
import numpy as np
import pytest

import layer_contract
from keras_layers.keras_api import keras
from keras_layers.reparam import RepVGGBlock, RMResBlock
from models.reparameterize import plain_network, reparameterize
from models.registry import build as build_architecture
from models.repvgg import REPVGG_A0, Stage, repvgg, rm_resnet
from tflite import convert, operator_names

SHAPE = (32, 32, 3)
SMALL_REPVGG = (Stage(8, 1, 2), Stage(8, 2, 1), Stage(16, 2, 2))
SMALL_RESNET = (Stage(8, 2, 1), Stage(16, 2, 2))


@pytest.fixture(autouse=True)
def seeded():
    keras.utils.set_random_seed(1)


def trained(model):
    """Four SGD steps on random data so that batch norm statistics and weights move, then
    random moving statistics on top so that every fold is exercised with non-trivial values."""
    data = layer_contract.random_inputs(model.input_shape[1:], count=16)
    labels = np.arange(16) % model.output_shape[-1]
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=keras.losses.SparseCategoricalCrossentropy(True))
    model.fit(data, labels, batch_size=8, epochs=2, verbose=0)
    rng = np.random.default_rng(0)
    for weight in model.weights:
        if "moving_variance" in weight.name:
            weight.assign(rng.uniform(0.5, 1.5, weight.shape))
        elif "moving_mean" in weight.name:
            weight.assign(rng.normal(0, 0.3, weight.shape))
    return model


def relative_difference(model, deployed, shape=SHAPE):
    x = layer_contract.random_inputs(shape, count=4, seed=3)
    expected, actual = np.asarray(model(x, training=False)), np.asarray(deployed(x, training=False))
    return float(np.abs(actual - expected).max() / np.abs(expected).max())


NETWORKS = {
    "repvgg": lambda: repvgg(SHAPE, stages=SMALL_REPVGG, classes=5, classifier_activation=None),
    "rm_resnet": lambda: rm_resnet((32, 33, 3), stages=SMALL_RESNET, classes=5, classifier_activation=None),
}


@pytest.mark.parametrize("kind", NETWORKS)
def test_reparameterized_network_has_the_same_outputs(kind):
    model = trained(NETWORKS[kind]())
    deployed = reparameterize(model)
    blocks = [layer for layer in deployed.layers if isinstance(layer, (RepVGGBlock, RMResBlock))]
    assert blocks and all(block.deploy for block in blocks)
    batch_norms = [layer.name for layer in deployed.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert batch_norms in ([], ["stem_bn"])
    assert relative_difference(model, deployed, model.input_shape[1:]) <= 1e-4


@pytest.mark.parametrize("kind", NETWORKS)
def test_plain_network_spells_the_deploy_form_out_in_built_in_layers(kind):
    model = trained(NETWORKS[kind]())
    plain = plain_network(model)
    built_in = (keras.layers.InputLayer, keras.layers.ZeroPadding2D, keras.layers.Conv2D, keras.layers.ReLU,
                keras.layers.BatchNormalization, keras.layers.GlobalAveragePooling2D, keras.layers.Dense)
    assert all(type(layer) in built_in for layer in plain.layers), [type(layer) for layer in plain.layers]
    assert plain.count_params() == reparameterize(model).count_params()
    assert relative_difference(model, plain, model.input_shape[1:]) <= 1e-4


def test_deployed_networks_are_plain_conv_relu_chains_in_tflite():
    for kind, build in NETWORKS.items():
        model = build()
        train_ops = set(operator_names(convert(model)))
        deploy_ops = set(operator_names(convert(reparameterize(model))))
        assert "ADD" in train_ops and "ADD" not in deploy_ops, (kind, train_ops, deploy_ops)


@pytest.mark.parametrize("kind", NETWORKS)
def test_deployed_network_converts_to_tflite_fp32_and_int8(kind):
    model = trained(NETWORKS[kind]())
    deployed = reparameterize(model)
    layer_contract.assert_tflite_matches_keras(deployed, deployed.input_shape[1:], samples=8)


def test_repvgg_a0_has_the_papers_parameter_counts():
    model = repvgg()
    deployed = reparameterize(model)
    # Table 2 with a = 0.75, b = 2.5: widths 48 (stem), 48, 96, 192, 1280 over 1, 2, 4, 14, 1 layers;
    # deployed, each layer is a 3x3 convolution with bias; then the 1000-class dense layer.
    widths = [3] + [48] * 1 + [48] * 2 + [96] * 4 + [192] * 14 + [1280] * 1
    convs = sum(9 * c_in * c_out + c_out for c_in, c_out in zip(widths, widths[1:]))
    assert deployed.count_params() == convs + 1280 * 1000 + 1000
    assert f"{deployed.count_params():.2g}" == "8.3e+06"  # Table 4: 8.30M (8,309,384 by the count above)
    assert [layer.filters for layer in deployed.layers if isinstance(layer, RepVGGBlock)] == [
        stage.channels for stage in REPVGG_A0 for _ in range(stage.repeats)]
    assert deployed.output_shape == (None, 1000)


def test_deploy_flag_builds_the_folded_architecture_directly():
    direct = repvgg(SHAPE, stages=SMALL_REPVGG, classes=5, deploy=True)
    folded = reparameterize(repvgg(SHAPE, stages=SMALL_REPVGG, classes=5))
    assert direct.count_params() == folded.count_params()
    assert [w.shape for w in direct.weights] == [w.shape for w in folded.weights]


@pytest.mark.parametrize("call, message", [
    (lambda: reparameterize(RepVGGBlock(8)), "functional keras.Model"),
    (lambda: plain_network(build_architecture("resnet20", input_shape=SHAPE)), "chain"),
    (lambda: RepVGGBlock(8).plain_layers(), "deploy form"),
    (lambda: repvgg(SHAPE, alpha=0), "alpha"),
    (lambda: rm_resnet((16, 16, 3)), "input_shape")])
def test_bad_arguments_get_one_line_errors(call, message):
    with pytest.raises(ValueError, match=message) as error:
        call()
    assert "\n" not in str(error.value)
