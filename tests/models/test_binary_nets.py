import numpy as np
import pytest

from keras_layers.binary import QuantConv2D
from keras_layers.capsules import XNIDR, XNODR
from keras_layers.keras_api import keras
from keras_layers.poke import PokeConv
from keras_layers.repbnn import RepConv
from models import build, profile
from models.binary_nets import RESNET_8, VARIANTS, binary_resnet, binary_resnet18, binary_resnet20, \
    capsule_mobilenet_v2, capsule_resnet50
from models.data import load_digits_data
from models.resnet import RESNET_50, resnet20, resnet50
from models.train import evaluate_accuracy, train_classifier, with_preprocessing

FLOAT, BINARY, SE_4BIT = 32 * 32, 1, 32 * 4


@pytest.fixture(scope="module")
def resnets():
    return {variant: binary_resnet((32, 32, 3), stages=RESNET_8, variant=variant) for variant in VARIANTS}


def inner_convs(model):
    return [layer for layer in model.layers if isinstance(layer, QuantConv2D) and layer.name != "stem_conv"]


def test_float_variant_has_resnet20s_parameters_and_every_variant_its_conv_kernels(resnets):
    assert binary_resnet20(variant="float").count_params() == resnet20().count_params()
    float_kernels = sorted(tuple(layer.kernel.shape) for layer in inner_convs(resnets["float"]))
    for variant in ("bwn", "xnor", "qnn"):
        assert sorted(tuple(layer.kernel.shape) for layer in inner_convs(resnets[variant])) == float_kernels
    rep = inner_convs(resnets["rep_xnor"])
    assert all(isinstance(layer, RepConv) for layer in rep)  # RepTran: the same kernel entries, 2x wider maps
    assert sum(np.prod(layer.kernel.shape) for layer in rep) == sum(np.prod(k) for k in float_kernels)
    assert resnets["rep_xnor"].get_layer("conv4_block1_2_bn").gamma.shape == (128,)
    pokes = [layer for layer in resnets["pokebnn"].layers if isinstance(layer, PokeConv)]
    assert len(pokes) == 6 and sum(p.zero_gamma for p in pokes) == 3


def test_costs_weight_macs_by_operand_bits(resnets):
    """Inner 3x3 convolutions carry the variant's precision; stem and classifier stay float
    (the Rep network's classifier reads 2 x 64 replicated features)."""
    total = profile(resnets["float"])["macs"]
    inner = sum(profile(resnets["float"])["layers"][layer.name] for layer in inner_convs(resnets["float"]))
    outer = total - inner
    expected = {"float": (0, FLOAT * total), "bwn": (0, 32 * inner + FLOAT * outer),
                "xnor": (inner, BINARY * inner + FLOAT * outer), "qnn": (0, 2 * inner + FLOAT * outer),
                "rep_xnor": (inner, BINARY * inner + FLOAT * (outer + 64 * 10))}
    for variant, (binary_macs, ace) in expected.items():
        cost = profile(resnets[variant])
        assert (cost["binary_macs"], cost["ace"]) == (binary_macs, ace), variant
    poke = profile(resnets["pokebnn"])
    se = poke["macs"] - total
    assert poke["binary_macs"] == inner and poke["ace"] == inner + SE_4BIT * se + FLOAT * outer
    assert profile(resnets["xnor"])["weight_bits"] < profile(resnets["float"])["weight_bits"] / 10


def test_variant_networks_run_and_resnet18_takes_the_imagenet_stem():
    model = binary_resnet18(input_shape=(32, 32, 3), classes=5, variant="rep_xnor")
    assert model.get_layer("stem_pool") is not None and tuple(model.output.shape) == (None, 5)
    outputs = model(np.random.default_rng(0).uniform(0, 1, (2, 32, 32, 3)).astype(np.float32))
    np.testing.assert_allclose(np.sum(outputs, axis=-1), 1.0, rtol=1e-5)
    assert build("binary_resnet20", variant="pokebnn").name == "resnet20_pokebnn"


