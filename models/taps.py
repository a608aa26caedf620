"""Feature taps recorded by a builder as it builds: which layer's output plays each role.

A dense-prediction head (``models.ssdlite``, ``models.deeplab``) reads a backbone's intermediate
feature maps by role (``TAP_ROLES``):

    stride4, stride8, stride16   the last block output at that stride (relative to the input)
    stride8_expanded             the expansion output of the first block of the next stride
    stride16_expanded              (still at stride 8 / 16; stride16_expanded is SSDLite's first map)
    final                        the last bottleneck's output (Mobile DeepLabv3's "second last map")
    last                         the last 1x1 layer (before pooling)

A builder makes one ``TapRecorder`` from its input, calls ``block`` for every bottleneck in order
and ``last`` for its last 1x1 layer, and ``attach``es the roles to the model it returns as the
``feature_taps`` attribute (role -> layer name). The roles follow from the strides of the tensors
as the network is built, so a changed block table changes the taps with it.
"""
import math

TAP_ROLES = ("stride4", "stride8", "stride16", "stride8_expanded", "stride16_expanded", "final", "last")


class TapRecorder:
    """Collects the tensors that play each role of ``TAP_ROLES`` while a network is built."""

    def __init__(self, inputs):
        self._input_height = inputs.shape[1]
        self._tensors = {}

    def stride(self, tensor):
        """The stride of ``tensor`` relative to the input (a power of two)."""
        return 2 ** round(math.log2(self._input_height / tensor.shape[1]))

    def _record(self, role, tensor):
        if role in TAP_ROLES:
            self._tensors[role] = tensor

    def block(self, block_input, output, expanded=None):
        """Record a bottleneck: ``output`` is the last block output at its stride so far and the
        final bottleneck so far; ``expanded`` (its expansion output, None when it has none) is the
        ``stride{s}_expanded`` tap when the block is the first to leave stride s."""
        stride_in, stride_out = self.stride(block_input), self.stride(output)
        self._record(f"stride{stride_out}", output)
        if expanded is not None and stride_out > stride_in:
            self._record(f"stride{stride_in}_expanded", expanded)
        self._record("final", output)

    def last(self, tensor):
        """Record the last 1x1 layer's output."""
        self._record("last", tensor)

    def attach(self, model):
        """Store ``{role: layer name}`` on ``model`` as ``model.feature_taps``; return ``model``."""
        names = {}
        for role in TAP_ROLES:
            if role in self._tensors:
                tensor = self._tensors[role]
                names[role] = next(layer.name for layer in model.layers if _output(layer) is tensor)
        model.feature_taps = names
        return model


def _output(layer):
    try:
        return layer.output
    except (AttributeError, ValueError):  # a layer called more than once has no single output
        return None
