import json
import subprocess
import sys
import types

import numpy as np
import pytest

from demo_app.benchmark import summarize
from keras_layers.keras_api import keras
from models.files import write_bytes
from tflite import convert, layer_bench
from tflite.bench import benchmark


def conv_model(filters, kernel):
    inputs = keras.Input((16, 16, 8))
    return keras.Model(inputs, keras.layers.Conv2D(filters, kernel, padding="same")(inputs))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench")
    paths = []
    for name, model in (("small", conv_model(4, 1)), ("large", conv_model(64, 5))):
        paths.append(str(folder / f"{name}.tflite"))
        write_bytes(paths[-1], convert(model, "fp32"))
    return paths


def test_summarize_against_numpy():
    values = [3.0, 1.0, 2.0, 10.0, 4.0]
    stats = summarize(values)
    assert stats["median_ms"] == 3.0 and stats["min_ms"] == 1.0 and stats["runs"] == 5
    assert stats["p90_ms"] == pytest.approx(np.percentile(values, 90)) and stats["mean_ms"] == 4.0


def test_benchmark_rows_side_by_side(files):
    rows = benchmark(files, runs=6, warmup=1, threads=1, rounds=2, progress=lambda _: None)
    assert [row["model"] for row in rows] == files
    assert rows[0]["latency_ratio"] == 1.0
    assert rows[1]["latency_ratio"] == pytest.approx(rows[1]["median_ms"] / rows[0]["median_ms"])
    assert all(row["runs"] == 6 for row in rows)
    # A 5x5x8x64 convolution does ~800x the work of a 1x1x8x4 one.
    assert rows[1]["median_ms"] > rows[0]["median_ms"]
    # Each model is timed in a fresh process without TensorFlow: the runtime alone is small.
    assert all(0 < row["peak_rss_mb"] < 400 for row in rows)
    assert rows[1]["size_bytes"] > rows[0]["size_bytes"]


def test_benchmark_worker_prints_json_without_tensorflow(files):
    code = ("import json, sys, demo_app.benchmark as b; r = b.time_model(sys.argv[1], runs=3, warmup=0); "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf_keras')]; "
            "print(json.dumps({'n': len(r['latencies_ms']), 'bad': bad}))")
    done = subprocess.run([sys.executable, "-c", code, files[0]], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout.splitlines()[-1]) == {"n": 3, "bad": []}


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="model file not found"):
        benchmark([str(tmp_path / "nope.tflite")])


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
    assert rows[0]["speedup"] == 1.0 and rows[1]["param_reduction"] == pytest.approx(9.0)
    assert rows[1]["macs"] * 9 == rows[0]["macs"] == 8 * 8 * 9 * 4 * 4
    report = json.loads((tmp_path / "runs" / "bench_fake" / "report.json").read_text())
    assert report["layers"] == rows and (tmp_path / "runs" / "bench_fake" / "layer_bench.png").stat().st_size > 0


def test_unknown_suite_is_named():
    from tflite.suites import load_suite

    with pytest.raises(ValueError, match="unknown benchmark suite 'nope'"):
        load_suite("nope")
