"""``mobilekit train --weights``: a weights file through the CLI, the two phases in the report, and
the offline ImageNet error as the user sees it."""
import json

import numpy as np
import pytest
from test_train_resume import colour_folder, one_error_line

from mobilekit.cli import main
from models import mobilenet_v2

ARGS = ["--data", "photos", "--arch", "mobilenet_v2", "--alpha", "0.35", "--image-size", "32", "--batch-size", "8"]


@pytest.mark.slow
def test_train_fine_tunes_a_weights_file_in_two_phases(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    colour_folder(tmp_path)
    source = mobilenet_v2((32, 32, 3), alpha=0.35, classes=7)
    source.save_weights(tmp_path / "source.weights.h5")
    assert main(["train", "--name", "ft", *ARGS, "--weights", "source.weights.h5", "--epochs", "3",
                 "--freeze-epochs", "2"]) == 0
    report = json.loads((tmp_path / "runs" / "ft" / "report.json").read_text())
    assert report["status"] == "complete" and report["config"]["weights"] == "source.weights.h5"
    training = report["training"]
    assert training["weights_source"] == "source.weights.h5"
    weighted = [layer for layer in source.layers if layer.weights]
    assert training["layers_loaded"] == len(weighted) - 1 and training["layers_initialized"] == 1
    phases = {row["phase"]: row for row in report["phases"]}
    assert phases["head"]["epochs_run"] == 2 and phases["head"]["frozen_layers"] == len(weighted) - 1
    assert phases["fine_tune"]["epochs_run"] == 1
    assert np.isclose(phases["fine_tune"]["learning_rate"], phases["head"]["learning_rate"] / 10)


def test_imagenet_offline_is_one_line_naming_the_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    import keras_layers.keras_api

    def offline(fname, origin, **kwargs):
        raise Exception(f"URL fetch failure on {origin}: None -- [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(keras_layers.keras_api.keras.utils, "get_file", offline)
    colour_folder(tmp_path)
    assert main(["train", "--name", "in", *ARGS, "--weights", "imagenet", "--epochs", "2"]) == 2
    line = one_error_line(capsys)
    # 32x32 has no file of its own: keras.applications' 224x224 weights serve every other size
    assert "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224.h5 are not in the Keras cache" in line
    assert "--weights PATH" in line
