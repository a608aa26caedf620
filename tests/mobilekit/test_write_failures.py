"""A full disk (ENOSPC, simulated) and a run folder without write permission during ``mobilekit export`` (the
.tflite) and ``mobilekit report`` (the plot, report.json, report.md): exit 2 with one line that names the
file and the cause, the run's earlier outputs byte-identical and no temporary file left."""
import json
import os
import shutil

import faults
import pytest
from PIL import Image

from keras_layers.keras_api import keras
from mobilekit.cli import main
from mobilekit.runs import update_report

EARLIER = {"model_fp32.tflite": b"an earlier export", "tradeoffs.png": b"an earlier plot"}


def save_trained_run(path):
    """A run folder ``path`` as ``mobilekit train`` leaves one: a small digits classifier (pixels in) and its report."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, activation="relu")(keras.layers.Rescaling(1 / 255)(inputs))
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    path.mkdir(parents=True)
    keras.Model(inputs, outputs).save(path / "model.keras")
    update_report(str(path), status="complete", config={"task": "classify", "data": "digits", "image_size": 16,
                                                        "seed": 0})


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """``save_trained_run``'s folder after an export: a report with an export row, and earlier outputs."""
    path = tmp_path_factory.mktemp("template") / "r"
    save_trained_run(path)
    for name, data in EARLIER.items():
        (path / name).write_bytes(data)
    update_report(str(path), export=[{"quantization": "fp32", "file": "model_fp32.tflite", "size_bytes": 17,
                                      "tflite_accuracy": 0.5}])
    return path


@pytest.fixture
def run(trained_run, tmp_path, monkeypatch):
    """A copy of ``trained_run`` at ``runs/r`` in the working directory."""
    monkeypatch.chdir(tmp_path)
    shutil.copytree(trained_run, tmp_path / "runs" / "r")
    return tmp_path / "runs" / "r"


def contents(folder):
    return {name: (folder / name).read_bytes() for name in os.listdir(folder)}


def one_error_line(capsys):
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


EXPORT = ["export", "r", "--quantization", "fp32"]


@pytest.mark.parametrize("argv, target, written", [  # written: complete new files written before the failure
    (EXPORT, "model_fp32.tflite", ()), (["report", "r"], "tradeoffs.png", ()),
    (["report", "r"], "report.json", ("tradeoffs.png",)), (["report", "r"], "report.md", ("tradeoffs.png",
                                                                                        "report.json"))])
def test_a_full_disk_is_one_line_and_keeps_the_earlier_outputs(run, capsys, argv, target, written):
    earlier = contents(run)
    with faults.full_disk(run, target):
        assert main(argv) == 2
    assert one_error_line(capsys) == f"mobilekit: error: cannot write runs/r/{target}: No space left on device"
    now = contents(run)
    assert now.keys() == earlier.keys()  # no temporary file left
    assert [name for name in now if name not in written and now[name] != earlier[name]] == []
    if "tradeoffs.png" in written:
        Image.open(run / "tradeoffs.png").verify()
    if "report.json" in written:
        assert json.loads(now["report.json"])["figures"] == ["tradeoffs.png"]


@pytest.mark.parametrize("argv, target", [(EXPORT, "model_fp32.tflite"), (["report", "r"], "tradeoffs.png")])
def test_a_read_only_run_folder_is_one_line_and_keeps_the_earlier_outputs(run, capsys, argv, target):
    earlier = contents(run)
    with faults.read_only(run):
        assert main(argv) == 2
    assert one_error_line(capsys) == f"mobilekit: error: cannot write runs/r/{target}: Permission denied"
    assert contents(run) == earlier
