"""SSDLite detector -> ``.tflite`` that ends in ``TFLite_Detection_PostProcess``, the way SSD models
for phones ship: one uint8/float image in; boxes ``(1, D, 4)`` normalized
``[ymin, xmin, ymax, xmax]``, classes ``(1, D)`` (0-based, background excluded), scores
``(1, D)`` and the count ``(1,)`` out.

The op decodes the box encodings against the anchors baked into the file (scales 10, 10, 5, 5,
``models.box_coding``) and runs class-agnostic ("fast") non-maximum suppression. TensorFlow
has no such op: a ``tf.function`` whose ``experimental_implements`` attribute carries the
op's NodeDef text stands in for it, the wrapper is saved as a SavedModel and converted with
``from_saved_model`` and ``allow_custom_ops``; the converter then emits the op, which every
TFLite runtime (ai-edge-litert included) has built in. Everything else is builtin ops.
"""
import tempfile

import numpy as np
import tensorflow as tf

from keras_layers.dilated import single_dilated_ops
from keras_layers.keras_api import keras
from models.box_coding import BOX_SCALES, PostProcessing
from models.ssdlite import num_classes
from tflite.converter import CALIBRATED, CONVERTER_NOISE, OPS_SETS, quiet_conversion, representative_dataset
from tflite.xnnpack_int8 import for_xnnpack

POSTPROCESS_OP = "TFLite_Detection_PostProcess"
DETECTION_QUANTIZATIONS = ("fp32", "int8", "int16x8")


def _implements_signature(num_classes, settings):
    attrs = {
        "max_detections": f"i: {settings.max_detections}",
        "max_classes_per_detection": "i: 1",
        "detections_per_class": "i: 100",
        "use_regular_nms": "b: false",
        "nms_score_threshold": f"f: {settings.score_threshold:f}",
        "nms_iou_threshold": f"f: {settings.iou_threshold:f}",
        "y_scale": f"f: {BOX_SCALES[0]:f}",
        "x_scale": f"f: {BOX_SCALES[1]:f}",
        "h_scale": f"f: {BOX_SCALES[2]:f}",
        "w_scale": f"f: {BOX_SCALES[3]:f}",
        "num_classes": f"i: {num_classes}",
    }
    fields = [f'attr {{ key: "{key}" value {{ {value} }} }}' for key, value in attrs.items()]
    return " ".join([f'name: "{POSTPROCESS_OP}"', *fields])


def _postprocess_stand_in(num_classes, settings):
    """A tf.function the converter replaces by ``TFLite_Detection_PostProcess``."""
    @tf.function(experimental_implements=_implements_signature(num_classes, settings))
    def postprocess(box_encodings, class_scores, anchors):
        del box_encodings, class_scores, anchors  # the TFLite op replaces this body
        return (tf.constant(0.0, name="boxes"), tf.constant(0.0, name="classes"),
                tf.constant(0.0, name="scores"), tf.constant(0.0, name="num_detections"))
    return postprocess


def _save_detector(model, anchors, settings, path):
    """Save the Keras detector, softmax scores and the post-processing stand-in as a SavedModel."""
    postprocess = _postprocess_stand_in(num_classes(model), settings)
    anchors = tf.constant(np.asarray(anchors, np.float32))

    def serve(pixels):
        outputs = model(pixels, training=False)
        return postprocess(outputs[..., :4], tf.nn.softmax(outputs[..., 4:]), anchors)

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", serve,
                         input_signature=[tf.TensorSpec([1, *model.inputs[0].shape[1:]], tf.float32, name="pixels")])
    archive.write_out(path, verbose=False)


def outputs_in_op_order(model_bytes):
    """Make the file's outputs the post-processing op's, in its order: boxes, classes, scores, count.

    The converter lists a signature's outputs in an order of its own; SSD files for phones (and
    the demo) expect the op's order.
    """
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(model_bytes))
    codes = [i for i, code in enumerate(model.operatorCodes)
             if code.customCode is not None and code.customCode.decode() == POSTPROCESS_OP]
    subgraph = model.subgraphs[0]
    ops = [op for op in subgraph.operators if op.opcodeIndex in codes]
    if len(ops) != 1:
        raise ValueError(f"expected one {POSTPROCESS_OP} op in the converted detector, found {len(ops)}")
    subgraph.outputs = list(ops[0].outputs)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _is_export_noise(line):
    """What saving the SavedModel and converting it print on success."""
    return CONVERTER_NOISE.match(line) or not line.strip() or line.startswith(("W0000", "I0000", "WARNING: All log"))


def convert_detector(model, anchors, quantization="fp32", representative_data=None, settings=PostProcessing(),
                     calibration_steps=200):
    """Convert an SSDLite ``model`` (pixels in, ``(N, A, 4 + C + 1)`` out) with its ``anchors``.

    ``int8`` quantizes everything before the post-processing op to int8 with a uint8 image
    input, calibrated on ``representative_data`` (images in the model's input range); the
    op itself and the four outputs stay float. ``int16x8`` does the same with int16 activations
    and int8 weights behind a float image input (the converter allows no uint8 input there). An
    op without a kernel of the calibrated type (the post-processing op; a MobileNetV3 backbone's
    HARD_SWISH under int16x8) stays float. Returns the flatbuffer bytes.
    """
    if quantization not in DETECTION_QUANTIZATIONS:
        raise ValueError(f"detector quantization {quantization!r} is not supported: expected one of "
                         f"{', '.join(DETECTION_QUANTIZATIONS)}")
    if quantization in CALIBRATED and representative_data is None:
        raise ValueError(f"{quantization} quantization needs representative_data (images of the model's input)")
    if len(anchors) != model.outputs[0].shape[1]:
        raise ValueError(f"{len(anchors)} anchors given but the model predicts {model.outputs[0].shape[1]} boxes")
    with (tempfile.TemporaryDirectory() as saved_model, quiet_conversion(("",), _is_export_noise),
          single_dilated_ops()):
        _save_detector(model, anchors, settings, saved_model)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
        converter.allow_custom_ops = True
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantization in CALIBRATED:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = representative_dataset(representative_data, calibration_steps)
            converter.target_spec.supported_ops = [OPS_SETS[quantization], tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantization == "int8":
            converter.inference_input_type = tf.uint8
        model_bytes = converter.convert()
    if quantization == "int8":  # ops XNNPACK runs fast (tflite.xnnpack_int8)
        model_bytes = for_xnnpack(model_bytes)[0]
    return outputs_in_op_order(model_bytes)
