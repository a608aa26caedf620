"""Quantization-aware training of Keras 3 models in the same process (``tflite.qat``): the
quantizers against the int8 arithmetic written out, batch-norm folding, the rebuilt graph, and the
int8 file the converter reads from the fake-quantization ops."""
import numpy as np
import pytest
import tensorflow as tf

from keras_layers.keras_api import LEGACY_KERAS, keras
from qat_models import kit_layer_chain

pytestmark = pytest.mark.skipif(LEGACY_KERAS, reason="Keras 3 only (tf_keras: tflite.qat_tfmot)")
layers = keras.layers


def _reference_kernel(kernel, axes):
    """Symmetric narrow-range int8 rounding, the scale max|w| / 127 over ``axes``, written out."""
    scale = np.maximum(np.abs(kernel).max(axis=axes, keepdims=True), 1e-8) / 127
    return np.clip(np.round(kernel / scale), -127, 127) * scale


def test_kernels_are_rounded_to_the_int8_grid_per_channel_with_a_straight_through_gradient():
    from tflite.fake_quant import quantize_kernel

    rng = np.random.default_rng(0)
    conv = rng.normal(0, 1, (3, 3, 4, 6)).astype(np.float32) * rng.uniform(0.01, 2, 6).astype(np.float32)
    np.testing.assert_allclose(quantize_kernel(tf.constant(conv)), _reference_kernel(conv, (0, 1, 2)), atol=1e-6)
    depthwise = rng.normal(0, 1, (3, 3, 4, 2)).astype(np.float32)
    expected = _reference_kernel(depthwise.reshape(3, 3, 8), (0, 1)).reshape(3, 3, 4, 2)
    np.testing.assert_allclose(quantize_kernel(tf.constant(depthwise), depthwise=True), expected, atol=1e-6)
    dense = rng.normal(0, 1, (5, 3)).astype(np.float32)
    np.testing.assert_allclose(quantize_kernel(tf.constant(dense), per_channel=False),
                               _reference_kernel(dense, None), atol=1e-6)

    variable = tf.Variable(conv)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(quantize_kernel(variable) * tf.constant(conv))
    np.testing.assert_allclose(tape.gradient(loss, variable), conv)  # d(round)/dw taken as 1


def test_activation_ranges_calibrate_to_what_they_see_then_follow_the_training_average():
    from tflite.fake_quant import ActivationQuantizer

    quantizer = ActivationQuantizer(momentum=0.9)
    first, second = np.array([[-1.0, 2.0]], np.float32), np.array([[0.5, 4.0]], np.float32)
    quantizer.observing = True
    quantizer(first), quantizer(second)
    quantizer.observing = False
    assert (float(quantizer.range_min), float(quantizer.range_max)) == (-1.0, 4.0)
    quantizer(np.array([[-3.0, 1.0]], np.float32), training=False)  # inference leaves the range alone
    assert (float(quantizer.range_min), float(quantizer.range_max)) == (-1.0, 4.0)
    quantizer(np.array([[-3.0, 1.0]], np.float32), training=True)
    np.testing.assert_allclose([float(quantizer.range_min), float(quantizer.range_max)],
                               [0.9 * -1 + 0.1 * -3, 0.9 * 4 + 0.1 * 1], rtol=1e-6)

    values = np.linspace(-2, 5, 101, dtype=np.float32)[None]
    low, high = float(quantizer.range_min), float(quantizer.range_max)
    scale = (high - low) / 255
    zero_point = np.clip(np.round(-128 - low / scale), -128, 127)  # the range nudged so that 0 is on the grid
    expected = (np.clip(np.round(values / scale) + zero_point, -128, 127) - zero_point) * scale
    np.testing.assert_allclose(quantizer(values), expected, atol=1e-5)


@pytest.mark.parametrize("make", [lambda: layers.Conv2D(6, 3, padding="same", use_bias=False),
                                  lambda: layers.Conv2D(6, 3, strides=2, use_bias=True),
                                  lambda: layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same"),
                                  lambda: layers.Dense(6)])
def test_batch_norm_folds_into_the_kernel_exactly_in_inference(make):
    from tflite.fake_quant import QuantizedLayer

    rng = np.random.default_rng(1)
    images = rng.normal(0, 1, (2, 8, 8, 4)).astype(np.float32)
    layer, norm = make(), layers.BatchNormalization(epsilon=1e-3)
    channels = norm(layer(images), training=False).shape[-1]
    gamma, variance = rng.uniform(0.5, 2, channels), rng.uniform(0.5, 2, channels)
    norm.set_weights([gamma, rng.normal(0, 1, channels), rng.normal(0, 1, channels), variance])
    expected = norm(layer(images), training=False)
    quantized = QuantizedLayer(layer, norm, quantize_output=False)
    quantized.build(images.shape)
    kernel, shift = quantized.folded_weights()
    if isinstance(layer, layers.Dense):
        folded = images @ kernel.numpy() + (layer.bias.numpy() if layer.use_bias else 0) + shift.numpy()
    else:
        from tflite.fake_quant import substituted

        with substituted({(layer, "kernel"): kernel}):
            folded = layer(images).numpy() + shift.numpy()
    np.testing.assert_allclose(folded, expected, atol=1e-5)


