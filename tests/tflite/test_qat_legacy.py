"""Quantization-aware training of the kit's layers and models under tf_keras (TFMOT)."""
import numpy as np
import pytest

from keras_layers.keras_api import LEGACY_KERAS, keras
from qat_models import kit_layer_chain

pytestmark = [pytest.mark.legacy_keras,
              pytest.mark.skipif(not LEGACY_KERAS, reason="run with TF_USE_LEGACY_KERAS=1")]


def test_every_kit_layer_family_trains_quantized_and_converts_to_full_int8():
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from demo_app.runtime import TFLiteModel
    from plain_converter import tf_converter_int8
    from tflite import custom_operators
    from tflite.qat_tfmot import quantize_model

    keras.utils.set_random_seed(0)
    model = kit_layer_chain()
    quantized = quantize_model(model)
    kit = [layer for layer in quantized.layers
           if type(getattr(layer, "layer", None)).__module__.startswith("keras_layers")]
    assert len(kit) == 11 and all(type(layer).__name__ == "QuantizeWrapperV2" for layer in kit)

    rng = np.random.default_rng(0)
    data, labels = rng.standard_normal((32, 8, 8, 8)).astype(np.float32), rng.integers(0, 4, 32)
    quantized.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    quantized.fit(data, labels, epochs=1, batch_size=16, verbose=0)  # trains the ranges
    # as the converter writes it: the kit's own int8 file computes narrow convolutions and softmax in float
    # (tflite.xnnpack_int8), which is not what this checks
    model_bytes = tf_converter_int8(quantized, data)
    assert custom_operators(model_bytes) == []
    interpreter = Interpreter(model_content=model_bytes,
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    dtypes = {t["index"]: t["dtype"] for t in interpreter.get_tensor_details()}
    float_ops = [op["op_name"] for op in interpreter._get_ops_details()
                 if op["op_name"] not in ("QUANTIZE", "DEQUANTIZE")
                 and any(dtypes[i] == np.float32 for i in op["inputs"] if i >= 0)]
    assert float_ops == [], f"operators left in float: {float_ops}"

    runtime = TFLiteModel.from_bytes(model_bytes)  # XNNPACK accepts the whole graph
    actual = np.stack([runtime.run(x)[0][0] for x in data])
    expected = quantized.predict(data, verbose=0)
    assert np.max(np.abs(actual - expected)) <= 0.1 * (expected.max() - expected.min())


def test_flattened_model_and_weight_exchange_keep_outputs(tmp_path):
    from models.mobilenet_v3 import mobilenet_v3_small
    from models.train import with_preprocessing
    from tflite.qat_tfmot import flatten_preprocessing, load_layer_weights, save_layer_weights

    def build():
        return with_preprocessing(mobilenet_v3_small(input_shape=(32, 32, 3), alpha=0.75, classes=10))

    model = build()
    images = np.random.default_rng(1).uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
    flat = flatten_preprocessing(model)
    assert not any(isinstance(layer, keras.Model) for layer in flat.layers)
    np.testing.assert_array_equal(np.asarray(flat(images)), np.asarray(model(images)))

    save_layer_weights(model, str(tmp_path / "weights.npz"))
    other = load_layer_weights(build(), str(tmp_path / "weights.npz"))
    np.testing.assert_array_equal(np.asarray(other(images)), np.asarray(model(images)))

