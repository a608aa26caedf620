"""keras_layers.protocol: every hook a kit layer implements is declared there, and every layer
class that implements a hook passes the layer contract's checks of it (layer_contract.assert_protocol)."""
import importlib
import pkgutil

import numpy as np
import pytest

import keras_layers
import layer_contract
from keras_layers import protocol
from keras_layers.activations import SqueezeExcite
from keras_layers.binary import QuantConv2D, QuantDense, QuantDepthwiseConv2D
from keras_layers.capsules import XNIDR, XNODR
from keras_layers.channel_diversification import ChannelDiversification
from keras_layers.conformal import ConformalLayers, ReSPro
from keras_layers.ffconv import FFConv
from keras_layers.g_ghost import GGhostCheapMix
from keras_layers.ghost import GhostBottleneck, GhostModule
from keras_layers.keras_api import keras
from keras_layers.mgic import MGICBlock
from keras_layers.pide import FractionalLaplacian, GlobalWeightedLaplacian, InverseFractionalLaplacian
from keras_layers.poke import PokeConv
from keras_layers.reparam import RepVGGBlock, RMResBlock
from keras_layers.repbnn import RepConv
from keras_layers.wht import WHT1D, WHT2D, SmoothThreshold, WHTGlobalPooling2D
from tflite import bitpack


def kit_layer_classes():
    """Every layer class registered by a module of keras_layers (all modules imported first)."""
    for module in pkgutil.iter_modules(keras_layers.__path__):
        importlib.import_module(f"keras_layers.{module.name}")
    return sorted({cls for name, cls in keras.saving.get_custom_objects().items()
                   if name.startswith("mobilekit>") and isinstance(cls, type) and issubclass(cls, keras.layers.Layer)},
                  key=lambda cls: cls.__name__)


def undeclared_hooks(classes):
    """``Class.method`` for every method, defined by a class of keras_layers (the classes and
    their kit base classes), whose name looks like a hook that keras_layers.protocol does not declare."""
    declared = protocol.hook_names()
    found = set()
    for cls in classes:
        for klass in cls.__mro__:
            if not klass.__module__.startswith("keras_layers."):
                continue
            for name, value in vars(klass).items():
                if callable(value) and protocol.looks_like_hook(name) and name not in declared:
                    found.add(f"{klass.__name__}.{name}")
    return sorted(found)


def implemented_hooks(cls):
    """The hooks whose members a layer class defines (methods and class attributes; ``OperandBits``
    is set per instance, so it shows only on the instances ``assert_protocol`` checks)."""
    return [hook for hook in protocol.HOOKS if all(hasattr(cls, name) for name in protocol.members(hook))]


def test_every_method_named_like_a_hook_is_declared_in_the_protocol():
    classes = kit_layer_classes()
    assert len(classes) >= 30 and QuantConv2D in classes and RMResBlock in classes
    assert undeclared_hooks(classes) == []


def test_an_undeclared_hook_is_caught():
    class Flops(keras.layers.Layer):
        def count_flops(self):
            return 0

        def fold(self):
            return []

    Flops.__module__ = "keras_layers.fake"
    assert undeclared_hooks([Flops]) == ["Flops.count_flops"]
    assert protocol.looks_like_hook("macs_of_stage") and not protocol.looks_like_hook("folded")


def test_readers_cannot_ask_for_an_undeclared_hook():
    with pytest.raises(ValueError, match="not a hook of keras_layers.protocol"):
        protocol.implements(keras.layers.Dense(2), keras.layers.Layer)


class Example:
    """A layer to check: its maker, input shape, ``assert_protocol`` options and the hooks it must show."""

    def __init__(self, make, shape, hooks=("CountsMacs",), **options):
        self.make, self.shape, self.hooks, self.options = make, shape, list(hooks), options


