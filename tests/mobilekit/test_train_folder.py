"""``mobilekit train --data FOLDER`` on a folder a user has: one corrupt JPEG among the photos is
skipped and named in the report; ``--strict`` stops at it with one line."""
import json

import numpy as np
import pytest
from PIL import Image

from mobilekit.cli import main

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 210)}


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    for name, colour in COLOURS.items():
        (tmp_path / "photos" / name).mkdir(parents=True)
        for index in range(8):
            pixels = np.clip(np.array(colour) + rng.normal(0, 20, (40, 40, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / "photos" / name / f"{index}.jpg", quality=90)
    good = (tmp_path / "photos" / "red" / "0.jpg").read_bytes()
    (tmp_path / "photos" / "red" / "broken.jpg").write_bytes(good[:len(good) // 3])
    return tmp_path


@pytest.mark.slow
def test_a_corrupt_file_is_skipped_and_named_and_strict_stops_at_it(folder, monkeypatch, capsys):
    monkeypatch.chdir(folder)
    assert main(["train", "--data", "photos", "--arch", "resnet20", "--image-size", "32", "--epochs", "1",
                 "--batch-size", "8", "--name", "f"]) == 0
    report = json.loads((folder / "runs" / "f" / "report.json").read_text())
    assert [row["file"] for row in report["skipped_files"]] == ["red/broken.jpg"]
    assert report["data"]["skipped_files"] == 1
    counts = {row["class"]: row["train"] + row["validation"] + row["test"] for row in report["class_counts"]}
    assert counts == {"blue": 8, "green": 8, "red": 8}
    assert "red/broken.jpg" in capsys.readouterr().out
    assert main(["train", "--data", "photos", "--strict", "--name", "g"]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "red/broken.jpg" in lines[0], lines
    assert main(["train", "--task", "detect", "--strict"]) == 2
    assert "--strict does not apply to detect" in capsys.readouterr().err
