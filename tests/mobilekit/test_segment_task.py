"""The segmentation path of ``mobilekit quickstart --task segment`` end to end, on a tiny run.

The acceptance figures (held-out mIoU of the int8 ``.tflite`` >= 0.8, within 2 points of Keras)
come from the full-size quickstart; this test checks that every piece is wired and that the
exported files compute what the Keras model computes.
"""
import json
import os

import numpy as np
import pytest
from mediapipe_venv import assert_mediapipe_agrees_with_the_demo, mediapipe_python  # noqa: F401

from mobilekit.cli import main
from mobilekit.quickstart import quickstart

TINY = {"backbone": "mobilenet_v3_small", "alpha": 0.35, "image_size": 32, "epochs": 1, "batch_size": 16,
        "train_images": 32, "validation_images": 8, "test_images": 12}


@pytest.mark.e2e
def test_segment_quickstart_writes_every_output_and_tflite_matches_keras(tmp_path, monkeypatch, mediapipe_python):
    monkeypatch.chdir(tmp_path)
    report = quickstart("segment", "seg", bench_runs=3, progress=lambda _: None, **TINY)
    run = tmp_path / "runs" / "seg"
    for name in ("model.keras", "model_fp32.tflite", "model_int8.tflite", "labels.txt", "report.json",
                 "report.md", "training_curves.png", "tradeoffs.png", "demo_montage.png"):
        assert (run / name).stat().st_size > 0, name
    assert report == json.loads((run / "report.json").read_text())
    assert (run / "labels.txt").read_text().split() == ["background", "circle", "square", "triangle"]
    assert report["config"]["task"] == "segment" and report["training"]["epochs_run"] == 1
    exports = {row["quantization"]: row for row in report["export"]}
    fp32, int8 = exports["fp32"], exports["int8"]
    assert fp32["pixel_agreement"] > 0.999 and abs(fp32["tflite_miou"] - fp32["keras_miou"]) < 0.005
    assert int8["pixel_agreement"] > 0.9
    assert int8["size_bytes"] < 0.5 * fp32["size_bytes"]
    assert "FlexDelegate" not in int8["ops"] and "RESIZE_BILINEAR" in int8["ops"]
    assert report["training"]["test_miou"] == pytest.approx(fp32["keras_miou"])
    assert report["demo"]["frames"] == len(os.listdir(run / "demo_frames")) == 12
    # MediaPipe Tasks reads the files' metadata and agrees with the demo on the held-out clip
    assert_mediapipe_agrees_with_the_demo(mediapipe_python, run, "segment", run / "test_shapes.avi",
                                          tmp_path / "mediapipe")


def test_segment_cli_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--task", "segment", "--data", "nowhere", "--epochs", "1"]) == 2
    assert "neither 'shapes' nor a folder" in capsys.readouterr().err
    assert main(["train", "--task", "segment", "--arch", "unet"]) == 2
    assert "unknown segment architecture 'unet'" in capsys.readouterr().err
    assert main(["train", "--task", "segment", "--arch", "pide_segmenter", "--output-stride", "8"]) == 2
    assert "--output-stride does not apply to segment with --arch pide_segmenter" in capsys.readouterr().err
    assert not np.any([p.suffix == ".keras" for p in tmp_path.rglob("*")])
