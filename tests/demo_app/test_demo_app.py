"""run_demo end to end (headless): predictions, labels, annotated PNGs and videos, errors."""
import argparse
import os
import time

import cv2
import numpy as np
import pytest
from demo_helpers import read_rgb

from demo_app import app
from demo_app.app import add_arguments, run_demo, run_from_args
from demo_app.capture_thread import SourceLost
from demo_app.detection import class_indices
from demo_app.preprocess import preprocess
from demo_app.runtime import TFLiteModel
from demo_app.segmentation import class_colors
from demo_app.sources import open_source
from demo_app.window import NO_DISPLAY


@pytest.fixture
def labels_file(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("cat\ndog\nbird\n\n")
    return str(path)


def _expected(model_path, folder):
    model = TFLiteModel(model_path)
    scores = [model.run(preprocess(frame, model.input_shape))[0][0] for _, frame in open_source(folder)]
    return [(int(s.argmax()), float(s.max())) for s in scores]


def test_folder_to_png_frames_with_labels(fp32_model_path, image_folder, labels_file, tmp_path, capsys):
    out = tmp_path / "annotated"
    start = time.perf_counter()
    summary = run_demo(fp32_model_path, str(image_folder), labels=labels_file, output=str(out), headless=True)
    wall_s = time.perf_counter() - start

    assert summary["frames"] == 3 and summary["output"] == str(out)
    # Three invocations and the whole loop happen inside the call: bounded by its wall time.
    assert 0 < summary["median_latency_ms"] <= 3 * summary["mean_latency_ms"] <= 1000 * wall_s
    assert summary["fps"] >= 3 / wall_s
    names = ["cat", "dog", "bird"]
    expected = _expected(fp32_model_path, str(image_folder))
    assert [p[0] for p in summary["predictions"]] == ["a.png", "b.png", "c.jpg"]
    for (_, index, label, score), (want_index, want_score) in zip(summary["predictions"], expected):
        assert index == want_index and label == names[want_index]
        assert score == pytest.approx(want_score, abs=1e-6)

    assert sorted(os.listdir(out)) == ["frame_00000.png", "frame_00001.png", "frame_00002.png"]
    for i, (_, raw) in enumerate(open_source(str(image_folder))):
        annotated = read_rgb(out / f"frame_{i:05d}.png")
        assert annotated.shape == raw.shape
        assert (annotated != raw).any(axis=2).mean() > 0.02  # the overlay is there
    printed = capsys.readouterr().out
    assert "a.png: " in printed and f"3 frames: latency mean {summary['mean_latency_ms']:.2f} ms" in printed


@pytest.mark.parametrize("suffix", [".avi", ".mp4"])
def test_image_to_video(quantized_model_paths, image_folder, tmp_path, suffix):
    path = tmp_path / "videos" / f"out{suffix}"
    summary = run_demo(quantized_model_paths["uint8"], str(image_folder), output=str(path), headless=True,
                       quiet=True)
    assert summary["frames"] == 3
    assert os.listdir(path.parent) == [path.name]  # no temporary file left
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    assert len(frames) == 3 and all(f.shape == (24, 24, 3) for f in frames)  # sized like the first frame
    expected = _expected(quantized_model_paths["uint8"], str(image_folder))
    assert [p[1:3] for p in summary["predictions"]] == [(index, str(index)) for index, _ in expected]


def test_max_frames_top_k_and_no_output(fp32_model_path, image_folder, tmp_path):
    summary = run_demo(fp32_model_path, str(image_folder), headless=True, max_frames=2, top_k=3, quiet=True)
    assert summary["frames"] == 2 and len(summary["predictions"]) == 2
    assert summary["output"] is None
    assert os.listdir(tmp_path) == ["images"]


def test_display_error_leaves_no_partial_video(fp32_model_path, image_folder, tmp_path, monkeypatch):
    unused = next(n for n in range(5000, 6000) if not os.path.exists(f"/tmp/.X11-unix/X{n}"))
    monkeypatch.setenv("DISPLAY", f":{unused}")  # no X server there: Tk cannot connect
    out = tmp_path / "out.avi"
    with pytest.raises(ValueError) as info:
        run_demo(fp32_model_path, str(image_folder), output=str(out), quiet=True)
    assert str(info.value) == NO_DISPLAY
    assert os.listdir(tmp_path) == ["images"]


def test_argument_errors(fp32_model_path, non_image_model_path, image_folder, tmp_path):
    with pytest.raises(FileNotFoundError, match="labels file not found"):
        run_demo(fp32_model_path, str(image_folder), labels=str(tmp_path / "nope.txt"), headless=True)
    few = tmp_path / "few.txt"
    few.write_text("cat\n")
    with pytest.raises(ValueError, match="has 1 labels but the model scores 3 classes"):
        run_demo(fp32_model_path, str(image_folder), labels=str(few), headless=True)
    with pytest.raises(ValueError, match=r"\.tflite: model input shape \(1, 10\) is not an image"):
        run_demo(non_image_model_path, str(image_folder), headless=True)
    few.write_bytes(b"cat\n\xff\n")
    with pytest.raises(ValueError, match="labels file .*few.txt is not UTF-8 text"):
        run_demo(fp32_model_path, str(image_folder), labels=str(few), headless=True)
    with pytest.raises(ValueError, match="top_k must be at least 1"):
        run_demo(fp32_model_path, str(image_folder), headless=True, top_k=0)


def test_add_arguments_and_run_from_args(fp32_model_path, image_folder, tmp_path):
    parser = add_arguments(argparse.ArgumentParser())
    assert all(action.help for action in parser._actions)
    args = parser.parse_args(["--model", fp32_model_path, "--source", str(image_folder), "--headless",
                              "--output", str(tmp_path / "frames"), "--threads", "1", "--max-frames", "1",
                              "--input-range=-1,1", "--top-k", "2"])
    assert args.input_range == "-1,1" and args.threads == 1
    summary = run_from_args(args)
    assert summary["frames"] == 1 and os.listdir(tmp_path / "frames") == ["frame_00000.png"]
    with pytest.raises(SystemExit):
        parser.parse_args(["--model", "m.tflite"])  # --source is required


class _Frames:
    """A stand-in live source: ``count`` frames, then ``error`` raised as a lost camera or Ctrl-C would."""

    is_stream, is_live, fps, frame_age_ms = True, True, 10.0, None

    def __init__(self, count, error):
        self.count, self.error, self.closed = count, error, False

    def __iter__(self):
        rng = np.random.default_rng(0)
        for i in range(self.count):
            yield f"live[{i}]", rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
        raise self.error

    def close(self):
        self.closed = True


@pytest.mark.parametrize("error, kept", [(SourceLost("lost source cam0: no frame for 10.0 s"), True),
                                         (KeyboardInterrupt(), True),
                                         (ValueError("cannot decode image x.png"), False)])
def test_video_is_kept_on_source_loss_and_ctrl_c(fp32_model_path, tmp_path, monkeypatch, capsys, error, kept):
    frames = _Frames(4, error)
    monkeypatch.setattr(app, "open_source", lambda *args, **kwargs: frames)
    out = tmp_path / "out.avi"
    with pytest.raises(type(error)):
        run_demo(fp32_model_path, "0", output=str(out), headless=True)
    assert frames.closed
    assert out.exists() is kept and os.listdir(tmp_path) == (["out.avi"] if kept else [])
    if kept:  # finished and playable, with every frame written before the stop
        capture = cv2.VideoCapture(str(out))
        count = 0
        while capture.read()[0]:
            count += 1
        capture.release()
        assert count == 4
        assert "stopped after 4 frames; 4 written to" in capsys.readouterr().out


def test_detector_filters_are_errors_for_other_models(fp32_model_path, image_folder):
    with pytest.raises(ValueError, match="^classes and max_results filter a detector's boxes: this model is not"):
        run_demo(fp32_model_path, str(image_folder), headless=True, classes="cat")
    with pytest.raises(ValueError, match="^classes and max_results filter"):
        run_demo(fp32_model_path, str(image_folder), headless=True, max_results=2)


def test_detect_draws_only_the_allowed_classes_best_first():
    boxes = np.array([[[0.1, 0.1, 0.4, 0.4], [0.5, 0.5, 0.9, 0.9], [0.1, 0.6, 0.3, 0.9], [0, 0, 0.2, 0.2]]])
    outputs = [boxes, np.array([[0.0, 1.0, 1.0, 2.0]]), np.array([[0.9, 0.6, 0.8, 0.7]]), np.array([4.0])]
    frame = np.full((100, 100, 3), 128, np.uint8)
    names = ["cat", "dog", "bird"]
    shown, drawn = app._detect(outputs, frame, names, 0.5)
    assert shown == [(0, pytest.approx(0.9)), (1, pytest.approx(0.8)), (2, pytest.approx(0.7)),
                     (1, pytest.approx(0.6))]
    shown, drawn = app._detect(outputs, frame, names, 0.5, class_indices("dog,2", names), max_results=2)
    assert shown == [(1, pytest.approx(0.8)), (2, pytest.approx(0.7))]
    colors = class_colors(4)[1:]
    assert not (drawn == colors[0]).all(axis=2).any()  # no cat box
    assert (drawn == colors[1]).all(axis=2).any() and (drawn == colors[2]).all(axis=2).any()
    assert not (drawn[70:90, 40:60] != 128).any()  # the weaker dog box at (0.5..0.9) is not drawn


@pytest.mark.parametrize("size", ["640", "0x480", "640x", "axb"])
def test_camera_size_must_be_width_x_height(fp32_model_path, image_folder, size):
    with pytest.raises(ValueError) as info:
        run_demo(fp32_model_path, str(image_folder), headless=True, camera_size=size)
    assert str(info.value) == f"--camera-size {size}: expected WIDTHxHEIGHT in pixels, e.g. 640x480"


def test_labels_and_input_range_come_from_the_files_metadata(fp32_model_path, image_folder, labels_file, tmp_path):
    from tflite.metadata import add_metadata

    with open(fp32_model_path, "rb") as f:
        described = add_metadata(f.read(), name="demo test", description="three classes", version="1", task="classify",
                                 labels=["cat", "dog", "bird"], input_mean=(127.5,), input_std=(127.5,))
    path = tmp_path / "described.tflite"
    path.write_bytes(described)
    from_file = run_demo(str(path), str(image_folder), headless=True, quiet=True)
    given = run_demo(str(path), str(image_folder), headless=True, quiet=True, labels=labels_file, input_range="-1,1")
    assert from_file["predictions"] == given["predictions"]
    assert {p[2] for p in from_file["predictions"]} <= {"cat", "dog", "bird"}
    plain = run_demo(fp32_model_path, str(image_folder), headless=True, quiet=True)  # no metadata: 0,255, indices
    assert [p[3] for p in plain["predictions"]] != [p[3] for p in from_file["predictions"]]
    assert {p[2] for p in plain["predictions"]} <= {"0", "1", "2"}
