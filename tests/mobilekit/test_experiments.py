"""The experiment commands through the CLI, each in a small configuration: ``binary`` (Keras 3),
``optimize`` (TFMOT's variants in a tf_keras child process) and ``qsfm`` (in one)."""
import json

import numpy as np
import pytest

from keras_layers.keras_api import keras
from mobilekit.cli import main
from models.data import load_digits_data
from models.train import evaluate_accuracy
from tflite.inspect import float_operators
from tflite.pruning import tflite_sparsity


def _report(tmp_path, name):
    return json.loads((tmp_path / "runs" / name / "report.json").read_text())


@pytest.mark.e2e
def test_binary_table_of_two_variants(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["binary", "--name", "b", "--only", "float", "xnor", "--epochs", "1", "--seeds", "1"]) == 0
    rows = {row["variant"]: row for row in _report(tmp_path, "b")["binary"]}
    assert set(rows) == {"float", "xnor"}
    test = load_digits_data(32, seed=0).test
    for variant, row in rows.items():
        trained = keras.models.load_model(tmp_path / "runs" / "b" / f"{variant}_seed0" / "model.keras")
        assert row["accuracies"] == [evaluate_accuracy(trained, test)] == [row["accuracy_mean"]]
    assert rows["float"]["binary_macs"] == 0 and rows["xnor"]["binary_macs"] > 0.5 * rows["float"]["macs"]
    assert rows["xnor"]["weight_bits"] < rows["float"]["weight_bits"] / 8
    assert rows["xnor"]["binary_agreement"] >= 0.95  # the faithful binary file computes what Keras computes
    # 16-bit activations keep the signs that int8 rounds to 0 and flips (0.80 vs 0.13 measured after 1 epoch)
    assert rows["xnor"]["int16x8_agreement"] >= rows["xnor"]["int8_agreement"] + 0.4


@pytest.mark.e2e
def test_optimize_exports_six_variants_side_by_side(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["optimize", "--name", "o", "--archs", "mobilenet_v2", "--epochs", "1", "--finetune-epochs", "1",
                 "--runs", "3"]) == 0
    rows = {row["variant"]: row for row in _report(tmp_path, "o")["variants"]}
    assert list(rows) == ["fp32", "ptq_int8", "qat_int8", "qat_tfmot_int8", "pruned_int8", "qsfm_int8"]
    for variant, row in rows.items():
        model_bytes = (tmp_path / "runs" / "o" / "mobilenet_v2" / f"{variant}.tflite").read_bytes()
        assert len(model_bytes) == row["size_bytes"]
        assert row["sparsity"] == round(tflite_sparsity(model_bytes), 4)
    assert rows["fp32"]["top1_agreement"] == 1.0 and rows["ptq_int8"]["size_bytes"] < 0.5 * rows["fp32"]["size_bytes"]
    assert rows["pruned_int8"]["sparsity"] >= 0.45 > rows["ptq_int8"]["sparsity"]
    assert rows["qsfm_int8"]["macs"] < rows["fp32"]["macs"] and rows["qsfm_int8"]["params"] < rows["fp32"]["params"]
    for variant in ("qat_int8", "qat_tfmot_int8"):  # both QAT files integer-only, computing what their Keras model does
        model_bytes = (tmp_path / "runs" / "o" / "mobilenet_v2" / f"{variant}.tflite").read_bytes()
        assert float_operators(model_bytes) == [] and rows[variant]["mean_abs_diff"] < 0.02


@pytest.mark.e2e
def test_qsfm_prunes_a_trained_resnet(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["qsfm", "--name", "q", "--arch", "resnet20", "--epochs", "1", "--ratio", "0.5", "--runs", "3"]) == 0
    report = _report(tmp_path, "q")
    original, pruned = report["qsfm"]
    assert (original["model"], pruned["model"]) == ("original", "qsfm")
    assert report["summary"]["macs_reduction"] == pytest.approx(1 - pruned["macs"] / original["macs"])
    assert 0.3 < report["summary"]["macs_reduction"] < 0.9
    for row in (original, pruned):
        assert row["tflite_accuracy"] == pytest.approx(row["keras_accuracy"], abs=1 / 270)  # fp32 files
    assert np.isclose(report["summary"]["accuracy_change_points"],
                      100 * (pruned["keras_accuracy"] - original["keras_accuracy"]))
