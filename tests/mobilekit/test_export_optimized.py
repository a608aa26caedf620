"""``mobilekit export NAME --qat --prune`` for runs of builders without a width multiplier (ResNet-20)
and with one (GhostNet): the tf_keras process rebuilds each run from its config exactly as it
was trained (it passed ``alpha`` to every builder, and ResNet-20's failed)."""
import json

import pytest

from mobilekit.cli import main
from mobilekit.jobs import train


@pytest.mark.e2e
@pytest.mark.parametrize("arch, options", [("resnet20", {}), ("ghostnet", {"alpha": 0.5})])
def test_qat_and_pruned_export_of_a_trained_run(arch, options, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    train("classify", name="run", arch=arch, image_size=32, epochs=1, progress=lambda _: None, **options)
    assert main(["export", "run", "--qat", "--qat-epochs", "1", "--prune", "0.5"]) == 0
    report = json.loads((tmp_path / "runs" / "run" / "report.json").read_text())
    rows = {row["file"]: row for row in report["export_optimized"]}
    assert set(rows) == {"model_qat_int8.tflite", "model_pruned_int8.tflite"}
    for file_name, row in rows.items():
        assert (tmp_path / "runs" / "run" / file_name).stat().st_size == row["size_bytes"]
        assert row["top1_agreement"] >= 0.9, row
    assert rows["model_pruned_int8.tflite"]["sparsity"] >= 0.45
    assert rows["model_qat_int8.tflite"]["sparsity"] < 0.2
