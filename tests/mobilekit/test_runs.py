import json

import pytest

from models.files import atomic_output, write_text
from mobilekit.runs import load_report, render_markdown, run_dir, update_report


def test_reports_merge_sections_and_render_tables(tmp_path):
    update_report(str(tmp_path), config={"arch": "mobilenet_v2", "alpha": 0.35})
    report = update_report(str(tmp_path), export=[{"quantization": "fp32", "size_bytes": 10},
                                                  {"quantization": "int8", "size_bytes": 4, "extra": 0.123456}],
                           figures=["a.png"])
    assert load_report(str(tmp_path)) == report == json.loads((tmp_path / "report.json").read_text())
    assert set(report) == {"config", "export", "figures"}
    markdown = (tmp_path / "report.md").read_text()
    assert "| alpha | 0.35 |" in markdown
    assert "| quantization | size_bytes | extra |" in markdown and "| int8 | 4 | 0.1235 |" in markdown
    assert "![a](a.png)" in markdown


def test_render_markdown_headings():
    text = render_markdown({"training": {"epochs": 3}, "empty": {}}, "run")
    assert text.startswith("# run\n") and "## training" in text and "## empty" not in text


def test_atomic_output_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "model.tflite"
    write_text(str(target), "old")
    with pytest.raises(RuntimeError):
        with atomic_output(str(target)) as tmp:
            with open(tmp, "w") as f:
                f.write("half")
            raise RuntimeError("conversion failed")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["model.tflite"]


@pytest.mark.parametrize("bad", ["", "a/b", ".."])
def test_run_names_must_be_plain(bad):
    with pytest.raises(ValueError, match="plain folder name"):
        run_dir(bad)


def test_a_damaged_report_or_saved_config_is_one_line_naming_it(tmp_path, monkeypatch, capsys):
    from mobilekit.cli import main

    monkeypatch.chdir(tmp_path)
    run = tmp_path / "runs" / "r"
    (run / "checkpoint").mkdir(parents=True)
    (run / "checkpoint" / "state.json").write_text(json.dumps({"epoch": 1, "phase": "train"}))
    for report, message in [(b'{"status": \xff', "run report runs/r/report.json is not JSON"),
                            (b"[1, 2]", "run report runs/r/report.json is not a JSON object"),
                            (json.dumps({"status": "interrupted", "config": {"task": "classify", "data": "digits"}}),
                             "run r's config in runs/r/report.json lacks arch, image_size: expected the config"),
                            (json.dumps({"status": "interrupted", "config": {"task": "classify", "arch": "resnet20",
                                                                             "data": "digits", "image_size": "48"}}),
                             "run r's config in runs/r/report.json has image_size '48': expected a value of the type"),
                            (json.dumps({"status": "interrupted", "config": {"task": ["classify"]}}),
                             "has task ['classify']: expected one of classify, detect, segment")]:
        (run / "report.json").write_bytes(report if isinstance(report, bytes) else report.encode())
        assert main(["train", "--name", "r", "--resume"]) == 2
        lines = capsys.readouterr().err.splitlines()
        assert len(lines) == 1 and message in lines[0], lines
