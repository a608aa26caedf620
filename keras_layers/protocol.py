"""The layer protocol: the optional methods and attributes through which a kit layer tells the
rest of the kit what it costs, how it deploys and how it quantizes.

Every hook is declared here once, as a runtime-checkable ``typing.Protocol`` whose docstring
gives the signature, the meaning and units, and who reads it. Readers never spell a hook's
name: they ask ``implements(layer, CountsMacs)`` and then call ``layer.count_macs()``. A layer
implements a hook by defining the method or attribute (no base class to inherit).

    hook               member                           read by
    CountsMacs         count_macs() -> int              models.profile, keras_layers.ghost
    MacsByBits         macs_by_bits() -> [(a, w, m)]    models.profile
    OperandBits        input_bits, kernel_bits: int     models.profile (operand_bits)
    CountsWeightBits   count_weight_bits() -> int       models.profile
    Foldable           fold() -> [ndarray]              models.reparameterize, mobilekit.zoo
    HasPlainLayers     plain_layers() -> [(layer, w)]   models.reparameterize.plain_network
    Composable         compose() -> None                keras_layers.conformal.Recompose
    CalibratedOutput   calibrated_output: bool          tflite.qat, tflite.qat_tfmot

Conventions read without a hook (stated here so that all the protocol sits in one place):

- ``KERNEL_ATTRIBUTES``: quantization-aware training (``tflite.qat``, ``tflite.qat_tfmot``) fake-quantizes every
  weight that a kit layer's sub-layers expose under these names, and quantizes the output of
  every kit layer (``is_kit_layer``) unless the layer declares ``CalibratedOutput``.
- Binary kernels: ``tflite.binary_export`` reads no layer at all; it recognizes, in the fp32
  flatbuffer, the constant filters whose every output channel holds only ``+c`` and ``-c``
  (what ``keras_layers.binary`` layers with a sign kernel quantizer convert to).
- ``deploy``: a ``Foldable`` layer's config has a boolean ``deploy`` entry; ``deploy_form``
  makes the layer that takes ``fold()``'s weights.

A method of a kit layer whose name looks like a hook (``looks_like_hook``) must be declared
here; tests/keras_layers/test_protocol.py walks every registered layer class to enforce it,
and tests/layer_contract.py (``assert_protocol``) checks that each hook a layer implements
agrees with an independent computation.
"""
import re
from typing import Protocol, runtime_checkable

from keras_layers.quantizers import FLOAT_BITS


@runtime_checkable
class CountsMacs(Protocol):
    """``count_macs() -> int``: multiply-accumulates of one call at batch 1 for the layer's built
    shapes, counted as its paper counts them (convolutions and dense products; batch norm,
    activations, pooling and additions are free, as in ``models.profile``'s module docstring).

    A non-negative ``int``. Equal to the MACs of the convolution / dense operations the layer
    performs when its cost is theirs (then the fp32 TFLite graph's CONV_2D, DEPTHWISE_CONV_2D and
    FULLY_CONNECTED operators count the same). Read by ``models.profile`` (in place of the
    kernel-size formula it applies to Keras' own layers) and by composite kit layers summing
    their parts (``keras_layers.ghost``, ``keras_layers.poke``).
    """

    def count_macs(self) -> int: ...


@runtime_checkable
class MacsByBits(Protocol):
    """``macs_by_bits() -> [(input_bits, kernel_bits, macs), ...]``: the layer's MACs split by the
    bit widths of their two operands, for a layer that mixes widths (a binary convolution next to
    float ones, a float projection next to a binary routing).

    Bit widths are ints in 1..32 (32: float); the ``macs`` terms are non-negative ints summing to
    ``count_macs()``. Read by ``models.profile`` for ``binary_macs`` (terms with both widths 1)
    and ACE (sum of ``input_bits * kernel_bits * macs``, PokeBNN).
    """

    def macs_by_bits(self) -> list: ...


@runtime_checkable
class OperandBits(Protocol):
    """``input_bits`` and ``kernel_bits`` attributes: the bit widths (ints in 1..32) of the two
    operands of every MAC of a layer that uses one width each (a quantized convolution).

    A layer without them computes in float (32 and 32, ``operand_bits``). ``macs_by_bits`` takes
    precedence where a layer defines both. Read by ``models.profile`` through ``operand_bits``.
    """

    input_bits: int
    kernel_bits: int


@runtime_checkable
class CountsWeightBits(Protocol):
    """``count_weight_bits() -> int``: storage of the layer's weights in bits, each value at the
    width it is deployed with (1 per binary kernel entry, 4 per 4-bit one, 32 per float value,
    plus the float channel scales the quantized kernels need).

    A non-negative int; a layer whose every value is float stores ``32 * count_params()``. A
    layer without the hook stores 32 bits per weight value. Read by ``models.profile``
    (``weight_bits``).
    """

    def count_weight_bits(self) -> int: ...


