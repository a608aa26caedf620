"""``tflite.int8_debug``: a layer made hard to quantize ranks worst by rmse/scale, and keeping it float
brings the int8 file's outputs back to the Keras model's.

The hard layer is a 1x1 convolution whose every output channel has one huge weight (1000) on an input
channel that is always zero: the float output ignores it, but per-channel int8 weights get a scale of
1000/127, so every ordinary weight (|w| < 0.7) rounds to zero and the int8 layer outputs almost nothing.
"""
import json
import math

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from demo_app.runtime import TFLiteModel
from keras_layers.keras_api import keras
from tflite.converter import convert
from tflite.inspect import custom_operators, inspect_model
from tflite.int8_debug import METRICS, SUSPECT_RMSE_SCALE, int8_layer_report, selective_int8, worst_layers

layers = keras.layers


@pytest.fixture(scope="module")
def hard_model():
    """``(model, calibration images, held-out images)``: conv, the hard 1x1 conv, conv, pooling, softmax."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="first")(inputs)
    x = layers.Conv2D(8, 1, activation="relu", name="hard")(x)
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="third")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    model = keras.Model(inputs, layers.Dense(4, activation="softmax", name="logits")(x))
    kernel, bias = model.get_layer("first").get_weights()
    kernel[..., 7], bias[7] = 0.0, 0.0  # channel 7 of the first layer is always zero...
    model.get_layer("first").set_weights([kernel, bias])
    kernel, bias = model.get_layer("hard").get_weights()
    kernel[0, 0, 7, :] = 1000.0  # ...and carries the hard layer's outlier weights
    model.get_layer("hard").set_weights([kernel, bias])
    rng = np.random.default_rng(0)
    return model, rng.uniform(0, 1, (64, 8, 8, 3)).astype(np.float32), rng.uniform(0, 1, (32, 8, 8, 3))


@pytest.fixture(scope="module")
def report(hard_model):
    model, calibration, _ = hard_model
    return int8_layer_report(model, calibration)


def output_error(model_bytes, model, images):
    """Mean |TFLite - Keras| of the class probabilities."""
    runtime = TFLiteModel.from_bytes(model_bytes)
    actual = np.stack([runtime.run(image.astype(np.float32))[0][0] for image in images])
    return float(np.mean(np.abs(actual - model.predict(images, verbose=0))))


def tensor_dtypes(model_bytes):
    return {d["name"]: d["dtype"].__name__ for d in Interpreter(model_content=model_bytes).get_tensor_details()}


def test_the_hard_layer_ranks_worst_and_the_others_are_rounding_alone(report):
    assert [row["index"] for row in report] == list(range(len(report)))  # graph order
    assert [row["op"] for row in report] == ["CONV_2D", "CONV_2D", "CONV_2D", "MEAN", "FULLY_CONNECTED", "SOFTMAX"]
    assert [row["layers"] for row in report[:5]] == [["first"], ["hard"], ["third"], ["pool"], ["logits"]]
    worst = worst_layers(report, 2)
    assert worst[0]["layers"] == ["hard"] and worst[0]["rmse_scale"] > 10 * SUSPECT_RMSE_SCALE
    assert worst[1]["rmse_scale"] < SUSPECT_RMSE_SCALE
    assert 0.2 < report[0]["rmse_scale"] < 0.4  # the first layer: rounding error alone, ~1/sqrt(12)


def test_report_rows_hold_the_debugger_metrics_and_the_guide_figures(report):
    json.dumps(report, allow_nan=False)
    for row in report:
        assert set(METRICS) <= set(row) and isinstance(row["num_elements"], int)
        assert row["range"] == pytest.approx(255 * row["scale"])
        assert row["rmse_scale"] == pytest.approx(math.sqrt(row["mean_squared_error"]) / row["scale"])
    assert report[1]["num_elements"] == 8 * 8 * 8 and report[4]["num_elements"] == 4


def test_keeping_the_worst_layer_float_brings_the_outputs_back(hard_model, report):
    model, calibration, held_out = hard_model
    selective = selective_int8(model, calibration, float_worst=1)
    assert selective.float_layers == [report[1]["tensor"]]
    assert [row["rmse_scale"] for row in selective.report] == pytest.approx([row["rmse_scale"] for row in report])
    full_int8 = output_error(convert(model, "int8", representative_data=calibration), model, held_out)
    nothing_float = output_error(selective_int8(model, calibration).model_bytes, model, held_out)
    kept_float = output_error(selective.model_bytes, model, held_out)
    assert kept_float < 0.2 * min(full_int8, nothing_float), (kept_float, full_int8, nothing_float)


def test_the_selective_file_is_float_at_the_kept_layer_and_int8_elsewhere(hard_model, report):
    model, calibration, _ = hard_model
    model_bytes = selective_int8(model, calibration, float_layers=[report[1]["tensor"]]).model_bytes
    dtypes = tensor_dtypes(model_bytes)
    assert dtypes[report[1]["tensor"]] == "float32"
    assert [dtypes[row["tensor"]] for row in report if row["op"] == "CONV_2D"] == ["int8", "float32", "int8"]
    assert dtypes[report[4]["tensor"]] == "int8"  # the classifier's FULLY_CONNECTED
    assert custom_operators(model_bytes) == []
    summary = inspect_model(model_bytes)
    assert {"QUANTIZE", "DEQUANTIZE", "CONV_2D"} <= {op["name"] for op in summary["operators"]}
    assert [t["dtype"] for t in summary["inputs"] + summary["outputs"]] == ["float32", "float32"]


def test_named_and_worst_layers_are_kept_together_in_graph_order(hard_model, report):
    model, calibration, _ = hard_model
    selective = selective_int8(model, calibration, float_layers=[report[3]["tensor"]], float_worst=1)
    assert selective.float_layers == [report[1]["tensor"], report[3]["tensor"]]
    dtypes = tensor_dtypes(selective.model_bytes)
    assert dtypes[report[3]["tensor"]] == "float32" and dtypes[report[2]["tensor"]] == "int8"


@pytest.mark.parametrize("options, fragments", [
    ({"float_layers": ["nowhere"]}, ["unknown layer 'nowhere'", "functional"]),
    ({"float_worst": 6}, ["float_worst 6", "0 to 5"]),
    ({"float_worst": -1}, ["float_worst -1", "0 to 5"]),
    ("every layer", ["all 6 quantized layers float"]),
])
def test_bad_choices_are_one_line_errors(hard_model, report, options, fragments):
    model, calibration, _ = hard_model
    options = {"float_layers": [row["tensor"] for row in report]} if options == "every layer" else options
    with pytest.raises(ValueError) as error:
        selective_int8(model, calibration[:8], **options)
    message = str(error.value)
    assert "\n" not in message and all(fragment in message for fragment in fragments), message
