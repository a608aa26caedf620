"""The whole path of ``mobilekit quickstart``, end to end, with the issue's acceptance figures."""
import json
import os

import pytest
from mediapipe_venv import assert_mediapipe_agrees_with_the_demo, mediapipe_python  # noqa: F401

from mobilekit.quickstart import quickstart


@pytest.mark.e2e
def test_quickstart_trains_exports_validates_times_and_demos(tmp_path, monkeypatch, mediapipe_python):
    monkeypatch.chdir(tmp_path)
    report = quickstart(progress=lambda _: None)
    run = tmp_path / "runs" / "quickstart"
    for name in ("model.keras", "model_fp32.tflite", "model_int8.tflite", "labels.txt", "report.json",
                 "report.md", "training_curves.png", "tradeoffs.png", "demo_montage.png"):
        assert (run / name).stat().st_size > 0, name
    assert report == json.loads((run / "report.json").read_text())
    exports = {row["quantization"]: row for row in report["export"]}
    int8, fp32 = exports["int8"], exports["fp32"]
    assert int8["tflite_accuracy"] >= 0.95
    assert abs(int8["tflite_accuracy"] - int8["keras_accuracy"]) <= 0.01
    assert fp32["top1_agreement"] == 1.0 and fp32["max_abs_diff"] < 1e-4
    assert int8["size_bytes"] < 0.5 * fp32["size_bytes"]
    assert [os.path.basename(row["model"]) for row in report["bench"]] == ["model_fp32.tflite", "model_int8.tflite"]
    assert report["demo"]["frames"] == len(os.listdir(run / "demo_frames")) == 60
    assert report["demo"]["accuracy_on_clip"] >= 0.9
    # MediaPipe Tasks reads the files' metadata and agrees with the demo on the held-out clip
    assert_mediapipe_agrees_with_the_demo(mediapipe_python, run, "classify", run / "test_digits.avi",
                                          tmp_path / "mediapipe")
