"""Binary 3x3 convolutions against the float Conv2D 3x3 of the same shape (channels kept).

TFLite rows: the simulated BWN and XNOR layers (``keras_layers.binary``) convert to ordinary
convolutions (plus sign and scale ops), so they cost what Conv2D costs, or more: TFLite
has no binary kernel. Host rows (``host_rows``): the bit-packed XNOR-popcount kernel of
``tflite.xnor_kernel`` against the float im2col + BLAS convolution, both in NumPy on one
image, timed in the same run; the binary kernel's ceiling is 64 MACs per 64-bit word op.
"""
from keras_layers.binary import bwn_conv2d, xnor_conv2d
from keras_layers.keras_api import keras
from mobilekit.suites import one_layer_model
from tflite.xnor_kernel import benchmark

DESCRIPTION = "Binary 3x3 convolutions (BWN, XNOR; TFLite and bit-packed NumPy) vs Conv2D 3x3"
SHAPES = ((28, 28, 128), (14, 14, 256))


def candidates(shape):
    channels = shape[-1]
    return [
        ("conv3x3", lambda: one_layer_model(shape, keras.layers.Conv2D(channels, 3, padding="same",
                                                                       use_bias=False))),
        ("bwn3x3", lambda: one_layer_model(shape, bwn_conv2d(channels, 3))),
        ("xnor3x3", lambda: one_layer_model(shape, xnor_conv2d(channels, 3))),
    ]


def host_rows(shape, runs, rounds, progress):
    """Rows for the NumPy kernels at ``shape``: float im2col + BLAS (baseline) and packed XNOR."""
    progress(f"timing the packed XNOR kernel at {'x'.join(map(str, shape))}")
    result = benchmark(tuple(shape), shape[-1], runs=runs, rounds=rounds)
    params = 9 * shape[-1] * shape[-1]
    common = {"shape": result["shape"], "quantization": "numpy", "params": params, "macs": result["macs"],
              "param_reduction": 1.0}
    return [{**common, "layer": "conv3x3_im2col_blas", "median_ms": result["float_ms"], "speedup": 1.0},
            {**common, "layer": "xnor3x3_packed", "median_ms": result["xnor_ms"], "speedup": result["speedup"]},
            {**common, "layer": "xnor3x3_packed+packing", "median_ms": result["xnor_with_packing_ms"],
             "speedup": result["speedup_with_packing"]}]