@runtime_checkable
class Foldable(Protocol):
    """``fold() -> [numpy arrays]``: the weights of the layer's deploy form, in that form's
    ``get_weights()`` order: the layer's class built from its config with ``deploy=True``
    (``deploy_form``) computes, with them, what the layer computes in inference mode (structural
    re-parameterization: RepVGG, RMNet). A layer already in deploy form returns its own weights.

    Read by ``models.reparameterize`` (which clones a model into its deploy form) and
    ``mobilekit.zoo`` (which exports and times foldable backbones deployed).
    """

    def fold(self) -> list: ...


@runtime_checkable
class HasPlainLayers(Protocol):
    """``plain_layers() -> [(layer, weights), ...]``: the deploy form spelled out as new Keras
    built-in layers, applied in order, each followed by the ``set_weights`` list it takes once
    built; together they compute the layer's output. Only defined on (and only valid for) the
    deploy form. Read by ``models.reparameterize.plain_network``, so that tools reading built-in
    layers only (channel pruning, TFMOT) see a plain network.
    """

    def plain_layers(self) -> list: ...


@runtime_checkable
class Composable(Protocol):
    """``compose() -> None``: recompute the layer's derived, non-trainable weights (a composed
    operator) from its trainable ones. Must be called after those change (training,
    ``set_weights``); afterwards the outputs depend on the trainable weights only. Read by
    ``keras_layers.conformal.Recompose``, the callback that composes before evaluation and after
    training.
    """

    def compose(self) -> None: ...


@runtime_checkable
class CalibratedOutput(Protocol):
    """``calibrated_output`` attribute (bool): when true, quantization-aware training leaves the
    range of the layer's output to post-training calibration instead of training a fake-quant
    range for it. For layers whose output concatenates branches of different ranges: TFLite's
    concatenation shares one scale, and a trained range forced onto every branch would leave the
    branch that also feeds another op in float. Read by ``tflite.qat`` and ``tflite.qat_tfmot``.
    """

    calibrated_output: bool


HOOKS = (CountsMacs, MacsByBits, OperandBits, CountsWeightBits, Foldable, HasPlainLayers, Composable,
         CalibratedOutput)

# Weights of a kit layer's sub-layers that quantization-aware training fake-quantizes (tflite.qat, tflite.qat_tfmot).
KERNEL_ATTRIBUTES = ("kernel", "depthwise_kernel")

# Method names reserved for hooks: a kit layer may define one only if a hook above declares it.
HOOK_NAME_PATTERN = re.compile(r"^(count_\w+|macs_\w+|fold|plain_layers|compose)$")


def implements(layer, hook):
    """Whether ``layer`` (an instance) provides ``hook`` (one of ``HOOKS``)."""
    if hook not in HOOKS:
        raise ValueError(f"{getattr(hook, '__name__', hook)!r} is not a hook of keras_layers.protocol: "
                         f"expected one of {', '.join(h.__name__ for h in HOOKS)}")
    return isinstance(layer, hook)


def members(hook):
    """The names of the methods and attributes ``hook`` declares."""
    annotations = vars(hook).get("__annotations__", {})
    methods = [name for name, value in vars(hook).items() if callable(value) and not name.startswith("_")]
    return (*methods, *annotations)


def hook_names():
    """Every method and attribute name the hooks declare."""
    return {name for hook in HOOKS for name in members(hook)}


def looks_like_hook(name):
    """Whether a method called ``name`` would be read as a hook (``HOOK_NAME_PATTERN``)."""
    return bool(HOOK_NAME_PATTERN.match(name))


def operand_bits(layer):
    """``(input_bits, kernel_bits)`` of a layer: its ``OperandBits``, else float (32, 32)."""
    if implements(layer, OperandBits):
        return int(layer.input_bits), int(layer.kernel_bits)
    return FLOAT_BITS, FLOAT_BITS


def calibrated_output(layer):
    """Whether QAT should calibrate, not train, the range of ``layer``'s output (``CalibratedOutput``)."""
    return implements(layer, CalibratedOutput) and bool(layer.calibrated_output)


def is_kit_layer(layer):
    """Whether ``layer`` is one of the kit's layers (defined in ``keras_layers``)."""
    return type(layer).__module__.startswith("keras_layers.")


def deploy_form(layer):
    """A new, unbuilt instance of a ``Foldable`` layer's class in its deploy form (config
    ``deploy=True``), the layer ``fold()``'s weights are for."""
    if not implements(layer, Foldable):
        raise ValueError(f"{layer.name} ({type(layer).__name__}) has no deploy form: it does not implement fold()")
    return type(layer).from_config({**layer.get_config(), "deploy": True})
