"""What every kit layer must do, as reusable checks (DESIGN.md, "Keras" section):

gradients that match finite differences, a ``.keras`` round trip that keeps outputs,
and TFLite conversion with builtin ops only, float and full-int8, matching Keras.
Test files import it as ``import layer_contract`` (pytest puts tests/ on sys.path).
"""
import numpy as np
import tensorflow as tf

from keras_layers.keras_api import keras
from tflite import convert, custom_operators
from demo_app.runtime import TFLiteModel


def wrap(layer, input_shape):
    """A one-layer functional model taking ``input_shape`` (no batch axis)."""
    inputs = keras.Input(shape=input_shape)
    return keras.Model(inputs, layer(inputs))


def randomize_batch_norm(layer, seed=0):
    """Give every batch norm inside ``layer`` (or model) non-trivial statistics and affine weights."""
    rng = np.random.default_rng(seed)
    for weight in layer.weights:
        if any(name in weight.name for name in ("gamma", "moving_variance")):
            weight.assign(rng.uniform(0.5, 1.5, weight.shape))
        elif any(name in weight.name for name in ("beta", "moving_mean")):
            weight.assign(rng.normal(0, 0.3, weight.shape))


def sign(x):
    """NumPy sign with sign(0) = +1, the convention of the kit's binary quantizers."""
    return np.where(x >= 0, 1.0, -1.0)


def off_zero_inputs(input_shape, count, seed=0):
    """Random inputs with |x| >= 0.25, whose signs survive int8 quantization (int8 rounding flips
    the sign of values within half a step of 0)."""
    x = random_inputs(input_shape, count, seed)
    return (sign(x) * (0.25 + np.abs(x))).astype(np.float32)


def random_inputs(input_shape, count=1, seed=0, scale=1.0):
    return (np.random.default_rng(seed).standard_normal((count, *input_shape)) * scale).astype(np.float32)


def assert_gradients_match_finite_differences(make_layer, input_shape, seed=0, delta=1e-3, atol=1e-5, rtol=1e-3):
    """Jacobian of a float64 instance of the layer w.r.t. its input, analytic vs numeric.

    ``make_layer(dtype)`` returns a fresh layer computing in ``dtype``.
    """
    layer = make_layer("float64")
    x = tf.constant(random_inputs(input_shape, seed=seed).astype(np.float64))
    layer(x)  # build
    theoretical, numerical = tf.test.compute_gradient(lambda t: layer(t), [x], delta=delta)
    np.testing.assert_allclose(theoretical[0], numerical[0], atol=atol, rtol=rtol)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(layer(x)))
    grads = tape.gradient(loss, layer.trainable_weights)
    assert all(g is not None for g in grads), "a trainable weight gets no gradient"


def assert_serialization_round_trip(layer, input_shape, tmp_path, atol=1e-6):
    """``get_config``/``from_config`` and a ``.keras`` save/load keep the outputs."""
    model = wrap(layer, input_shape)
    x = random_inputs(input_shape, count=2, seed=1)
    expected = np.asarray(model(x, training=False))
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    path = str(tmp_path / f"{layer.name}.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    np.testing.assert_allclose(np.asarray(restored(x, training=False)), expected, atol=atol)
    assert type(restored.layers[-1]) is type(layer)


def assert_tflite_matches_keras(model, input_shape, fp32_atol=1e-4, int8_rel=0.05, samples=32, data=None):
    """fp32 and full-int8 (int8 I/O) conversions: builtin ops only, outputs close to Keras.

    int8 error is measured relative to the output's range over the samples (``data``, or
    ``samples`` random inputs). Returns ``{quantization: max_abs_error}``.
    """
    data = random_inputs(input_shape, count=samples, seed=2) if data is None else data
    expected = np.asarray(model.predict(data, verbose=0))
    errors = {}
    for quantization, io_dtype in (("fp32", "float32"), ("int8", "int8")):
        model_bytes = convert(model, quantization, representative_data=data, io_dtype=io_dtype)
        assert custom_operators(model_bytes) == [], f"{quantization}: needs non-builtin ops"
        runtime = TFLiteModel.from_bytes(model_bytes)
        actual = np.stack([runtime.run(x)[0][0] for x in data])
        errors[quantization] = float(np.max(np.abs(actual - expected)))
    assert errors["fp32"] <= fp32_atol, errors
    value_range = float(expected.max() - expected.min()) or 1.0
    assert errors["int8"] <= int8_rel * value_range, (errors, value_range)
    return errors
