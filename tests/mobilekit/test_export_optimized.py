"""``mobilekit export NAME --qat --prune`` (QAT in this Keras 3 process; ``--qat-backend tfmot`` and
pruning in a tf_keras process) for runs of builders without a width multiplier (ResNet-20)
and with one (GhostNet): the tf_keras process rebuilds each run from its config exactly as it
was trained (it passed ``alpha`` to every builder, and ResNet-20's failed)."""
import json

import pytest

from demo_app.metadata import read_metadata
from mobilekit.cli import main
from mobilekit.jobs import train
from tflite.inspect import float_operators


@pytest.mark.e2e
# The least share of zero weights in the pruned file: TFMOT prunes the Conv2D / Dense layers it
# wraps; a GhostNet keeps most of its weights inside Ghost modules (kit layers it does not prune):
# 0.26 of all weights measured at 50% sparsity, against 0.50 for ResNet-20.
@pytest.mark.parametrize("arch, options, least_sparsity", [("resnet20", {}, 0.45), ("ghostnet", {"alpha": 0.5}, 0.2)])
def test_qat_and_pruned_export_of_a_trained_run(arch, options, least_sparsity, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    train("classify", name="run", arch=arch, image_size=32, epochs=1, progress=lambda _: None, **options)
    assert main(["export", "run", "--qat", "--qat-epochs", "1", "--prune", "0.5"]) == 0
    assert main(["export", "run", "--qat", "--qat-epochs", "1", "--qat-backend", "tfmot"]) == 0
    report = json.loads((tmp_path / "runs" / "run" / "report.json").read_text())
    rows = {row["file"]: row for row in report["export_optimized"]}
    assert set(rows) == {"model_qat_int8.tflite", "model_qat_tfmot_int8.tflite", "model_pruned_int8.tflite"}
    for file_name, row in rows.items():
        assert (tmp_path / "runs" / "run" / file_name).stat().st_size == row["size_bytes"]
        # the int8 file computes what the fine-tuned Keras model computes (class probabilities; top-1
        # agreement says little about a network one epoch from its initialization)
        assert row["mean_abs_diff"] < 0.02, row
        metadata = read_metadata(str(tmp_path / "runs" / "run" / file_name))  # labels for other runtimes
        assert metadata["labels"] == (tmp_path / "runs" / "run" / "labels.txt").read_text().split()
    assert rows["model_pruned_int8.tflite"]["sparsity"] >= least_sparsity
    for file_name in ("model_qat_int8.tflite", "model_qat_tfmot_int8.tflite"):
        assert rows[file_name]["sparsity"] < 0.05
        assert float_operators((tmp_path / "runs" / "run" / file_name).read_bytes()) == []  # integer-only
