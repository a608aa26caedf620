"""Quantizers with straight-through estimators (STE) for binary and low-bit networks.

A quantizer maps a float tensor to a few levels in the forward pass and passes a
pseudo-gradient backwards (the true gradient is zero almost everywhere):

    ste_sign(x)             forward sign(x) in {-1, +1} (sign(0) = +1); backward dy * 1[|x| <= clip]
                            (Hubara et al., "Binarized Neural Networks", 2016)
    approx_sign(x)          forward sign(x); backward dy * max(0, 2 - 2|x|), the derivative of the
                            piecewise-quadratic approximation of sign (Liu et al., "Bi-Real Net", 2018)
    magnitude_aware_sign(x) forward mean(|x|) * sign(x), the mean taken per output channel (over all
                            axes but the last); backward mean(|x|) * dy * 1[|x| <= clip], the mean held
                            constant (Bi-Real Net, section 3.3)
    uniform k-bit           activations: round((2^k - 1) clip(x, 0, 1)) / (2^k - 1) with the STE
                            through the rounding (QNN, Hubara et al. 2017; DoReFa-Net, Zhou et al. 2016)
    DoReFa k-bit weights    2 q_k(tanh(w) / (2 max|tanh(w)|) + 1/2) - 1, in [-1, 1]

Quantizers are named like Keras activations. ``get`` accepts None, a callable, a config
dict (``serialize``'s output) or one of the strings

    "ste_sign", "approx_sign", "magnitude_aware_sign",
    "uniform_{k}bit" (k-bit activations in [0, 1]), "dorefa_{k}bit" (DoReFa k-bit weights), 1 <= k <= 8,

and ``bits`` gives the operand bit width a quantizer produces (1 for the signs, k for the
k-bit ones, 32 for None: a float operand), which ``models.profile`` uses for ACE.

In TFLite the sign of an activation is GREATER_EQUAL + SELECT_V2 (builtins that run in
int8); the sign of a variable (a kernel) is written with same-size elementwise ops so that
the converter folds it into a constant kernel whatever its size.
"""
import re

import tensorflow as tf

MAX_BITS = 8
FLOAT_BITS = 32


def _select_sign(x):
    """sign(x) with sign(0) = +1, as SELECT_V2 of two scalars: a builtin that runs in int8."""
    return tf.where(x >= 0, tf.constant(1, x.dtype), tf.constant(-1, x.dtype))


def _elementwise_sign(x):
    """sign(x) with sign(0) = +1 from same-size elementwise ops only. The TFLite converter folds
    these on a frozen kernel of any size; it leaves a select of scalars unfolded once the
    result outgrows its 1-bit condition, and the kernel then stays a runtime tensor."""
    return tf.sign(tf.sign(x) + 0.5)


def _sign_for(x):
    """The sign formulation for ``x``: variables (kernels) fold to constants, tensors run in int8."""
    return _elementwise_sign if hasattr(x, "assign") else _select_sign


def ste_sign(x, clip_value=1.0):
    """sign(x); gradient passed where |x| <= clip_value, zero elsewhere."""
    sign = _sign_for(x)

    @tf.custom_gradient
    def _ste_sign(x):
        def grad(dy):
            return dy * tf.cast(tf.abs(x) <= clip_value, dy.dtype)
        return sign(x), grad

    return _ste_sign(tf.convert_to_tensor(x))


def approx_sign(x):
    """sign(x); gradient 2 - 2|x| for |x| <= 1, zero elsewhere (Bi-Real Net's ApproxSign)."""
    sign = _sign_for(x)

    @tf.custom_gradient
    def _approx_sign(x):
        def grad(dy):
            return dy * tf.maximum(2.0 - 2.0 * tf.abs(x), 0.0)
        return sign(x), grad

    return _approx_sign(tf.convert_to_tensor(x))


def channel_mean_abs(x):
    """mean |x| over all axes but the last: one scale per output channel."""
    return tf.reduce_mean(tf.abs(x), axis=list(range(len(x.shape) - 1)))


def magnitude_aware_sign(x, clip_value=1.0):
    """mean(|x|) * sign(x) per output channel; the scale is a constant for the gradient."""
    return tf.stop_gradient(channel_mean_abs(x)) * ste_sign(x, clip_value)


@tf.custom_gradient
def _ste_round_tensor(x):
    return tf.round(x), lambda dy: dy


def _ste_round(x):
    return _ste_round_tensor(tf.convert_to_tensor(x))


def _check_bits(bits):
    if not isinstance(bits, int) or isinstance(bits, bool) or not 1 <= bits <= MAX_BITS:
        raise ValueError(f"quantizer bits must be an integer from 1 to {MAX_BITS}, got {bits!r}")


def ste_quantize(x, bits):
    """k-bit activations: round((2^k - 1) clip(x, 0, 1)) / (2^k - 1); gradient 1 inside [0, 1]."""
    _check_bits(bits)
    levels = 2.0 ** bits - 1.0
    return _ste_round(tf.clip_by_value(x, 0.0, 1.0) * levels) / levels


def dorefa_weights(w, bits):
    """DoReFa-Net k-bit weights in [-1, 1]: 2 q_k(tanh(w) / (2 max|tanh(w)|) + 1/2) - 1."""
    _check_bits(bits)
    t = tf.tanh(w)
    return 2.0 * ste_quantize(t / (2.0 * tf.reduce_max(tf.abs(t))) + 0.5, bits) - 1.0


