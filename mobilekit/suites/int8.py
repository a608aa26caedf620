"""Full int8 against float for every family the kit ships, each network's two files timed side by side.

The networks are built untrained, their batch-norm statistics measured on crops of scikit-image's
photos (``models.batch_statistics``) and int8 calibrated on the same crops, so activation ranges are
those of real images; latency does not depend on the weights' values. The detector is converted with
its ``TFLite_Detection_PostProcess`` op, as it ships. ``speedup`` is fp32 ms over int8 ms (the
issue's int8 / fp32 ratio is its inverse).

One row is no network: a single 1x1 convolution (64 to 256 channels at 56x56, a MobileNetV2 expansion),
XNNPACK's int8 against its float convolution kernel on the CPU the suite runs on. Convolutions are most of
every network's time, so the networks' speed-ups stay near that row's: on a 2-core AVX2 x86 (no VNNI) the
int8 and float kernels run at the same rate, about 47 multiply-adds per ns per core, and int8 cannot be
much faster than float there; ARM cores with dot-product instructions and x86 with VNNI run int8 at
several times the float rate.
"""
import numpy as np

from keras_layers.keras_api import keras
from models.batch_statistics import calibrate_batch_norm
from models.data import sample_photos
from models.registry import architecture, build_model
from models.ssdlite import model_anchors
from tflite.converter import convert as convert_classifier
from tflite.detection_export import convert_detector

DESCRIPTION = "int8 vs fp32 of each family on XNNPACK: speed-up of int8"
COMPARE = "quantization"
BATCH_NORM_IMAGES = 8
CALIBRATION_IMAGES = 16
# input side -> (label, registry config): the classifiers at ImageNet size, the segmenters at their papers'
# sizes and the segment quickstart's, the detector at SSDLite's 320
NETWORKS = {
    224: (("mobilenet_v2", {"arch": "mobilenet_v2"}),
          ("mobilenet_v3_large", {"arch": "mobilenet_v3_large"}),
          ("mobilenet_v3_small", {"arch": "mobilenet_v3_small"}),
          ("ghostnet", {"arch": "ghostnet"})),
    512: (("lr_aspp", {"arch": "lr_aspp"}),),
    96: (("lr_aspp_quickstart", {"arch": "lr_aspp", "classes": 4}),),
    513: (("mobile_deeplabv3_os16", {"arch": "mobile_deeplabv3", "output_stride": 16}),),
    320: (("ssdlite_mobilenet_v2", {"arch": "ssdlite", "backbone": "mobilenet_v2"}),),
}
KERNEL_REFERENCE = (56, 56, 64)  # the input of the single convolution (see the module docstring)
SHAPES = tuple((side, side, 3) for side in NETWORKS) + (KERNEL_REFERENCE,)


def calibration_data(shape):
    if shape == KERNEL_REFERENCE:
        return np.random.default_rng(0).standard_normal((CALIBRATION_IMAGES, *shape)).astype(np.float32)
    return sample_photos(shape[0], count=CALIBRATION_IMAGES).astype(np.float32)


def _convolution():
    return keras.Sequential([keras.Input(KERNEL_REFERENCE), keras.layers.Conv2D(256, 1)])


def _build(config, side):
    config = {"image_size": side, "classes": architecture(config["arch"]).default_classes, **config}
    model = build_model(config)
    return calibrate_batch_norm(model, calibration_data((side, side, 3))[:BATCH_NORM_IMAGES])


def candidates(shape):
    if shape == KERNEL_REFERENCE:
        return [("convolution_1x1_64_256", _convolution)]
    return [(label, lambda config=config: _build(config, shape[0])) for label, config in NETWORKS[shape[0]]]


def convert(model, quantization, data):
    """The classifier or segmenter file, the detector's with its post-processing op, or the single
    convolution's (int8 input and output: nothing around the kernel)."""
    if tuple(model.input_shape[1:]) == KERNEL_REFERENCE:
        return convert_classifier(model, quantization, representative_data=data,
                                  **({"io_dtype": "int8"} if quantization == "int8" else {}))
    if any(layer.name == "box_level0" for layer in model.layers):
        return convert_detector(model, model_anchors(model), quantization, representative_data=data)
    return convert_classifier(model, quantization, representative_data=data)
