"""``mobilekit export NAME --int8-report`` / ``--float-layers`` / ``--float-worst`` (``mobilekit.int8_diagnosis``):
the files and report sections on a small trained run, a segment run, and the flags' one-line refusals."""
import json

import pytest

from demo_app.metadata import read_metadata
from keras_layers.keras_api import keras
from mobilekit.cli import main
from mobilekit.int8_diagnosis import diagnose
from mobilekit.jobs import train
from mobilekit.runs import run_dir, update_report
from mobilekit.tasks import DETECT, SEGMENT
from models import registry

layers = keras.layers


def small_net(input_shape=(16, 16, 3), alpha=1.0, include_top=True, weights=None, classes=10, pooling=None,
              classifier_activation="softmax", name="small_net"):
    """Two strided 3x3 convolutions and a classifier (a test architecture that trains in seconds)."""
    inputs = keras.Input(shape=input_shape)
    x = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="conv0")(inputs)
    x = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="conv1")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, layers.Dense(classes, activation=classifier_activation, name="logits")(x), name=name)


def one_error_line(capsys):
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip() and "cuInit" not in line]
    assert len(lines) == 1 and lines[0].startswith("mobilekit: error:"), lines
    return lines[0]


@pytest.mark.slow
def test_cli_writes_the_report_and_the_selective_file_of_a_trained_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(registry.ARCHITECTURES, "small_net", registry.Architecture(small_net))
    monkeypatch.chdir(tmp_path)
    train("classify", name="small", arch="small_net", image_size=16, epochs=6, progress=lambda _: None)
    run = tmp_path / "runs" / "small"
    assert main(["export", "small"]) == 0  # model_fp32 / model_int8.tflite, to compare with
    assert main(["export", "small", "--int8-report"]) == 0
    rows = json.loads((run / "int8_report.json").read_text())["layers"]
    named = [row["layers"] for row in rows if row["layers"] and row["layers"] != ["scale_to_unit"]]
    assert named == [["conv0"], ["conv1"], ["pool"], ["logits"]]  # graph order; the kit's pixel scaling first
    assert (run / "int8_report.png").stat().st_size > 0 and not (run / "model_int8_selective.tflite").exists()
    report = json.loads((run / "report.json").read_text())
    assert report["int8_layers"]["layers"] == len(rows) and report["int8_layers"]["calibration_images"] == 200
    worst = max(rows, key=lambda row: row["rmse_scale"])
    assert report["int8_worst_layers"][0]["tensor"] == worst["tensor"] and "int8_report.png" in report["figures"]
    markdown = (run / "report.md").read_text()
    assert "## int8_worst_layers" in markdown and worst["tensor"] in markdown and "![int8_report]" in markdown

    capsys.readouterr()
    assert main(["export", "small", "--float-layers", "conv9"]) == 2
    assert "unknown layer 'conv9'" in one_error_line(capsys)

    assert main(["export", "small", "--float-worst", "1", "--float-layers", rows[0]["tensor"]]) == 0
    report = json.loads((run / "report.json").read_text())
    assert {row["tensor"] for row in report["int8_float_layers"]} == {rows[0]["tensor"], worst["tensor"]}
    files = {row["file"]: row for row in report["int8_selective"]}
    assert list(files) == ["model_fp32.tflite", "model_int8.tflite", "model_int8_selective.tflite"]
    selective = files["model_int8_selective.tflite"]
    assert selective["float_layers"] == len(report["int8_float_layers"])
    assert selective["size_bytes"] == (run / "model_int8_selective.tflite").stat().st_size
    assert selective["mean_abs_diff"] < 0.02 and "tflite_accuracy" in selective, selective
    assert all(row["median_ms"] > 0 for row in files.values())
    assert files["model_fp32.tflite"]["latency_ratio"] == 1.0
    metadata = read_metadata(str(run / "model_int8_selective.tflite"))
    assert metadata["labels"] == (run / "labels.txt").read_text().split()


def fake_run(name, task, config, model):
    """A run folder as ``mobilekit train`` leaves it: ``model.keras`` and the report's config."""
    path = run_dir(name)
    model.save(f"{path}/model.keras")
    update_report(path, status="complete", config=task.config(config))
    return path


def test_a_segment_run_is_diagnosed_and_validated_by_its_task(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    inputs = keras.Input((32, 32, 3))
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="features")(layers.Rescaling(1 / 255)(inputs))
    fake_run("seg", SEGMENT, {"image_size": 32, "train_images": 16, "validation_images": 4, "test_images": 6},
             keras.Model(inputs, layers.Conv2D(4, 1, activation="softmax", name="classes")(x)))
    report = diagnose("seg", float_worst=1, runs=2, progress=lambda _: None)
    assert report["int8_layers"]["calibration_images"] == 16
    selective = report["int8_selective"][-1]
    assert selective["file"] == "model_int8_selective.tflite" and selective["pixel_agreement"] > 0.9, selective
    assert (tmp_path / "runs" / "seg" / "int8_report.png").stat().st_size > 0


def test_a_detect_run_is_refused_in_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    inputs = keras.Input((32, 32, 3))
    fake_run("det", DETECT, {"image_size": 32, "train_images": 4, "validation_images": 2, "test_images": 2},
             keras.Model(inputs, layers.Conv2D(4, 1)(inputs)))
    with pytest.raises(ValueError, match="do not apply to a detect run") as error:
        diagnose("det", progress=lambda _: None)
    assert "\n" not in str(error.value)
    assert sorted(p.name for p in (tmp_path / "runs" / "det").iterdir()) == ["model.keras", "report.json", "report.md"]


@pytest.mark.parametrize("argv, message", [
    (["export", "--model", "m.keras", "--float-worst", "2"], "--float-worst does not apply with --model"),
    (["export", "r", "--model", "m.keras", "--int8-report"], "--int8-report does not apply with --model"),
    (["export", "r", "--float-layers", "x", "--qat"], "--qat does not apply with --int8-report"),
    (["export", "r", "--int8-report", "--quantization", "int8"], "--quantization does not apply with --int8-report"),
    (["export", "r", "--float-worst", "1", "--prune", "0.5"], "--prune does not apply with --int8-report"),
    (["export", "--float-worst", "1"], "export needs a run NAME"),
    (["export", "nothing", "--int8-report"], "no trained model at runs/nothing/model.keras"),
])
def test_flags_that_do_not_apply_are_refused_in_one_line(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert message in one_error_line(capsys)
    assert not (tmp_path / "runs").exists()
