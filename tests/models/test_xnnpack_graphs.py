"""The dense-prediction heads written so that their TFLite graphs stay on XNNPACK: atrous backbones as
dilated builtins, DeepLab's image pooling as a bilinear resize, SSDLite's concatenations nested to at
most five inputs; each the same function as before."""
import numpy as np
import pytest

from keras_layers.dilated import DilatedDepthwiseConv2D
from keras_layers.keras_api import keras
from models.batch_statistics import calibrate_batch_norm
from models.deeplab import lr_aspp, mobile_deeplabv3
from models.ssdlite import MAX_CONCAT_INPUTS, model_anchors, ssdlite
from tflite.converter import convert
from tflite.detection_export import POSTPROCESS_OP, convert_detector
from tflite.op_profile import xnnpack_coverage


def images(size, count=4, low=-1.0, high=1.0):
    return np.random.default_rng(0).uniform(low, high, (count, size, size, 3)).astype(np.float32)


def left_to_tflite(model, quantization, data):
    """The operators of ``model``'s file that XNNPACK does not run."""
    return [op for op, on_xnnpack in xnnpack_coverage(convert(model, quantization, representative_data=data))
            if not on_xnnpack]


@pytest.mark.slow
def test_lr_aspp_on_an_atrous_mobilenet_v3_runs_on_xnnpack_in_float_and_int8():
    keras.utils.set_random_seed(0)
    model = lr_aspp(input_shape=(64, 64, 3), classes=3, alpha=0.5)
    assert sum(isinstance(layer, DilatedDepthwiseConv2D) for layer in model.layers) == 2  # OS16: the last two blocks
    data = images(64)
    calibrate_batch_norm(model, data)
    assert left_to_tflite(model, "fp32", data) == []
    # int8: hard-swish, the pixels' scaling and softmax rewritten (tflite.xnnpack_int8)
    assert left_to_tflite(model, "int8", data) == []


@pytest.mark.slow
def test_mobile_deeplabv3_image_pooling_spreads_the_pooled_vector_and_runs_on_xnnpack():
    keras.utils.set_random_seed(0)
    model = mobile_deeplabv3(input_shape=(65, 65, 3), classes=3, alpha=0.35)
    data = images(65)
    calibrate_batch_norm(model, data)
    pooled, spread = (model.get_layer(name).output for name in ("aspp_pool_conv_relu", "aspp_pool_tile"))
    pooled, spread = keras.Model(model.inputs, [pooled, spread]).predict(data, verbose=0)
    assert spread.shape[1:3] == model.get_layer("aspp_1x1").output.shape[1:3]
    np.testing.assert_allclose(spread, np.broadcast_to(pooled, spread.shape), atol=1e-6)  # tiling, exactly
    assert np.ptp(pooled) > 0.1
    assert left_to_tflite(model, "fp32", data) == []


def test_ssdlite_concatenates_the_levels_in_order_with_at_most_five_inputs_per_op():
    keras.utils.set_random_seed(0)
    model = ssdlite(input_shape=(96, 96, 3), classes=2, alpha=0.35, extra_depths=(64, 32, 32, 16))
    concatenations = [layer for layer in model.layers if isinstance(layer, keras.layers.Concatenate)]
    assert max(len(layer.input) for layer in concatenations) <= MAX_CONCAT_INPUTS
    levels = [model.get_layer(f"{kind}_level{level}_flat").output for kind in ("box", "class") for level in range(6)]
    data = images(96, low=0, high=255)
    outputs, *parts = keras.Model(model.inputs, [model.output, *levels]).predict(data, verbose=0)
    np.testing.assert_array_equal(outputs[..., :4], np.concatenate(parts[:6], axis=1))
    np.testing.assert_array_equal(outputs[..., 4:], np.concatenate(parts[6:], axis=1))
    coverage = xnnpack_coverage(convert_detector(model, model_anchors(model)))  # the file as it ships: batch 1
    assert [op for op, on_xnnpack in coverage if not on_xnnpack] == [POSTPROCESS_OP]
