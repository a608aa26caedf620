"""RepConv (Shi et al., "RepBNN: Towards a Precise Binary Neural Network with Enhanced Feature
Map via Repeating", 2022): a binary convolution whose input or output is replicated beta times
along the channels ("Rep" means repeating; nothing to do with RepVGG).

    RepConv(x) = tile_out(BinConv(tile_in(x)))

``tile_in`` repeats the C_in input channels ``input_replicas`` times; the convolution makes
``filters / output_replicas`` maps, which ``tile_out`` repeats ``output_replicas`` times.

The RepTran rule used by the Rep networks (``models.binary_nets``): every feature map is beta
times wider (the stem's output is replicated beta times), and each binary convolution maps the
beta*C_in-channel input to C_out/beta maps replicated beta^2 times, back to beta*C_out channels.
Its kernel has k*k*(beta*C_in)*(C_out/beta) = k*k*C_in*C_out entries and the same multiply-adds
as the plain convolution C_in -> C_out; the batch norms after it see beta*C_out channels, so
each copy of a map gets its own scale and shift and the next binarization its own threshold:
the enhanced feature map, at the cost of beta times the (float) batch-norm parameters only.
"""
import tensorflow as tf

from keras_layers.binary import QuantConv2D
from keras_layers.keras_api import serializable


def replicate_channels(x, replicas):
    """``x`` repeated ``replicas`` times along the channels: [x, x, ..., x]."""
    return x if replicas == 1 else tf.concat([x] * replicas, axis=-1)


@serializable
class RepConv(QuantConv2D):
    """Quantized convolution with channel replication of its input and/or output (see the module).

    Args:
        filters: output channels after replication (a multiple of ``output_replicas``).
        kernel_size, strides, padding, and the quantization arguments: as ``QuantConv2D``.
        input_replicas: times the input is repeated along channels before the convolution.
        output_replicas: times the convolution's ``filters / output_replicas`` maps are repeated.
    """

    def __init__(self, filters, kernel_size, strides=1, padding="same", input_replicas=1, output_replicas=1,
                 **kwargs):
        for name, value in (("input_replicas", input_replicas), ("output_replicas", output_replicas)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"RepConv {name} must be a positive integer, got {value!r}")
        if not isinstance(filters, int) or filters < 1 or filters % output_replicas:
            raise ValueError(f"RepConv filters must be a positive multiple of output_replicas={output_replicas}, "
                             f"got {filters!r}")
        super().__init__(filters // output_replicas, kernel_size, strides, padding, **kwargs)
        self.input_replicas, self.output_replicas = input_replicas, output_replicas

    def build(self, input_shape):
        super().build((*input_shape[:-1], int(input_shape[-1]) * self.input_replicas))

    def call(self, inputs):
        outputs = super().call(replicate_channels(inputs, self.input_replicas))
        return replicate_channels(outputs, self.output_replicas)

    def compute_output_shape(self, input_shape):
        return (*super().compute_output_shape(input_shape)[:-1], self.filters * self.output_replicas)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters * self.output_replicas,
                "input_replicas": self.input_replicas, "output_replicas": self.output_replicas}
