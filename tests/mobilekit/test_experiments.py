"""The experiment commands through the CLI, each in a small configuration (one seed): ``binary``
(Keras 3), ``optimize`` (TFMOT's variants in a tf_keras child process) and ``qsfm`` (in one), their
comparisons checked against the rows; and their pair tables and seed options without training."""
import json

import numpy as np
import pytest

from keras_layers.keras_api import keras
from mobilekit import binary_table
from mobilekit.cli import _seeds, build_parser, main
from mobilekit.optimize import VARIANTS, file_correct, variant_pairs
from mobilekit.paper_claims import CLAIMS
from models.data import load_digits_data
from models.train import evaluate_accuracy
from tflite.converter import convert
from tflite.inspect import float_operators
from tflite.pruning import tflite_sparsity
from tflite.validation import validate


def _report(tmp_path, name):
    return json.loads((tmp_path / "runs" / name / "report.json").read_text())


def _check_comparison(comparison, method, baseline):
    """``comparison`` against its two rows: the difference of their per-seed accuracies (points),
    inside its interval, and the verdict of the claim it names."""
    per_seed = np.subtract(method["accuracies"], baseline["accuracies"])
    assert comparison["difference_points"] == pytest.approx(100 * per_seed.mean())
    assert comparison["low_points"] <= comparison["difference_points"] <= comparison["high_points"]
    assert comparison["seeds"] == len(per_seed)
    if "claim" in comparison:
        claim = CLAIMS[comparison["claim"]].claim
        assert comparison["verdict"] == claim.verdict(comparison["low_points"] / 100, comparison["high_points"] / 100)


def test_seed_and_data_options_of_the_experiment_commands():
    parser = build_parser()
    for command in ("zoo", "binary", "transfer", "optimize", "qsfm"):
        assert _seeds(parser.parse_args([command, "--seeds", "2"])) == {"seeds": (0, 1)}
        assert _seeds(parser.parse_args([command])) == {}
    assert parser.parse_args(["zoo", "--data", "patterns"]).data == "patterns"


def test_pair_tables():
    labels = {row.label for row in binary_table.ROWS}
    assert all({pair.method, pair.baseline} <= labels for pair in binary_table.PAIRS)
    assert {pair.baseline for pair in binary_table.PAIRS if pair.claim is None} == {"Float"}
    assert [pair for pair in binary_table.PAIRS if pair.claim] == [("Rep-XNOR (beta=2)", "XNOR", "repconv")]
    pairs = variant_pairs(("a", "b"))
    assert len(pairs) == 2 * (len(VARIANTS) - 1) and ("b qsfm_int8", "b fp32", None) in pairs


def test_file_correct_is_the_files_top1_per_image(tmp_path):
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(10, "softmax")])
    test = load_digits_data(8, seed=0).test
    path = tmp_path / "m.tflite"
    path.write_bytes(convert(model, "fp32"))
    correct = file_correct(str(path), test)
    assert correct.shape == (270,) and correct.dtype == bool
    assert correct.mean() == validate(str(path), model, *test)["tflite_accuracy"]


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
        assert row["accuracy_std"] == 0.0
    [comparison] = _report(tmp_path, "b")["comparisons"]  # Rep-XNOR did not run: no claim row
    assert (comparison["method"], comparison["baseline"]) == ("XNOR", "Float") and "claim" not in comparison
    _check_comparison(comparison, rows["xnor"], rows["float"])
    assert rows["float"]["binary_macs"] == 0 and rows["xnor"]["binary_macs"] > 0.5 * rows["float"]["macs"]
    assert rows["xnor"]["weight_bits"] < rows["float"]["weight_bits"] / 8
    assert rows["xnor"]["binary_agreement"] >= 0.95  # the faithful binary file computes what Keras computes
    # 16-bit activations keep the signs that int8 rounds to 0 and flips (0.80 vs 0.13 measured after 1 epoch)
    assert rows["xnor"]["int16x8_agreement"] >= rows["xnor"]["int8_agreement"] + 0.4


@pytest.mark.e2e
def test_optimize_exports_six_variants_side_by_side(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["optimize", "--name", "o", "--archs", "mobilenet_v2", "--epochs", "1", "--finetune-epochs", "1",
                 "--runs", "3", "--seeds", "1"]) == 0
    report = _report(tmp_path, "o")
    rows = {row["variant"]: row for row in report["variants"]}
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
    # one TFLite accuracy per seed (the file's, as validate computes it); each variant against fp32
    assert all(row["accuracies"] == [row["tflite_accuracy"]] == [row["accuracy_mean"]] for row in rows.values())
    comparisons = {c["method"]: c for c in report["comparisons"]}
    assert list(comparisons) == [f"mobilenet_v2 {variant}" for variant in list(rows)[1:]]
    for variant, row in list(rows.items())[1:]:
        assert comparisons[f"mobilenet_v2 {variant}"]["baseline"] == "mobilenet_v2 fp32"
        _check_comparison(comparisons[f"mobilenet_v2 {variant}"], row, rows["fp32"])
    assert "TFLite files" in report["statistics"]["comparisons"]


@pytest.mark.e2e
def test_qsfm_prunes_a_trained_resnet(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["qsfm", "--name", "q", "--arch", "resnet20", "--epochs", "1", "--ratio", "0.5", "--runs", "3",
                 "--seeds", "1"]) == 0
    report = _report(tmp_path, "q")
    original, pruned = report["qsfm"]
    assert (original["model"], pruned["model"]) == ("original", "qsfm")
    assert report["summary"]["macs_reduction"] == pytest.approx(1 - pruned["macs"] / original["macs"])
    assert 0.3 < report["summary"]["macs_reduction"] < 0.9
    assert (tmp_path / "runs" / "q" / "seed0" / "model.keras").is_file()
    for row in (original, pruned):
        assert row["tflite_accuracy"] == pytest.approx(row["accuracies"][0], abs=1 / 270)  # fp32 files
    [comparison] = report["comparisons"]
    assert (comparison["method"], comparison["baseline"], comparison["claim"]) == ("qsfm", "original", "qsfm")
    _check_comparison(comparison, pruned, original)
    assert np.isclose(report["summary"]["accuracy_change_points"],
                      100 * (pruned["accuracy_mean"] - original["accuracy_mean"]))
    assert report["summary"]["verdict"] == comparison["verdict"]