# One example per layer class that implements a hook, then variants that reach the other branch of
# a hook (float operands: 32 bits per weight; deploy forms). graph_macs: the MACs outside CONV_2D /
# DEPTHWISE_CONV_2D / FULLY_CONNECTED, where the TFLite graph is the layer's plain equivalent; left
# out where the paper counts otherwise (WHT transforms are additions) or the cost is elementwise
# (spectral products, routing, quadratic forms, channel gates).
BITS = ("CountsMacs", "OperandBits", "CountsWeightBits")
FOLDS = ("CountsMacs", "Foldable", "HasPlainLayers")
EXAMPLES = {
    "ChannelDiversification": Example(ChannelDiversification, (5, 5, 6)),
    "ConformalLayers": Example(lambda: ConformalLayers([keras.layers.Conv2D(4, 3, use_bias=False), ReSPro(),
                                                        keras.layers.AveragePooling2D(2)]), (6, 6, 2),
                               ("CountsMacs", "Composable")),
    "FFConv": Example(lambda: FFConv(6, 3, 2, strides=2), (7, 7, 4), graph_macs=0),
    "FractionalLaplacian": Example(lambda: FractionalLaplacian(0.6), (6, 5, 3)),
    "GGhostCheapMix": Example(GGhostCheapMix, [(5, 5, 8), (5, 5, 3), (5, 5, 3)], graph_macs=0),
    "GhostBottleneck": Example(lambda: GhostBottleneck(12, 10, strides=2, se_channels=4), (6, 6, 8),
                               ("CountsMacs", "CalibratedOutput"), graph_macs=0),
    "GhostModule": Example(lambda: GhostModule(7, ratio=3), (6, 6, 8), ("CountsMacs", "CalibratedOutput"),
                           graph_macs=0),
    "GlobalWeightedLaplacian": Example(lambda: GlobalWeightedLaplacian(2.0), (5, 6, 2)),
    "InverseFractionalLaplacian": Example(lambda: InverseFractionalLaplacian(0.4), (6, 5, 3)),
    "MGICBlock": Example(lambda: MGICBlock(4), (6, 6, 8), graph_macs=0),
    "PokeConv": Example(lambda: PokeConv(8, strides=2), (6, 6, 4), ("CountsMacs", "MacsByBits", "CountsWeightBits"),
                        graph_macs=0),
    "QuantConv2D": Example(lambda: QuantConv2D(8, 3, scale="bwn", use_bias=True), (6, 6, 8), BITS, graph_macs=0),
    "QuantDense": Example(lambda: QuantDense(8, scale="bwn"), (16,), BITS, graph_macs=0),
    "QuantDepthwiseConv2D": Example(lambda: QuantDepthwiseConv2D(3, strides=2, depth_multiplier=2), (7, 7, 4), BITS,
                                    graph_macs=0),
    "RMResBlock": Example(lambda: RMResBlock(8, strides=2), (7, 8, 6), FOLDS, graph_macs=0, nonnegative_inputs=True),
    "RepConv": Example(lambda: RepConv(16, 3, input_replicas=2, output_replicas=2), (6, 6, 4), BITS, graph_macs=0),
    "RepVGGBlock": Example(lambda: RepVGGBlock(6), (7, 8, 6), FOLDS, graph_macs=0),
    "SmoothThreshold": Example(SmoothThreshold, (5, 5, 4), graph_macs=0),
    "SqueezeExcite": Example(lambda: SqueezeExcite(3), (5, 5, 8), graph_macs=0),
    "WHT1D": Example(lambda: WHT1D(12, use_scale=True), (4, 4, 10)),
    "WHT2D": Example(lambda: WHT2D(use_scale=True), (6, 5, 3)),
    "WHTGlobalPooling2D": Example(WHTGlobalPooling2D, (5, 6, 3)),
    "XNIDR": Example(lambda: XNIDR(3, 4), (6, 5), ("CountsMacs", "MacsByBits")),
    "XNODR": Example(lambda: XNODR(3, 4), (6, 5), ("CountsMacs", "MacsByBits", "CountsWeightBits")),
}
VARIANTS = {
    "PokeConv_float": Example(lambda: PokeConv(8, input_quantizer=None, kernel_quantizer=None,
                                               se_kernel_quantizer=None), (6, 6, 8),
                              ("CountsMacs", "MacsByBits", "CountsWeightBits"), graph_macs=0),
    "QuantConv2D_float": Example(lambda: QuantConv2D(8, 3, kernel_quantizer=None, use_bias=True), (6, 6, 4), BITS,
                                 graph_macs=0),
    "QuantConv2D_2bit": Example(lambda: QuantConv2D(8, 3, input_quantizer="uniform_2bit",
                                                    kernel_quantizer="dorefa_2bit"), (6, 6, 4), BITS),
    "RMResBlock_deploy": Example(lambda: RMResBlock(6, deploy=True), (6, 6, 6), FOLDS, graph_macs=0,
                                 nonnegative_inputs=True),
    "RepVGGBlock_deploy": Example(lambda: RepVGGBlock(8, strides=2, deploy=True), (7, 8, 6), FOLDS, graph_macs=0),
}