def test_pokebnn_resnet18_starts_with_poke_init():
    """PokeInit: an 8-bit 4x4/4 convolution (no pixel read twice) to 32 maps, then an 8-bit 3x3
    convolution grouped by input map to the 64 channels of the first stage."""
    model = binary_resnet18(input_shape=(32, 32, 3), classes=5, variant="pokebnn")
    conv, grouped = model.get_layer("stem_conv"), model.get_layer("stem_group_conv")
    assert tuple(conv.kernel_size) == tuple(conv.strides) == (4, 4) and conv.padding == "valid"
    assert conv.kernel_bits == grouped.kernel_bits == 8
    assert tuple(conv.output.shape) == (None, 8, 8, 32) and tuple(grouped.output.shape) == (None, 8, 8, 64)
    assert profile(model)["layers"]["stem_group_conv"] == 8 * 8 * 64 * 9  # one input map per output


def test_capsule_mobilenet_v2_is_the_backbone_plus_primary_capsules_and_the_capsule_layer():
    model = capsule_mobilenet_v2((32, 32, 3), alpha=0.35, classes=10, capsule_layer="xnodr")
    height, width, channels = model.get_layer("head_relu6").output.shape[1:]  # the backbone's last layer
    primary = 8 * 8  # 8 capsule types of dimension 8 per position
    assert model.get_layer("primary_capsules_conv").count_params() == (channels + 1) * primary
    assert model.get_layer("xnodr_capsules").kernel.shape == (height * width * 8, 10, 8, 16)
    assert isinstance(model.get_layer("xnodr_capsules"), XNODR)
    probabilities = model(np.random.default_rng(1).uniform(0, 1, (2, 32, 32, 3)).astype(np.float32)).numpy()
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, rtol=1e-5)


def test_capsule_resnet50_puts_the_head_on_the_keras_applications_sized_backbone():
    model = capsule_resnet50((32, 32, 3), classes=4, capsule_layer="xnidr", capsule_dim=8, classifier_activation=None)
    assert isinstance(model.get_layer("xnidr_capsules"), XNIDR)
    head = (2048 + 1) * 64 + 1 * 8 * 4 * 8 * 8
    assert model.count_params() == resnet50((32, 32, 3), include_top=False).count_params() + head
    lengths = model(np.zeros((1, 32, 32, 3), np.float32)).numpy()
    assert lengths.shape == (1, 4) and np.all((lengths >= 0) & (lengths < 1))


@pytest.mark.parametrize("make, message", [
    (lambda: binary_resnet20(variant="ternary"), "variant"),
    (lambda: binary_resnet(stem="tiny"), "stem"),
    (lambda: binary_resnet(stages=RESNET_50), "basic"),
    (lambda: capsule_mobilenet_v2((32, 32, 3), alpha=0.35, capsule_layer="em"), "capsule layer"),
    (lambda: capsule_mobilenet_v2((32, 32, 3), alpha=0.35, classifier_activation="sigmoid"), "classifier_activation")])
def test_bad_arguments_get_one_line_errors(make, message):
    with pytest.raises(ValueError, match=message) as error:
        make()
    assert "\n" not in str(error.value)


@pytest.mark.slow
def test_xnor_resnet8_learns_digits(tmp_path):
    data = load_digits_data(32, seed=0)
    data = data._replace(train=(data.train[0][:600], data.train[1][:600]))
    model = with_preprocessing(binary_resnet((32, 32, 3), stages=RESNET_8, stem="strided", variant="xnor"))
    model, history = train_classifier(model, data, str(tmp_path), epochs=2, batch_size=16, patience=2, seed=0,
                                      augment=(), verbose=0)
    assert history["loss"][-1] < history["loss"][0]
    assert evaluate_accuracy(model, data.test) > 0.25  # chance: 0.1
    assert isinstance(keras.models.load_model(str(tmp_path / "model.keras")).get_layer("binary_resnet_xnor")
                      .get_layer("conv2_block1_1_conv"), QuantConv2D)
