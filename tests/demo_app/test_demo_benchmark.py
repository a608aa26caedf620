"""``demo_app.benchmark``: benchmark_model-style figures of a model, the demo-loop benchmark, errors."""
import json
import math
import os
import tempfile

import cv2
import numpy as np
import pytest
from demo_helpers import run_python

from demo_app import benchmark
from demo_app.runtime import TFLiteModel

MODEL_KEYS = {"model", "threads", "init_ms", "first_inference_ms", "warmup_ms", "warmup_mean_ms", "latencies_ms",
              "mean_ms", "std_ms", "min_ms", "median_ms", "p90_ms", "p99_ms", "max_ms", "runs", "peak_rss_mb",
              "init_rss_mb", "model_rss_mb", "size_bytes"}
LOOP_KEYS = {"model", "source", "frame_size", "threads", "frames", "invoke_ms", "loop_ms", "overhead_ms", "loop_fps",
             "invoke_bound_fps", "fps_ratio"}
SMALL_LOOP = ["--loop", "--frames", "20", "--frame-size", "160x120", "--threads", "1"]


def run_main(capsys, *argv):
    """``main(argv)`` in this process: ``(exit code, stdout, stderr)``."""
    code = benchmark.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_summarize_by_hand():
    stats = benchmark.summarize([3.0, 1.0, 2.0, 10.0, 4.0])
    # Sorted 1, 2, 3, 4, 10: p90 sits at 0.9 * 4 = 3.6 -> 4 + 0.6 * 6, p99 at 3.96 -> 4 + 0.96 * 6.
    assert stats == pytest.approx({"mean_ms": 4.0, "std_ms": math.sqrt(10.0), "min_ms": 1.0, "median_ms": 3.0,
                                   "p90_ms": 7.6, "p99_ms": 9.76, "max_ms": 10.0, "runs": 5})


def test_json_figures_are_the_statistics_of_the_raw_latencies(fp32_model_path, capsys):
    code, out, err = run_main(capsys, fp32_model_path, "--runs", 30, "--warmup", 3, "--threads", 1, "--json")
    assert code == 0 and not err
    report = json.loads(out)
    assert set(report) == MODEL_KEYS
    values = np.asarray(report["latencies_ms"])
    assert values.size == report["runs"] == 30 and len(report["warmup_ms"]) == 3
    assert [report["median_ms"], report["p90_ms"], report["p99_ms"]] == pytest.approx(
        np.percentile(values, [50, 90, 99]))
    assert report["std_ms"] == pytest.approx(np.std(values)) and report["mean_ms"] == pytest.approx(values.mean())
    assert report["min_ms"] == values.min() and report["max_ms"] == values.max()
    assert report["min_ms"] <= report["median_ms"] <= report["p90_ms"] <= report["p99_ms"] <= report["max_ms"]
    assert report["warmup_mean_ms"] == pytest.approx(np.mean(report["warmup_ms"]))
    assert report["init_ms"] > 0 and report["first_inference_ms"] > 0 and report["threads"] == 1
    assert report["size_bytes"] == os.path.getsize(fp32_model_path)
    assert report["peak_rss_mb"] > 0 and 0 <= report["init_rss_mb"] <= report["model_rss_mb"]


def test_first_inference_and_warmup_are_kept_apart_from_the_timed_runs(quantized_model_paths, monkeypatch):
    """Each invocation's latency is replaced by its number (1, 2, ...): the first is the first
    inference, the next ``warmup`` the warm-up and the rest the timed runs."""
    real_run, calls = TFLiteModel.run, []

    def numbered_run(self, x):
        outputs = real_run(self, x)
        calls.append(x)
        self.last_latency_ms = float(len(calls))
        return outputs

    monkeypatch.setattr(TFLiteModel, "run", numbered_run)
    result = benchmark.time_model(quantized_model_paths["int8"], runs=4, warmup=2)
    assert (result["first_inference_ms"], result["warmup_ms"], result["latencies_ms"]) == (1.0, [2.0, 3.0],
                                                                                           [4.0, 5.0, 6.0, 7.0])
    calls.clear()
    result = benchmark.time_model(quantized_model_paths["int8"], runs=3, warmup=0)
    assert (result["first_inference_ms"], result["warmup_ms"], result["latencies_ms"]) == (1.0, [], [2.0, 3.0, 4.0])
    assert result["init_ms"] > 0


def test_random_input_covers_the_quantized_input_range(quantized_model_paths):
    model = TFLiteModel(quantized_model_paths["uint8"])
    x = benchmark.random_input(model)
    scale, zero_point = model.input_quantization
    assert x.shape == model.input_shape and x.dtype == np.float32
    assert x.min() >= (0 - zero_point) * scale - 1e-6 and x.max() <= (255 - zero_point) * scale + 1e-6


def test_text_output_names_each_figure(monkeypatch, capsys):
    raw = {"init_ms": 12.5, "first_inference_ms": 30.25, "warmup_ms": [20.0, 22.0],
           "latencies_ms": [3.0, 1.0, 2.0, 10.0, 4.0], "peak_rss_mb": 61.25, "init_rss_mb": 3.5,
           "model_rss_mb": 7.75, "size_bytes": 3_500_000}
    monkeypatch.setattr(benchmark, "time_model", lambda *args: raw)
    code, out, _ = run_main(capsys, "m.tflite", "--threads", 2)
    assert code == 0
    lines = out.splitlines()
    assert lines == ["m.tflite: 3.50 MB file, 2 threads",
                     "init 12.500 ms, first inference 30.250 ms, warm-up 21.000 ms mean of 2",
                     "5 runs: mean 4.000 ± 3.162 ms, min 1.000, p50 3.000, p90 7.600, p99 9.760, max 10.000 ms",
                     "memory: peak RSS 61.2 MB, +3.5 MB loading, +7.8 MB loading and running"]


