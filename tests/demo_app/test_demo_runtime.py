"""TFLiteModel: outputs against Keras, input quantization, metadata and load errors."""
import os
import time

import numpy as np
import pytest
from demo_helpers import IMAGE_SHAPE, NUM_CLASSES, random_images

from demo_app.runtime import TFLiteModel


def test_fp32_matches_keras_per_sample_and_batched(keras_image_model, fp32_model_path):
    x = random_images(8, seed=5)
    expected = keras_image_model.predict(x, verbose=0)
    model = TFLiteModel(fp32_model_path, num_threads=1)
    per_sample = np.concatenate([model.run(sample)[0] for sample in x])
    assert np.abs(per_sample - expected).max() <= 1e-5
    assert np.abs(model.run(x)[0] - expected).max() <= 1e-5  # batch of 8: the input is resized


@pytest.mark.parametrize("io_dtype", ["uint8", "int8"])
def test_int8_matches_keras(keras_image_model, quantized_model_paths, io_dtype):
    model = TFLiteModel(quantized_model_paths[io_dtype])
    assert model.input_dtype == np.dtype(io_dtype)
    assert model.output_details[0]["dtype"] == np.dtype(io_dtype)
    x = random_images(64, seed=6)
    expected = keras_image_model.predict(x, verbose=0)
    got = np.concatenate([model.run(sample)[0] for sample in x])
    assert got.dtype == np.float32
    assert np.abs(got - expected).max() <= 0.05
    top2 = np.sort(expected, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 0.05  # near-ties may flip under quantization
    assert clear.sum() >= 16
    np.testing.assert_array_equal(got.argmax(1)[clear], expected.argmax(1)[clear])
    assert (got.argmax(1) == expected.argmax(1)).mean() >= 0.9
    assert len(set(expected.argmax(1))) >= 2  # the comparison is not a constant class


@pytest.mark.parametrize("io_dtype", ["uint8", "int8"])
def test_input_quantization_matches_numpy(quantized_model_paths, io_dtype):
    model = TFLiteModel(quantized_model_paths[io_dtype])
    scale, zero_point = model.input_details["quantization"]
    rng = np.random.default_rng(7)
    x = rng.uniform(-40, 300, (1,) + IMAGE_SHAPE).astype(np.float32)  # fractions and out-of-range values
    x.flat[:4] = [-1000.0, 12.4, 12.6, 1000.0]
    info = np.iinfo(io_dtype)
    expected = np.clip(np.round(x.astype(np.float64) / scale) + zero_point, info.min, info.max).astype(io_dtype)
    np.testing.assert_array_equal(model.quantize(x), expected)
    model.run(x)
    np.testing.assert_array_equal(model.interpreter.get_tensor(model.input_details["index"]), expected)


def test_run_conventions_and_metadata(fp32_model_path):
    model = TFLiteModel(fp32_model_path)
    assert model.input_shape == (1,) + IMAGE_SHAPE and all(type(d) is int for d in model.input_shape)
    assert model.input_dtype == np.float32
    assert model.input_quantization == (0.0, 0)
    assert model.output_shapes == [(1, NUM_CLASSES)]
    assert model.size_bytes == os.path.getsize(fp32_model_path)
    assert model.last_latency_ms is None
    start = time.perf_counter()
    outputs = model.run(np.zeros(IMAGE_SHAPE, np.float32))
    wall_ms = 1000 * (time.perf_counter() - start)
    assert isinstance(outputs, list) and len(outputs) == 1
    assert outputs[0].shape == (1, NUM_CLASSES) and outputs[0].dtype == np.float32
    assert 0 < model.last_latency_ms <= wall_ms  # the invoke is timed inside run()
    with pytest.raises(ValueError, match=r"input shape \(8, 8, 3\) does not match the input .* of TFLite model"):
        model.run(np.zeros((8, 8, 3)))


def test_from_bytes_matches_file(fp32_model_path):
    with open(fp32_model_path, "rb") as f:
        data = f.read()
    from_bytes, from_file = TFLiteModel.from_bytes(data), TFLiteModel(fp32_model_path)
    x = random_images(1, seed=8)
    np.testing.assert_array_equal(from_bytes.run(x)[0], from_file.run(x)[0])
    assert from_bytes.size_bytes == len(data) and from_bytes.path is None


def _load_error(path):
    with pytest.raises(ValueError) as info:
        TFLiteModel(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


def test_load_errors(tmp_path, fp32_model_path):
    missing = tmp_path / "missing.tflite"
    with pytest.raises(FileNotFoundError, match=f"^model file not found: {missing}$"):
        TFLiteModel(missing)

    text = tmp_path / "text.tflite"
    text.write_text("this is not a flatbuffer\nsecond line\n")
    assert "is not a TFLite model: expected a .tflite flatbuffer" in _load_error(text)
    short = tmp_path / "short.tflite"
    short.write_bytes(b"TFL")
    assert "is not a TFLite model" in _load_error(short)

    with open(fp32_model_path, "rb") as f:
        data = f.read()
    truncated = tmp_path / "truncated.tflite"
    truncated.write_bytes(data[: len(data) // 2])
    assert "cannot load TFLite model" in _load_error(truncated)
    zeroed = tmp_path / "zeroed.tflite"
    zeroed.write_bytes(data[:8] + bytes(len(data) - 8))
    assert "cannot load TFLite model" in _load_error(zeroed)

    with pytest.raises(ValueError, match="is not a TFLite model"):
        TFLiteModel.from_bytes(b"\x00" * 64)

    name = TFLiteModel(fp32_model_path).output_details[0]["name"].encode()
    garbled = tmp_path / "garbled.tflite"  # an output tensor's name no longer UTF-8: the runtime cannot decode it
    garbled.write_bytes(data.replace(name, b"\xe3" + name[1:]))
    assert "cannot load TFLite model" in _load_error(garbled) and "utf-8" in _load_error(garbled)
