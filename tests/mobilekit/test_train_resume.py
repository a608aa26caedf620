"""``mobilekit train``: one-line errors of the fine-tuning, strategy and resume flags; Ctrl-C (SIGINT) or SIGTERM
in a real ``mobilekit train`` process, then ``--resume``."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from mobilekit.cli import main

TINY = ["--data", "photos", "--arch", "resnet20", "--image-size", "32", "--batch-size", "8"]


def colour_folder(root, per_class=10):
    """A small image folder (three colours) that trains in a fraction of a second per epoch."""
    rng = np.random.default_rng(0)
    for name, colour in {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 210)}.items():
        (root / "photos" / name).mkdir(parents=True)
        for index in range(per_class):
            pixels = np.clip(np.array(colour) + rng.normal(0, 20, (32, 32, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / "photos" / name / f"{index}.png")


def one_error_line(capsys):
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize("argv, expected", [
    (["--freeze-epochs", "2"], "--freeze-epochs 2 needs --weights"),
    (["--weights", "imagenet", "--epochs", "3", "--freeze-epochs", "3"], "--freeze-epochs 3 must be between 0"),
    (["--strategy", "gpus"], "--strategy gpus is not a strategy: expected one of default, mirrored"),
    (["--strategy", "tpu"], "--strategy tpu needs an attached TPU"),
    (["--task", "detect", "--strategy", "mirrored"], "--strategy does not apply to detect"),
    (["--resume", "--name", "never_trained"], "run never_trained has no checkpoint"),
])
def test_bad_training_flags_are_one_line_errors(tmp_path, monkeypatch, capsys, argv, expected):
    monkeypatch.chdir(tmp_path)
    assert main(["train", *argv]) == 2
    assert expected in one_error_line(capsys)


def test_resume_refuses_flags_that_contradict_the_saved_config_and_complete_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "runs" / "r"
    (run / "checkpoint").mkdir(parents=True)
    (run / "checkpoint" / "state.json").write_text(json.dumps({"epoch": 1, "phase": "train"}))
    config = {"task": "classify", "arch": "resnet20", "data": "digits", "image_size": 32, "epochs": 3}
    (run / "report.json").write_text(json.dumps({"status": "interrupted", "config": config}))
    assert main(["train", "--name", "r", "--resume", "--epochs", "5"]) == 2
    assert "--epochs 5 contradicts run r's saved config (epochs 3)" in one_error_line(capsys)
    (run / "report.json").write_text(json.dumps({"status": "complete", "config": config}))
    assert main(["train", "--name", "r", "--resume"]) == 2
    assert "run r is complete" in one_error_line(capsys)


def wait_for(path, process, timeout=120):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        assert process.poll() is None, process.communicate()[0][-2000:]
        assert time.monotonic() < deadline, f"no {path} after {timeout} s"
        time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [pytest.param(signal.SIGINT, id="SIGINT"),
                                    pytest.param(signal.SIGTERM, id="SIGTERM", marks=pytest.mark.e2e)])
def test_a_signal_keeps_the_checkpoint_marks_the_report_and_resume_completes(tmp_path, signum):
    """SIGTERM takes the path of Ctrl-C: a second real training process would double this test's time in
    ``make test``, so that case runs in ``make test-e2e``."""
    colour_folder(tmp_path)
    command = [sys.executable, "-m", "mobilekit", "train", "--name", "c", "--epochs", "12", "--patience", "12", *TINY]
    process = subprocess.Popen(command, cwd=tmp_path, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:
        wait_for(tmp_path / "runs" / "c" / "checkpoint" / "state.json", process)
        process.send_signal(signum)
        output, _ = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 128 + signum, output[-2000:]
    assert "resume with `mobilekit train --name c --resume`" in output.splitlines()[-1]
    report = json.loads((tmp_path / "runs" / "c" / "report.json").read_text())
    assert report["status"] == "interrupted" and 1 <= report["training"]["epochs_run"] < 12
    state = json.loads((tmp_path / "runs" / "c" / "checkpoint" / "state.json").read_text())
    assert state["epoch"] == report["training"]["epochs_run"]
    # the last complete epoch's checkpoint, nothing half-written beside it
    assert sorted(os.listdir(tmp_path / "runs" / "c" / "checkpoint")) == [state["file"], "state.json"]

    resumed = subprocess.run([sys.executable, "-m", "mobilekit", "train", "--name", "c", "--resume", "--epochs", "12"],
                             cwd=tmp_path, text=True, capture_output=True, timeout=300,
                             env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    report = json.loads((tmp_path / "runs" / "c" / "report.json").read_text())
    assert report["status"] == "complete" and report["training"]["epochs_run"] == 12
    assert json.loads((tmp_path / "runs" / "c" / "checkpoint" / "state.json").read_text())["epoch"] == 12
    # TensorBoard (its own reader) sees every epoch's training loss, across the interruption.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "runs" / "c" / "logs" / "train"), size_guidance={"tensors": 0})
    events.Reload()
    assert {event.step for event in events.Tensors("epoch_loss")} == set(range(12))