def test_text_output_without_warmup(fp32_model_path, capsys):
    code, out, _ = run_main(capsys, fp32_model_path, "--runs", 3, "--warmup", 0)
    assert code == 0 and "first inference" in out and "no warm-up" in out and "3 runs: mean" in out


def test_loop_figures_by_hand():
    figures = benchmark.loop_figures({"frames": 10, "mean_latency_ms": 8.0, "fps": 100.0})
    assert figures == pytest.approx({"frames": 10, "invoke_ms": 8.0, "loop_ms": 10.0, "overhead_ms": 2.0,
                                     "loop_fps": 100.0, "invoke_bound_fps": 125.0, "fps_ratio": 0.8})


def test_loop_on_a_synthetic_video_leaves_no_files(fp32_model_path, capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    code, out, err = run_main(capsys, fp32_model_path, *SMALL_LOOP, "--json")
    assert code == 0 and not err
    report = json.loads(out)
    assert set(report) == LOOP_KEYS
    assert report["frames"] == 20 and report["frame_size"] == [160, 120] and report["source"] is None
    assert report["loop_ms"] >= report["invoke_ms"] > 0
    assert report["overhead_ms"] == pytest.approx(report["loop_ms"] - report["invoke_ms"])
    assert report["loop_ms"] == pytest.approx(1000.0 / report["loop_fps"])
    assert report["invoke_bound_fps"] == pytest.approx(1000.0 / report["invoke_ms"])
    assert report["fps_ratio"] == pytest.approx(report["invoke_ms"] / report["loop_ms"]) and report["fps_ratio"] <= 1
    assert os.listdir(tmp_path) == []


def test_loop_text_names_each_figure(fp32_model_path, capsys):
    code, out, _ = run_main(capsys, fp32_model_path, *SMALL_LOOP)
    assert code == 0
    assert "synthetic 160x120 video, 20 frames, 1 thread" in out
    for figure in ("invoke", "loop overhead", "loop", "FPS", "invoke-bound", "ratio"):
        assert figure in out


def test_loop_over_a_given_source_stops_at_frames(fp32_model_path, image_folder, capsys):
    code, out, _ = run_main(capsys, fp32_model_path, "--loop", "--source", image_folder, "--frames", 2, "--json")
    report = json.loads(out)
    assert code == 0 and report["frames"] == 2 and report["source"] == str(image_folder)
    assert report["frame_size"] is None


def test_synthetic_video_has_the_size_and_moving_frames(tmp_path):
    path = benchmark.write_synthetic_video(str(tmp_path / "v.avi"), 3, (64, 48))
    capture = cv2.VideoCapture(path)
    frames = []
    ok, frame = capture.read()
    while ok:
        frames.append(frame.astype(np.int16))
        ok, frame = capture.read()
    capture.release()
    assert len(frames) == 3 and frames[0].shape == (48, 64, 3)
    assert np.abs(frames[1] - frames[0]).mean() > 5 and np.abs(frames[2] - frames[1]).mean() > 5


def test_loop_imports_no_tensorflow(fp32_model_path):
    code = ("import sys, demo_app.benchmark as b; assert b.main(sys.argv[1:]) == 0; "
            "print([m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf_keras')])")
    result = run_python("-c", code, fp32_model_path, "--loop", "--frames", "3", "--frame-size", "32x24")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"


@pytest.fixture
def not_a_model(tmp_path):
    path = tmp_path / "notes.tflite"
    path.write_text("not a model, just text")
    return str(path)


@pytest.mark.parametrize("args, message", [
    (["{missing}"], "model file not found"),
    (["{junk}"], "is not a TFLite model"),
    (["{model}", "--runs", "0"], "runs must be >= 1"),
    (["{model}", "--warmup", "-1"], "warmup >= 0"),
    (["{model}", "--loop", "--frames", "0"], "--frames must be >= 1"),
    (["{model}", "--loop", "--frame-size", "640"], "--frame-size 640: expected WIDTHxHEIGHT"),
    (["{model}", "--loop", "--source", "{missing}"], "source not found"),
    (["{junk}", "--loop", "--frames", "2", "--frame-size", "32x24"], "is not a TFLite model"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, fp32_model_path, not_a_model, tmp_path, capsys):
    names = {"model": fp32_model_path, "junk": not_a_model, "missing": str(tmp_path / "missing.tflite")}
    code, out, err = run_main(capsys, *(a.format(**names) for a in args))
    assert code == 2 and not out
    assert len(err.splitlines()) == 1 and err.startswith("demo_app.benchmark: error: ") and message in err


@pytest.mark.parametrize("args", [[], ["m.tflite", "--runs", "many"], ["m.tflite", "--nope"]])
def test_argument_errors_exit_2(args):
    with pytest.raises(SystemExit) as exit_info:
        benchmark.main(args)
    assert exit_info.value.code == 2
