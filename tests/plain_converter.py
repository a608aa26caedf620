"""Full-int8 files as TensorFlow's converter writes them, without the kit's XNNPACK rewrites
(``tflite.xnnpack_int8``): the independent reference the rewrites are checked against, and files
with the ops XNNPACK leaves (int8 hard-swish) for the profiler to find."""
import tensorflow as tf

from tflite.converter import representative_dataset


def tf_converter_int8(model, data, io_dtype=tf.int8):
    """``model`` converted to full int8 by ``TFLiteConverter`` alone, calibrated on ``data``."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset(data, len(data))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = io_dtype
    return converter.convert()