def test_every_layer_class_with_a_hook_has_an_example():
    with_hooks = {cls.__name__ for cls in kit_layer_classes() if implemented_hooks(cls)}
    assert with_hooks == set(EXAMPLES)


@pytest.fixture(autouse=True)
def seeded():
    keras.utils.set_random_seed(2)


@pytest.mark.parametrize("name", [*EXAMPLES, *VARIANTS])
def test_every_hook_agrees_with_an_independent_computation(name):
    example = {**EXAMPLES, **VARIANTS}[name]
    assert layer_contract.assert_protocol(example.make(), example.shape, **example.options) == example.hooks


@pytest.mark.parametrize("make, shape", [
    (lambda: QuantConv2D(16, 3, input_quantizer="ste_sign", kernel_quantizer="ste_sign", scale="xnor"), (6, 6, 8)),
    (lambda: QuantDepthwiseConv2D(3, depth_multiplier=2, use_bias=True), (6, 6, 4)),
    (lambda: QuantDense(8, kernel_quantizer="magnitude_aware_sign"), (16,)),
    (lambda: RepConv(16, 3, input_replicas=2, output_replicas=2, scale="bwn"), (6, 6, 4)),
])
def test_weight_bits_of_sign_kernels_are_the_bit_packed_file(make, shape):
    """Every weight of a sign-kernel layer as tflite.bitpack stores it: the kernel at one bit
    per entry (packed in bytes: the shapes here have a multiple of 8 entries), scales and bias
    in float32."""
    layer = make()
    model = layer_contract.wrap(layer, shape)
    assert bitpack.is_packable(layer) and np.prod(layer.kernel.shape) % 8 == 0
    packed = bitpack.pack(model)
    header_length = int.from_bytes(packed[8:12], "little")
    payload_bytes = len(packed) - 12 - header_length
    assert layer.count_weight_bits() == 8 * payload_bytes


def test_the_helpers_quantization_aware_training_reads():
    """tflite.qat's questions: is it a kit layer, is its output range calibrated, and where are the
    kernels of its sub-layers (one of KERNEL_ATTRIBUTES on every built convolution and dense layer)."""
    ghost, squeeze, dense = GhostModule(6), SqueezeExcite(2), keras.layers.Dense(2)
    assert protocol.calibrated_output(ghost) and not protocol.calibrated_output(squeeze)
    assert protocol.is_kit_layer(ghost) and not protocol.is_kit_layer(dense)
    assert protocol.operand_bits(dense) == (32, 32) and protocol.operand_bits(QuantConv2D(2, 1)) == (32, 1)
    for layer in (keras.layers.Conv2D(2, 3), keras.layers.DepthwiseConv2D(3), dense):
        layer.build((None, 5, 5, 4))
        assert any(getattr(layer, name, None) is not None for name in protocol.KERNEL_ATTRIBUTES), layer
    with pytest.raises(ValueError, match="has no deploy form"):
        protocol.deploy_form(dense)
