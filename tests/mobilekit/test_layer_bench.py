"""``mobilekit bench --suite``: layers timed against the layers they replace, one report per suite."""
import json
import types

import numpy as np
import pytest
from PIL import Image

from keras_layers.keras_api import keras
from mobilekit import layer_bench
from mobilekit.cli import main
from tflite.converter import convert
from mobilekit.suites import load_suite, xnor


def test_layer_suite_report(monkeypatch, tmp_path):
    suite = types.SimpleNamespace(
        SHAPES=[(8, 8, 4)], DESCRIPTION="1x1 vs 3x3",
        candidates=lambda shape: [("conv3x3", lambda: conv_at(shape, 3)), ("conv1x1", lambda: conv_at(shape, 1))])

    def conv_at(shape, kernel):
        inputs = keras.Input(shape)
        return keras.Model(inputs, keras.layers.Conv2D(4, kernel, padding="same", use_bias=False)(inputs))

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(layer_bench, "load_suite", lambda name: suite)
    rows = layer_bench.run_suite("fake", quantizations=("fp32",), runs=4, warmup=1, threads=1, rounds=2,
                                 progress=lambda _: None)
    assert [row["layer"] for row in rows] == ["conv3x3", "conv1x1"]
    assert rows[1]["speedup"] == pytest.approx(rows[0]["median_ms"] / rows[1]["median_ms"])
    assert rows[1]["param_reduction"] == pytest.approx(9.0)
    assert rows[1]["macs"] * 9 == rows[0]["macs"] == 8 * 8 * 9 * 4 * 4
    report = json.loads((tmp_path / "runs" / "bench_fake" / "report.json").read_text())
    assert report["layers"] == rows
    with Image.open(tmp_path / "runs" / "bench_fake" / "layer_bench.png") as plot:
        assert plot.format == "PNG" and min(plot.size) >= 200


def test_unknown_suite_is_named(capsys):
    with pytest.raises(ValueError, match="unknown benchmark suite 'nope'"):
        load_suite("nope")
    assert main(["bench", "--suite", "nope"]) == 2  # the suite is named, no file given is no --models
    assert "unknown benchmark suite 'nope'" in capsys.readouterr().err


def small_network(shape, classes=4):
    """A network of a few layers (conv, hard-swish, depthwise, GAP, dense): a suite's mechanics do not depend
    on its networks' size, and each conversion of a MobileNet took seconds."""
    inputs = keras.Input(shape)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same")(inputs)
    x = keras.layers.Activation("hard_swish")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(classes, activation="softmax")(x))


def test_a_quantization_suite_times_each_networks_files_together(monkeypatch, tmp_path):
    converted = []
    suite = types.SimpleNamespace(
        SHAPES=[(16, 16, 3)], COMPARE="quantization",
        candidates=lambda shape: [(name, lambda: small_network(shape)) for name in ("small_a", "small_b")],
        calibration_data=lambda shape: np.full((4, *shape), 0.5, np.float32),
        convert=lambda model, quantization, data: converted.append((quantization, float(data.mean())))
        or convert(model, quantization, representative_data=data))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(layer_bench, "load_suite", lambda name: suite)
    rows = layer_bench.run_suite("fake", quantizations=("fp32", "int8"), runs=4, warmup=1, threads=1, rounds=2,
                                 progress=lambda _: None)
    assert converted == [("fp32", 0.5), ("int8", 0.5)] * 2  # the suite's own data and converter
    assert [(row["layer"], row["quantization"]) for row in rows] == [
        ("small_a", "fp32"), ("small_a", "int8"), ("small_b", "fp32"), ("small_b", "int8")]
    for baseline, int8 in (rows[:2], rows[2:]):  # each network's int8 against its own fp32
        assert baseline["speedup"] == 1.0
        assert int8["speedup"] == pytest.approx(baseline["median_ms"] / int8["median_ms"])


def test_xnor_suite_runs_its_tflite_candidates_and_the_host_kernels(monkeypatch, tmp_path):
    """``mobilekit bench --suite xnor`` at a tiny shape: the binary layers convert, and the packed
    kernel's rows join the TFLite rows in the report."""
    assert load_suite("xnor") is xnor
    suite = types.SimpleNamespace(SHAPES=[(6, 6, 64)], DESCRIPTION=xnor.DESCRIPTION,
                                  candidates=lambda shape: xnor.candidates(shape)[1:], host_rows=xnor.host_rows)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(layer_bench, "load_suite", lambda name: suite)
    rows = layer_bench.run_suite("xnor", quantizations=("int8",), runs=2, warmup=1, threads=1, rounds=1,
                                 progress=lambda _: None)
    assert [(row["layer"], row["quantization"]) for row in rows] == [
        ("bwn3x3", "int8"), ("xnor3x3", "int8"), ("conv3x3_im2col_blas", "numpy"), ("xnor3x3_packed", "numpy"),
        ("xnor3x3_packed+packing", "numpy")]
    assert all(row["macs"] == 36 * 9 * 64 * 64 for row in rows)
    bwn_row, xnor_row, float_row = rows[:3]  # the TFLite rows' baseline is the first candidate (BWN)
    assert xnor_row["speedup"] == pytest.approx(bwn_row["median_ms"] / xnor_row["median_ms"])
    for row in rows[3:]:
        assert row["speedup"] == pytest.approx(float_row["median_ms"] / row["median_ms"])


def test_int8_suite_times_the_bare_convolution_kernel_beside_the_networks():
    """The int8 suite's reference row: one 1x1 convolution and nothing else in either file, all on XNNPACK,
    so its ratio is the kernels' own."""
    from mobilekit.suites import int8
    from tflite.op_profile import xnnpack_coverage
    shape = int8.KERNEL_REFERENCE
    assert shape in int8.SHAPES
    (label, build), = int8.candidates(shape)
    model, data = build(), int8.calibration_data(shape)
    assert data.shape[1:] == shape and data.std() > 0.5
    for quantization in ("fp32", "int8"):
        assert xnnpack_coverage(int8.convert(model, quantization, data)) == [("CONV_2D", True)]
