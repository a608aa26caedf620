"""The detection path of ``mobilekit quickstart --task detect`` end to end, on a tiny run: training,
export with ``TFLite_Detection_PostProcess``, mAP of the Keras model and of each file, the demo."""
import json
import os

import pytest
from mediapipe_venv import assert_mediapipe_agrees_with_the_demo, mediapipe_python  # noqa: F401

from mobilekit.quickstart import quickstart

# 8 epochs on 96 images: after 1 epoch on 32 the int8 file scores all 20 boxes of a frame alike (one quantized
# value), and MediaPipe's ObjectDetector returns 10 of such tied detections, so no comparison can be made.
TINY = {"alpha": 0.35, "epochs": 8, "batch_size": 16, "train_images": 96, "validation_images": 8, "test_images": 12}


@pytest.mark.e2e
def test_detect_quickstart_writes_every_output_and_the_fp32_file_keeps_the_keras_map(
        tmp_path, monkeypatch, mediapipe_python):
    monkeypatch.chdir(tmp_path)
    report = quickstart("detect", "det", bench_runs=3, progress=lambda _: None, **TINY)
    run = tmp_path / "runs" / "det"
    for name in ("model.keras", "model_fp32.tflite", "model_int8.tflite", "labels.txt", "report.json",
                 "report.md", "training_curves.png", "tradeoffs.png", "demo_montage.png"):
        assert (run / name).stat().st_size > 0, name
    assert report == json.loads((run / "report.json").read_text())
    config = report["config"]
    assert (config["task"], config["arch"], config["backbone"], config["classes"]) == ("detect", "ssdlite",
                                                                                      "mobilenet_v2", 3)
    assert config["taps"] == ["stride8_expanded", "stride16_expanded", "last"]  # the small-input head, recorded
    exports = {row["quantization"]: row for row in report["export"]}
    fp32, int8 = exports["fp32"], exports["int8"]
    assert report["training"]["test_map50"] == fp32["keras_map50"] == int8["keras_map50"]
    assert fp32["tflite_map50"] == pytest.approx(fp32["keras_map50"], abs=0.02)
    assert "TFLite_Detection_PostProcess" in int8["ops"] and "FlexDelegate" not in int8["ops"]
    assert int8["size_bytes"] < 0.5 * fp32["size_bytes"]
    assert report["demo"]["frames"] == len(os.listdir(run / "demo_frames")) == 12
    # MediaPipe Tasks reads the files' metadata and agrees with the demo on the held-out clip
    assert_mediapipe_agrees_with_the_demo(mediapipe_python, run, "detect", run / "test_images.avi",
                                          tmp_path / "mediapipe")