def _small_classifier():
    """Rescaling and a functional backbone nested in a Sequential: convolutions with batch norm and
    ReLU6 / ReLU, a depthwise one, a residual add, pooling, a dense softmax head."""
    inputs = keras.Input((16, 16, 3))
    x = layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False, name="stem")(inputs)
    x = layers.ReLU(6.0, name="stem_relu")(layers.BatchNormalization(name="stem_bn")(x))
    y = layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="dw")(x)
    y = layers.ReLU(name="dw_relu")(layers.BatchNormalization(name="dw_bn")(y))
    x = layers.Add(name="add")([x, layers.Conv2D(8, 1, name="project")(y)])
    x = layers.GlobalAveragePooling2D(name="pool")(layers.MaxPooling2D(name="max_pool")(x))
    backbone = keras.Model(inputs, layers.Dense(4, activation="softmax", name="head")(x), name="backbone")
    return keras.Sequential([keras.Input((16, 16, 3)), layers.Rescaling(1 / 127.5, -1, name="scale"), backbone])


def _data(seed=0, count=48):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, count)
    images = rng.integers(0, 256, (count, 16, 16, 3)).astype(np.float32)
    images[..., 0] = np.where(labels[:, None, None] % 2, images[..., 0] * 0.3, images[..., 0])  # learnable signal
    images[..., 1] = np.where(labels[:, None, None] >= 2, images[..., 1] * 0.3, images[..., 1])
    return images, labels


def test_the_rebuilt_graph_folds_batch_norm_fuses_relu_and_quantizes_every_int8_tensor():
    from tflite.fake_quant import ActivationQuantizer, QuantizedLayer
    from tflite.qat import plan, quantize_model

    model = _small_classifier()
    steps = {name: step for name, step in zip(
        ["scale", "stem", "stem_bn", "stem_relu", "dw", "dw_bn", "dw_relu", "project", "add", "max_pool", "pool",
         "head"], plan(model))}
    assert steps["stem"][0] == "kernels" and steps["stem"][1].name == "stem_bn" and steps["stem"][2].name == "stem_relu"
    assert [steps[name][0] for name in ("stem_bn", "stem_relu", "dw_bn", "dw_relu")] == ["fused"] * 4
    assert [steps[name][0] for name in ("scale", "add", "pool", "max_pool", "project", "head")] == [
        "output", "output", "output", "same", "kernels", "kernels"]

    images, _ = _data()
    quantized = quantize_model(model, images)
    kinds = [type(layer).__name__ for layer in quantized.layers]
    assert kinds.count("QuantizedLayer") == 4 and not any(isinstance(layer, keras.Model) for layer in quantized.layers)
    assert kinds.count("BatchNormalization") == 0 and kinds.count("ReLU") == 0  # inside the QuantizedLayers
    head = quantized.get_layer("head_quant")
    assert isinstance(head, QuantizedLayer) and head.inner_quantizer is not None  # softmax is not fused: logits quantized
    assert all(float(q.observed) == 1.0 for q in quantized.layers if isinstance(q, ActivationQuantizer))
    # calibrated: before any training the QAT model computes what the float model does, up to int8 rounding
    np.testing.assert_allclose(quantized.predict(images, verbose=0), model.predict(images, verbose=0), atol=0.05)
    np.testing.assert_array_equal(model.layers[1].get_layer("stem").get_weights()[0],
                                  quantized.get_layer("stem_quant").layer.get_weights()[0])  # a copy, not shared


