import json
import os
import subprocess
import sys

import numpy as np
import pytest

from demo_app.benchmark import summarize
from keras_layers.keras_api import keras
from models.files import write_bytes
from tflite import bench, convert
from tflite.bench import benchmark, runs_per_round


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


@pytest.mark.parametrize("runs, rounds, shares", [(7, 3, [3, 2, 2]), (6, 2, [3, 3]), (50, 3, [17, 17, 16]),
                                                (2, 3, [1, 1]), (1, 1, [1])])
def test_runs_are_split_over_the_rounds_to_exactly_the_total(runs, rounds, shares):
    assert runs_per_round(runs, rounds) == shares


@pytest.mark.parametrize("runs, rounds", [(0, 3), (5, 0)])
def test_no_runs_or_rounds_is_a_clear_error(runs, rounds):
    with pytest.raises(ValueError, match="runs and rounds must be >= 1"):
        runs_per_round(runs, rounds)


def test_rounds_interleave_the_models_and_pool_their_latencies(files, monkeypatch):
    """With the timing process replaced by a fake whose latencies and memory are known, the rows
    are the statistics of exactly those latencies, and the models alternate round by round."""
    calls = []

    def fake_time_once(path, runs, warmup, threads):
        calls.append((os.path.basename(path), runs))
        base = 1.0 if path == files[0] else 4.0
        latencies = [base + len(calls) + 0.1 * i for i in range(runs)]
        return {"latencies_ms": latencies, "peak_rss_mb": 30.0 + len(calls), "model_rss_mb": 2.0 * len(calls)}

    monkeypatch.setattr(bench, "_time_once", fake_time_once)
    rows = benchmark(files, runs=7, warmup=1, threads=1, rounds=3, progress=lambda _: None)
    assert calls == [("small.tflite", 3), ("large.tflite", 3), ("small.tflite", 2), ("large.tflite", 2),
                     ("small.tflite", 2), ("large.tflite", 2)]
    small = [2.0, 2.1, 2.2, 4.0, 4.1, 6.0, 6.1]  # base 1 + call number (1, 3, 5) + 0.1 * i
    large = [6.0, 6.1, 6.2, 8.0, 8.1, 10.0, 10.1]  # base 4 + call number (2, 4, 6) + 0.1 * i
    for row, latencies, call in zip(rows, (small, large), (5, 6)):
        assert row["runs"] == 7
        assert row["median_ms"] == pytest.approx(np.median(latencies)) and row["min_ms"] == latencies[0]
        assert row["mean_ms"] == pytest.approx(np.mean(latencies))
        assert row["peak_rss_mb"] == 30.0 + call and row["model_rss_mb"] == 2.0 * call  # the last round's
    assert rows[1]["latency_ratio"] == pytest.approx(np.median(large) / np.median(small))
    assert all("latencies_ms" not in row for row in rows)  # only on request
    calls.clear()
    kept = benchmark(files, runs=7, warmup=1, threads=1, rounds=3, progress=lambda _: None, keep_latencies=True)
    assert [row["latencies_ms"] for row in kept] == [small, large]
    assert [{k: v for k, v in row.items() if k != "latencies_ms"} for row in kept] == rows


def test_benchmark_times_each_model_exactly_runs_times(files):
    rows = benchmark(files, runs=7, warmup=1, threads=1, rounds=3, progress=lambda _: None)
    assert [row["model"] for row in rows] == files
    assert [row["runs"] for row in rows] == [7, 7]
    assert rows[1]["latency_ratio"] == pytest.approx(rows[1]["median_ms"] / rows[0]["median_ms"])
    # A 5x5x8x64 convolution does ~800x the work of a 1x1x8x4 one.
    assert rows[1]["median_ms"] > rows[0]["median_ms"]
    # Each model is timed in a fresh process without TensorFlow: the runtime alone is small, and at
    # least what a bare Python process that imports NumPy (as the worker does) peaks at.
    probe = "import numpy; print([int(l.split()[1]) / 1024 for l in open('/proc/self/status') if l[:6] == 'VmHWM:'][0])"
    floor = float(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout)
    assert all(floor <= row["peak_rss_mb"] < 400 for row in rows), (floor, rows)
    assert [row["size_bytes"] for row in rows] == [os.path.getsize(path) for path in files]


def test_benchmark_worker_prints_json_without_tensorflow(files):
    code = ("import json, sys, demo_app.benchmark as b; r = b.time_model(sys.argv[1], runs=3, warmup=0); "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf_keras')]; "
            "print(json.dumps({'n': len(r['latencies_ms']), 'bad': bad}))")
    done = subprocess.run([sys.executable, "-c", code, files[0]], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout.splitlines()[-1]) == {"n": 3, "bad": []}


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="model file not found"):
        benchmark([str(tmp_path / "nope.tflite")])
