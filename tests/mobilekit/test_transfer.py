"""``mobilekit transfer``: the class and share selections, and the job end to end."""
import json

import numpy as np
import pytest

from mobilekit.cli import main
from mobilekit.paper_claims import CLAIMS
from mobilekit.transfer import subset, with_classes
from models.data import load_digits_data


def test_with_classes_keeps_and_relabels_the_chosen_classes_in_every_split():
    data = load_digits_data(8)
    upper = with_classes(data, (7, 5))
    assert upper.class_names == ("7", "5")
    for split, original in zip(upper[:3], data[:3]):
        np.testing.assert_array_equal(np.bincount(split.labels), [np.sum(original.labels == 7),
                                                                  np.sum(original.labels == 5)])
        np.testing.assert_array_equal(split.images, original.images[np.isin(original.labels, (5, 7))])
    assert with_classes(data, ()) is data
    for bad in ((3,), (1, 10), (2, 2)):
        with pytest.raises(ValueError, match="at least two distinct class indices below 10"):
            with_classes(data, bad)


def test_subset_keeps_the_same_share_of_every_class_and_depends_on_the_seed():
    data = with_classes(load_digits_data(8), (0, 1, 2))
    small = subset(data, 0.1, seed=0)
    counts, full = np.bincount(small.train.labels), np.bincount(data.train.labels)
    np.testing.assert_array_equal(counts, np.round(0.1 * full))
    assert small.validation is data.validation and small.test is data.test
    assert not np.array_equal(subset(data, 0.1, seed=1).train.images, small.train.images)


@pytest.mark.e2e
def test_transfer_table_from_the_cli(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["transfer", "--name", "t", "--pretrain-epochs", "2", "--epochs", "2", "--freeze-epochs", "1",
                 "--seeds", "1", "--image-size", "32", "--source-classes", "0", "1", "2", "--target-classes",
                 "3", "4"]) == 0
    report = json.loads((tmp_path / "runs" / "t" / "report.json").read_text())
    rows = {row["start"]: row for row in report["transfer"]}
    assert set(rows) == {"scratch", "fine_tuned"}
    assert rows["scratch"]["layers_loaded"] == "none"
    loaded, total = map(int, rows["fine_tuned"]["layers_loaded"].split(" of "))
    assert loaded == total - 1  # every layer but the 2-class classifier
    counts = np.bincount(load_digits_data(32).train.labels)[[3, 4]]
    assert rows["fine_tuned"]["train_images"] == rows["scratch"]["train_images"] == sum(np.round(0.1 * counts))
    assert report["config"]["target_classes"] == "3, 4"
    assert (tmp_path / "runs" / "t" / "pretrain" / "mobilenet_v2_digits.weights.h5").is_file()
    assert "fine_tuned" in capsys.readouterr().out
    # one accuracy per seed on the target's test images; the claim's row from the two rows
    assert all(row["accuracies"] == [row["accuracy_mean"]] and row["accuracy_std"] == 0.0 for row in rows.values())
    [comparison] = report["comparisons"]
    assert (comparison["method"], comparison["baseline"], comparison["claim"]) == ("fine_tuned", "scratch",
                                                                                   "fine_tuning")
    difference = 100 * (rows["fine_tuned"]["accuracies"][0] - rows["scratch"]["accuracies"][0])
    assert comparison["difference_points"] == pytest.approx(difference)
    assert comparison["low_points"] <= difference <= comparison["high_points"]
    assert comparison["test_images"] == report["config"]["test_images"] == np.sum(
        np.isin(load_digits_data(32).test.labels, (3, 4)))
    assert comparison["verdict"] == CLAIMS["fine_tuning"].claim.verdict(comparison["low_points"] / 100,
                                                                        comparison["high_points"] / 100)