def test_qat_trains_its_ranges_and_converts_to_an_integer_only_file_xnnpack_runs_as_keras_computes():
    from demo_app.runtime import TFLiteModel
    from tflite import custom_operators
    from tflite.converter import convert
    from tflite.inspect import float_operators
    from tflite.op_profile import xnnpack_coverage
    from tflite.qat import fine_tune, quantize_model
    from models.classification_data import ClassificationData

    keras.utils.set_random_seed(0)
    model = _small_classifier()
    images, labels = _data()
    quantized = quantize_model(model, images)
    before = quantized.get_layer("stem_quant").output_quantizer.range_max.numpy()
    pixels = images.astype(np.uint8)
    data = ClassificationData((pixels, labels), (pixels[:16], labels[:16]), (pixels, labels), tuple("abcd"))
    fine_tune(quantized, data, epochs=2, learning_rate=1e-3, batch_size=16, verbose=0)
    assert quantized.get_layer("stem_quant").output_quantizer.range_max.numpy() != before

    model_bytes = convert(quantized, "int8", images, io_dtype="float32", integer_only=True)
    names = [name for name, _ in xnnpack_coverage(model_bytes)]
    assert custom_operators(model_bytes) == [] and float_operators(model_bytes) == []
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "MEAN", "SOFTMAX"} <= set(names)
    assert "BATCH_NORM" not in " ".join(names) and names.count("CONV_2D") == 2  # batch norm folded away
    # XNNPACK takes every op it has an int8 kernel for (none for SOFTMAX: TFLite's int8 kernel runs it)
    assert {name for name, on_xnnpack in xnnpack_coverage(model_bytes) if not on_xnnpack} <= {"SOFTMAX", "QUANTIZE"}

    # the float rewrites: the pixels' scaling, the stem, softmax
    assert float_operators(convert(quantized, "int8", images)) == ["MUL", "ADD", "CONV_2D", "SOFTMAX"]
    runtime = TFLiteModel.from_bytes(model_bytes)
    actual = np.concatenate([runtime.run(image[None])[0] for image in images])
    expected = quantized.predict(images, verbose=0)
    assert np.abs(actual - expected).max() <= 3 / 256  # a few steps of the softmax's 1/256 grid
    assert (actual.argmax(1) == expected.argmax(1)).mean() >= 0.95


def test_every_kit_layer_family_trains_quantized_and_converts_to_integer_only_int8():
    from tflite import custom_operators
    from tflite.converter import convert
    from tflite.fake_quant import QuantizedLayer
    from tflite.inspect import float_operators
    from tflite.qat import quantize_model

    keras.utils.set_random_seed(0)
    model = kit_layer_chain()
    rng = np.random.default_rng(0)
    data, labels = rng.standard_normal((32, 8, 8, 8)).astype(np.float32), rng.integers(0, 4, 32)
    quantized = quantize_model(model, data)
    kit = [layer for layer in quantized.layers if isinstance(layer, QuantizedLayer)
           and type(layer.layer).__module__.startswith("keras_layers")]
    assert len(kit) == 11
    quantized.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    quantized.fit(data, labels, epochs=1, batch_size=16, verbose=0)
    model_bytes = convert(quantized, "int8", data, io_dtype="float32", integer_only=True)
    assert custom_operators(model_bytes) == [] and float_operators(model_bytes) == []


def test_a_qat_model_saves_and_loads_with_its_ranges(tmp_path):
    from tflite.qat import quantize_model

    images, _ = _data()
    quantized = quantize_model(_small_classifier(), images)
    quantized.save(tmp_path / "qat.keras")
    loaded = keras.models.load_model(tmp_path / "qat.keras")
    np.testing.assert_allclose(loaded.predict(images, verbose=0), quantized.predict(images, verbose=0), atol=1e-6)


class _Scale(layers.Layer):
    """A user layer with a weight QAT knows nothing of."""

    def build(self, input_shape):
        self.factor = self.add_weight(shape=(), initializer="ones")

    def call(self, inputs):
        return inputs * self.factor


def test_layers_it_cannot_quantize_are_named_or_kept_float():
    from keras_layers.binary import QuantConv2D
    from tflite.qat import quantize_model

    images, _ = _data(count=4)
    inputs = keras.Input((16, 16, 3))
    user = keras.Model(inputs, layers.Dense(2)(layers.Flatten()(_Scale(name="my_scale")(inputs))))
    with pytest.raises(ValueError, match=r"^layer my_scale \(_Scale\) has weights .* keep_float=\['my_scale'\]"):
        quantize_model(user, images)
    kept = quantize_model(user, images, keep_float=["my_scale"])
    assert "my_scale" in [layer.name for layer in kept.layers]
    with pytest.raises(ValueError, match=r"keep_float names no layer of model .*: nothing"):
        quantize_model(user, images, keep_float=["nothing"])

    binary = keras.Sequential([keras.Input((16, 16, 3)), QuantConv2D(4, 3, input_quantizer="ste_sign",
                                                                     kernel_quantizer="ste_sign", name="xnor")])
    with pytest.raises(ValueError, match=r"^layer xnor \(QuantConv2D\) quantizes itself"):
        quantize_model(binary, images)

    class Subclassed(keras.Model):
        def call(self, inputs):
            return inputs

    subclassed = Subclassed()
    subclassed(images)
    with pytest.raises(ValueError, match="subclassed keras.Model"):
        quantize_model(subclassed, images)