class Quantizer:
    """Base of the named quantizers: callable on a tensor, with ``bits`` and a config.

    ``per_channel_scale`` is true when the output carries one float scale per output channel
    (stored beside the bits when the quantized weights are exported).
    """

    bits = 1
    per_channel_scale = False

    def __call__(self, x):
        raise NotImplementedError

    def get_config(self):
        return {}

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self):
        return hash((type(self).__name__, tuple(sorted(self.get_config().items()))))

    def __repr__(self):
        return f"{type(self).__name__}({self.get_config()})"


class _ClippedSign(Quantizer):
    """A sign quantizer whose straight-through gradient is cut off beyond ``clip_value``."""

    def __init__(self, clip_value=1.0):
        self.clip_value = float(clip_value)

    def get_config(self):
        return {"clip_value": self.clip_value}


class SteSign(_ClippedSign):
    """Sign with the clipped-identity straight-through estimator (BNN, Hubara et al. 2016)."""

    def __call__(self, x):
        return ste_sign(x, self.clip_value)


class ApproxSign(Quantizer):
    """Sign with the piecewise-polynomial gradient 2 - 2|x| (Bi-Real Net)."""

    def __call__(self, x):
        return approx_sign(x)


class MagnitudeAwareSign(_ClippedSign):
    """Per-output-channel mean(|x|) * sign(x) (Bi-Real Net's magnitude-aware weights)."""

    per_channel_scale = True

    def __call__(self, x):
        return magnitude_aware_sign(x, self.clip_value)


class UniformQuantizer(Quantizer):
    """k-bit uniform quantizer with the STE through the rounding (QNN / DoReFa-Net).

    ``mode="activations"``: 2^k levels in [0, 1] (inputs clipped to [0, 1] first);
    ``mode="weights"``: DoReFa's tanh-normalized 2^k levels in [-1, 1].
    """

    MODES = ("activations", "weights")

    def __init__(self, bits, mode="activations"):
        _check_bits(bits)
        if mode not in self.MODES:
            raise ValueError(f"UniformQuantizer mode must be one of {', '.join(self.MODES)}, got {mode!r}")
        self.bits, self.mode = bits, mode

    def __call__(self, x):
        return ste_quantize(x, self.bits) if self.mode == "activations" else dorefa_weights(x, self.bits)

    def get_config(self):
        return {"bits": self.bits, "mode": self.mode}


SIGNS = (SteSign, ApproxSign, MagnitudeAwareSign)
CLASSES = {cls.__name__: cls for cls in (SteSign, ApproxSign, MagnitudeAwareSign, UniformQuantizer)}
NAMES = {"ste_sign": SteSign, "approx_sign": ApproxSign, "magnitude_aware_sign": MagnitudeAwareSign}
FUNCTIONS = {"ste_sign": ste_sign, "approx_sign": approx_sign, "magnitude_aware_sign": magnitude_aware_sign}
_K_BIT = re.compile(r"(uniform|dorefa)_(\d+)bit")
_EXPECTED = "None, a callable, a config dict or one of " + ", ".join(
    [*NAMES, "uniform_{k}bit", "dorefa_{k}bit"])


def get(identifier):
    """The quantizer named by ``identifier`` (see the module docstring); None stays None.

    The kit's sign functions become their quantizer objects; other callables pass through.
    """
    if identifier is None or isinstance(identifier, Quantizer):
        return identifier
    for name, function in FUNCTIONS.items():
        if identifier is function:
            return NAMES[name]()
    if isinstance(identifier, str):
        if identifier in NAMES:
            return NAMES[identifier]()
        match = _K_BIT.fullmatch(identifier)
        if match:
            mode = "activations" if match.group(1) == "uniform" else "weights"
            return UniformQuantizer(int(match.group(2)), mode)
        raise ValueError(f"unknown quantizer {identifier!r}: expected {_EXPECTED}")
    if isinstance(identifier, dict):
        if identifier.get("class_name") not in CLASSES or not isinstance(identifier.get("config", {}), dict):
            raise ValueError(f"bad quantizer config {identifier!r}: expected "
                             f"{{'class_name': one of {', '.join(CLASSES)}, 'config': {{...}}}}")
        return CLASSES[identifier["class_name"]](**identifier.get("config", {}))
    if callable(identifier):
        return identifier
    raise ValueError(f"bad quantizer {identifier!r}: expected {_EXPECTED}")


def serialize(quantizer):
    """A JSON-able identifier that ``get`` turns back into ``quantizer``."""
    if quantizer is None or isinstance(quantizer, str):
        return quantizer
    if isinstance(quantizer, Quantizer):
        return {"class_name": type(quantizer).__name__, "config": quantizer.get_config()}
    for name, function in FUNCTIONS.items():
        if quantizer is function:
            return name
    raise ValueError(f"cannot serialize quantizer {quantizer!r}: expected None, a kit quantizer or its name")


def bits(identifier):
    """Bit width of the operands ``identifier`` produces: 1 for signs, k for k-bit, 32 for None."""
    quantizer = get(identifier)
    return FLOAT_BITS if quantizer is None else int(getattr(quantizer, "bits", FLOAT_BITS))


def is_sign(identifier):
    """True when ``identifier`` names one of the sign quantizers (one bit, W >= 0 -> +1)."""
    return isinstance(get(identifier), SIGNS)
