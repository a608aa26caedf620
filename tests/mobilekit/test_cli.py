"""The ``mobilekit`` command line: help for every subcommand, one-line errors, JSON output."""
import json
import os
import subprocess
import sys

import pytest

from keras_layers.keras_api import keras
from mobilekit.cli import build_parser, main
from models.files import write_bytes
from tflite import convert

# The commands DESIGN.md promises; the parser may have more.
PROMISED = {"quickstart", "train", "export", "bench", "demo", "report"}
SUBCOMMANDS = tuple(build_parser()._subparsers._group_actions[0].choices)


def mobilekit(*args, cwd=None):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, "-m", "mobilekit", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=600)


def test_top_level_help_lists_every_subcommand():
    done = mobilekit("--help")
    assert done.returncode == 0
    assert PROMISED <= set(SUBCOMMANDS)
    listed = {line.split()[0] for line in done.stdout.split("COMMAND")[-1].splitlines()[1:] if line.strip()}
    assert set(SUBCOMMANDS) <= listed


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_flag_of_every_subcommand_is_explained(command, capsys):
    subparser = build_parser()._subparsers._group_actions[0].choices[command]
    for action in subparser._actions:
        assert action.help, f"{command} {action.option_strings or action.dest} has no help"
    with pytest.raises(SystemExit) as done:
        subparser.parse_args(["--help"])
    assert done.value.code == 0 and "usage:" in capsys.readouterr().out


def assert_one_line_error(done, *fragments):
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("mobilekit: error:"), done.stderr
    assert "Traceback" not in done.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_export_of_a_missing_run_in_a_fresh_process(tmp_path):
    """The whole stderr of a real process: one line, none of TensorFlow's import noise."""
    assert_one_line_error(mobilekit("export", "nothing", cwd=tmp_path), "no trained model", "mobilekit train")


