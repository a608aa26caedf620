"""Adding an architecture is its builder plus one registry entry: a small extra network registered
here trains, exports and benchmarks through the CLI, and every file lands under ``RUNS_ROOT``."""
import json

import pytest

from keras_layers.keras_api import keras
from mobilekit import runs
from mobilekit.cli import main
from models import registry
from models.blocks import make_divisible

layers = keras.layers


def tiny_net(input_shape=(32, 32, 3), alpha=1.0, include_top=True, weights=None, classes=10, pooling=None,
             classifier_activation="softmax", name="tiny_net"):
    """Two strided 3x3 convolutions of 16 * alpha channels and a classifier (a test architecture)."""
    inputs = keras.Input(shape=input_shape)
    x = inputs
    for index in range(2):
        x = layers.Conv2D(make_divisible(16 * alpha), 3, strides=2, padding="same", activation="relu",
                          name=f"conv{index}")(x)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(classes, activation=classifier_activation, name="logits")(x), name=name)


@pytest.fixture
def registered(monkeypatch, tmp_path):
    monkeypatch.setitem(registry.ARCHITECTURES, "tiny_net", registry.Architecture(tiny_net))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runs, "RUNS_ROOT", "elsewhere")
    return tmp_path


@pytest.mark.slow
def test_a_registered_architecture_trains_exports_and_benchmarks_through_the_cli(registered, capsys):
    assert main(["train", "--arch", "tiny_net", "--alpha", "0.5", "--image-size", "16", "--epochs", "1",
                 "--name", "tiny"]) == 0
    run = registered / "elsewhere" / "tiny"
    report = json.loads((run / "report.json").read_text())
    assert report["config"]["arch"] == "tiny_net" and report["config"]["alpha"] == 0.5
    expected = tiny_net((16, 16, 3), alpha=0.5, classes=10).count_params()
    assert report["model"]["params"] == expected
    assert main(["export", "tiny", "--quantization", "fp32", "int8"]) == 0
    rows = {row["quantization"]: row for row in json.loads((run / "report.json").read_text())["export"]}
    assert rows["fp32"]["top1_agreement"] == 1.0 and rows["fp32"]["max_abs_diff"] < 1e-4
    assert rows["int8"]["max_abs_diff"] < 0.02  # class probabilities of an int8 file of a barely trained net
    files = [str(run / "model_fp32.tflite"), str(run / "model_int8.tflite")]
    capsys.readouterr()
    assert main(["bench", *files, "--runs", "4", "--rounds", "2", "--warmup", "1", "--json"]) == 0
    timed = json.loads(capsys.readouterr().out)["models"]
    assert [row["model"] for row in timed] == files and all(row["runs"] == 4 for row in timed)
    assert main(["bench", "--arch", "tiny_net", "--alpha", "0.5", "--image-size", "16", "--runs", "3",
                 "--rounds", "1", "--warmup", "1", "--name", "tiny_bench"]) == 0
    assert (registered / "elsewhere" / "tiny_bench" / "tiny_net_int8.tflite").is_file()
    assert not (registered / "runs").exists()
