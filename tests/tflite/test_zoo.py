"""A small version of ``mobilekit zoo``: one network, one epoch, the whole table."""
import json

import pytest

from models.registry import ARCHITECTURES
from tflite.zoo import ZOO, ZooEntry, run_zoo


def test_every_zoo_entry_names_a_registered_architecture():
    assert {entry.arch for entry in ZOO} <= set(ARCHITECTURES)
    assert len({entry.label for entry in ZOO}) == len(ZOO)


@pytest.mark.slow
def test_zoo_table_and_plot(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    entries = (ZooEntry("tiny", "mobilenet_v2", {"alpha": 0.35}),)
    rows = run_zoo(name="z", entries=entries, image_size=32, epochs=1, runs=4, progress=lambda _: None)
    (row,) = rows
    assert row["model"] == "tiny" and row["params"] == 423018 and row["macs"] > 0
    assert 0.0 <= row["int8_accuracy"] <= 1.0 and row["fp32_accuracy"] == row["keras_accuracy"]
    assert row["int8_bytes"] < row["fp32_bytes"] and row["fp32_ms"] > 0 and row["int8_ms"] > 0
    report = json.loads((tmp_path / "runs" / "z" / "report.json").read_text())
    assert report["zoo"] == rows and report["config"]["epochs"] == 1 and report["config"]["image_size"] == 32
    assert (tmp_path / "runs" / "z" / "zoo.png").stat().st_size > 0
    assert (tmp_path / "runs" / "z" / "tiny" / "model_int8.tflite").exists()