@pytest.mark.parametrize("argv, fragment", [
    (["report", "nothing"], "no report.json"),
    (["bench", "x.tflite"], "model file not found"),
    (["inspect", "x.tflite"], "model file not found: x.tflite"),
    (["inspect", "."], "model file not found: ."),
    (["train", "--data", "imagenet"], "imagenet"),
    (["train", "--epochs", "0"], "--epochs 0 is out of range: expected a number > 0"),
    (["train", "--task", "detect", "--train-images", "0"], "--train-images 0 is out of range"),
    (["train", "--seed", "-1"], "--seed -1 is out of range: expected a number >= 0"),
])
def test_bad_input_is_one_line(argv, fragment, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("mobilekit: error:") and fragment in lines[0], lines


@pytest.mark.parametrize("argv, fragment", [
    (["zoo", "--epochs", "0"], "argument --epochs: 0 is out of range: expected a number > 0"),
    (["zoo", "--seeds", "0"], "argument --seeds: 0 is out of range: expected a number > 0"),
    (["claims", "--seed", "-1"], "argument --seed: -1 is out of range: expected a number >= 0"),
    (["transfer", "--fraction", "2"], "argument --fraction: 2 is out of range: expected a number > 0 and <= 1"),
    (["bench", "m.tflite", "--warmup", "-1"], "argument --warmup: -1 is out of range: expected a number >= 0"),
    (["bench", "--image-size", "0"], "argument --image-size: 0 is out of range"),
    (["bench", "--runs", "x"], "argument --runs: invalid int value: 'x'"),
])
def test_numbers_out_of_range_are_usage_errors(argv, fragment, capsys):
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 2 and fragment in capsys.readouterr().err


def test_a_value_error_from_inside_a_library_keeps_its_traceback(monkeypatch, capsys):
    """A ValueError the kit did not raise is a programming error, not bad input (``demo_app.errors``)."""
    import numpy as np

    from demo_app.preprocess import parse_input_range
    from mobilekit import cli

    monkeypatch.setattr(cli, "_inspect", lambda args: parse_input_range("bogus"))
    assert main(["inspect", "m.tflite"]) == 2
    assert capsys.readouterr().err.startswith("mobilekit: error: ")
    monkeypatch.setattr(cli, "_inspect", lambda args: np.stack([]))
    with pytest.raises(ValueError, match="need at least one array"):
        main(["inspect", "m.tflite"])


def test_demo_errors_are_one_line_and_debug_shows_the_traceback(tmp_path):
    bogus = tmp_path / "model.tflite"
    bogus.write_text("not a model")
    assert_one_line_error(mobilekit("demo", "--model", str(bogus), "--source", "x.png", "--headless"), str(bogus))
    debug = mobilekit("--debug", "demo", "--model", str(bogus), "--source", "x.png", "--headless")
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_bench_json_is_one_object(tmp_path):
    inputs = keras.Input((8, 8, 3))
    path = str(tmp_path / "m.tflite")
    write_bytes(path, convert(keras.Model(inputs, keras.layers.Conv2D(4, 3)(inputs)), "fp32"))
    done = mobilekit("bench", path, path, "--runs", "4", "--rounds", "2", "--warmup", "1", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert [row["model"] for row in result["models"]] == [path, path]
    first, second = result["models"]
    assert second["latency_ratio"] == pytest.approx(second["median_ms"] / first["median_ms"], rel=1e-3)


def test_inspect_prints_the_report_or_its_json(tmp_path, capsys):
    from tflite.inspect import inspect_model, inspect_text

    inputs = keras.Input((8, 8, 3))
    path = str(tmp_path / "m.tflite")
    write_bytes(path, convert(keras.Model(inputs, keras.layers.Conv2D(4, 3)(inputs)), "fp32"))
    assert main(["inspect", path]) == 0
    assert capsys.readouterr().out == inspect_text(inspect_model(path)) + "\n"
    assert main(["inspect", path, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["size"]["file"] == os.path.getsize(path) and [op["name"] for op in report["operators"]] == ["CONV_2D"]
    (tmp_path / "notes.txt").write_text("not a model")
    assert main(["inspect", str(tmp_path / "notes.txt")]) == 2
    assert "is not a TFLite model" in capsys.readouterr().err


def test_mobilekit_demo_loads_no_tensorflow(tmp_path):
    script = ("import sys\nfrom mobilekit.cli import main\n"
              "code = main(['demo', '--model', 'missing.tflite', '--source', 'x.png', '--headless'])\n"
              "assert code == 2, code\n"
              "assert not [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf_keras')]\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "model file not found: missing.tflite" in done.stderr


def test_export_writes_an_int16x8_classifier_with_metadata_that_names_it(tmp_path, monkeypatch):
    """A run folder as ``mobilekit train`` leaves one (a small digits classifier taking pixels), exported to
    int16x8: float input and output, int16 activations, validated against Keras on the test split."""
    from PIL import Image

    from demo_app.app import run_demo
    from demo_app.metadata import read_metadata
    from demo_app.runtime import TFLiteModel
    from mobilekit.runs import run_dir, update_report

    monkeypatch.chdir(tmp_path)
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, activation="relu")(keras.layers.Rescaling(1 / 255)(inputs))
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    path = run_dir("r")
    keras.Model(inputs, outputs).save(os.path.join(path, "model.keras"))
    update_report(path, status="complete", config={"task": "classify", "data": "digits", "image_size": 16, "seed": 0})
    assert main(["export", "r", "--quantization", "int16x8"]) == 0
    (row,) = json.loads((tmp_path / "runs" / "r" / "report.json").read_text())["export"]
    assert row["quantization"] == "int16x8" and row["file"] == "model_int16x8.tflite"
    assert row["top1_agreement"] >= 0.95 and "CUSTOM" not in row["ops"]
    file = tmp_path / "runs" / "r" / "model_int16x8.tflite"
    runtime = TFLiteModel(str(file))
    dtypes = {d["dtype"].__name__ for d in runtime.interpreter.get_tensor_details()}
    assert runtime.input_dtype == "float32" and "int16" in dtypes
    metadata = read_metadata(str(file))
    assert metadata["description"] == "image classification (top-1 accuracy), int16x8, exported by mobilekit"
    assert (metadata["input_mean"], metadata["input_std"], metadata["labels"]) == ([0.0], [1.0], list("0123456789"))
    frame = tmp_path / "frame.png"
    Image.new("RGB", (40, 30), (200, 120, 40)).save(frame)
    summary = run_demo(str(file), str(frame), headless=True, quiet=True)  # the device side runs it (no TF)
    assert len(summary["predictions"]) == 1 and summary["predictions"][0][2] in metadata["labels"]


def test_bench_converts_an_untrained_architecture_to_int16x8(tmp_path, monkeypatch, capsys):
    """An untrained MobileNetV2's activations fade to ~1e-11 at its initial batch norm statistics, too small
    for int16 scales (LiteRT refuses such a file); the bench sets the statistics from photos first."""
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "--arch", "mobilenet_v2", "--alpha", "0.35", "--image-size", "32", "--quantization",
                 "int16x8", "--runs", "1", "--rounds", "1", "--warmup", "0", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["models"]
    assert row["model"].endswith("mobilenet_v2_int16x8.tflite") and row["median_ms"] > 0
