"""``mobilekit claims``: each row's figure, interval and verdict against an independent computation
from the per-seed accuracies it reports, the table, the refusals, and a small run end to end."""
import json
import os

import numpy as np
import pytest

from mobilekit.claims import ARMS, BUDGETS, EXPERIMENTS, THRESHNET_HALF, Budget, _image_sizes, _units, claims_table, run_claims
from mobilekit.cli import main
from mobilekit.paper_claims import CLAIMS
from mobilekit.stats import Claim
from models.densenet import THRESHNET_79, threshnet

TINY = Budget(train_images=200, epochs=1, seeds=2, finetune_epochs=1, target_epochs=1, runs=3)


def test_every_experiment_names_a_claim_and_two_arms():
    for experiment in EXPERIMENTS:
        assert experiment.claim in CLAIMS and {experiment.method, experiment.baseline} <= set(ARMS)
    assert {e.claim for e in EXPERIMENTS} | {"threshnet_time"} == set(CLAIMS)
    assert all(budget.seeds >= 3 for budget in BUDGETS.values())


def test_threshnet_at_half_width_keeps_the_depth_and_quarters_the_parameters():
    assert [s.repeats for s in THRESHNET_HALF] == [s.repeats for s in THRESHNET_79]
    full = threshnet((32, 32, 3)).count_params()
    half = threshnet((32, 32, 3), stages=THRESHNET_HALF, stem=(16, 32)).count_params()
    assert 0.2 < half / full < 0.3


def test_arms_that_build_on_another_train_in_its_process_first():
    units = _units(EXPERIMENTS)
    assert ("ResNet-20", "ResNet-20-FFConv", "ResNet-20-QSFM") in [(u[0], *sorted(u[1:])) for u in units]
    assert sorted(arm for unit in units for arm in unit) == sorted({a for e in EXPERIMENTS for a in e[1:]})


def test_both_arms_of_a_claim_see_the_same_images():
    for experiment in EXPERIMENTS:
        assert ARMS[experiment.method].image_size == ARMS[experiment.baseline].image_size
    assert ARMS["MobileNetV2-0.5"].image_size == 64 and ARMS["ResNet-20"].image_size == 32


def test_each_image_size_draws_the_test_images_its_arms_need():
    # the fine-tuning arms score their 5 target classes alone: twice the images, at 64x64 only
    assert _image_sizes(["ResNet-20", "MobileNetV2-0.5"]) == {32: 5000, 64: 5000}
    assert _image_sizes(["MobileNetV2-0.5", "from scratch", "XNOR"]) == {64: 10000, 32: 5000}


def test_refusals_name_the_thing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="budget 'huge': expected one of quick, full"):
        run_claims(budget="huge")
    with pytest.raises(ValueError, match="unknown claim nope: expected some of qsfm"):
        run_claims(only=["nope"])


def _check_accuracy_row(row, seeds):
    method, baseline = np.array(row["method_accuracies"]), np.array(row["baseline_accuracies"])
    assert len(method) == len(baseline) == seeds == row["seeds"]
    assert row["difference_points"] == pytest.approx(100 * np.mean(method - baseline))
    assert row["method_accuracy_mean"] == pytest.approx(method.mean())
    assert row["method_accuracy_std"] == pytest.approx(method.std(ddof=1))
    assert row["low_points"] <= row["difference_points"] <= row["high_points"]
    _, side, threshold, unit = row["test"].split()
    verdict = Claim(side, float(threshold)).verdict(row["low_points"], row["high_points"]) \
        if max(method.mean(), baseline.mean()) >= 0.5 else "inconclusive"
    assert unit == "points" and row["verdict"] == verdict
    assert row["test_images"] == 5000


@pytest.mark.slow
def test_a_small_run_measures_each_claim_with_its_interval(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    messages = []
    rows = run_claims(name="c", budget=TINY, seed=3, only=["repconv"], progress=messages.append)
    assert [row["paper"] for row in rows] == [CLAIMS["repconv"].paper]
    _check_accuracy_row(rows[0], seeds=2)
    assert rows[0]["params_ratio"] == pytest.approx(1, abs=0.05) and rows[0]["macs_ratio"] == pytest.approx(1, abs=0.01)
    assert {m.split(":")[0] for m in messages} == {f"{arm}, seed {seed}" for arm in ("XNOR", "Rep-XNOR")
                                                   for seed in (3, 4)}
    report = json.loads((tmp_path / "runs/c/report.json").read_text())
    assert report["config"]["seeds"] == [3, 4] and report["comparisons"] == json.loads(json.dumps(rows))
    table = (tmp_path / "runs/c/claims.md").read_text().splitlines()
    assert len(table) == 2 + len(rows) and all(f"**{row['verdict']}**" in line for row, line in zip(rows, table[2:]))


def test_table_formats_points_and_ratios():
    rows = [{"paper": "P", "headline": "C", "measure": "M", "difference_points": 1.234, "low_points": -0.5,
             "high_points": 2.9, "test": "difference above 0 points", "scale": "S", "verdict": "inconclusive",
             "note": "baseline below 50% top-1"},
            {"paper": "Q", "headline": "D", "measure": "N", "ratio": 0.61, "low": 0.58, "high": 0.64,
             "test": "ratio below 1x", "scale": "T", "verdict": "reproduced"}]
    lines = claims_table(rows).splitlines()
    assert lines[2] == ("| P | C | M: +1.23 (-0.50, +2.90) points | difference above 0 points | S | **inconclusive** "
                        "(baseline below 50% top-1) |")
    assert lines[3] == "| Q | D | N: 0.61x (0.58, 0.64) | ratio below 1x | T | **reproduced** |"


@pytest.mark.e2e
def test_cli_times_threshnet_against_densenet(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["claims", "--budget", "quick", "--only", "threshnet_time", "--name", "t"]) == 0
    row = json.loads((tmp_path / "runs/t/report.json").read_text())["latency_comparisons"][0]
    assert row["low"] <= row["ratio"] <= row["high"] and row["runs"] == BUDGETS["quick"].runs
    assert row["verdict"] == Claim("below", 1.0).verdict(row["low"], row["high"])
    assert os.path.isfile(tmp_path / "runs/t/ThreshNet-79_fp32.tflite")
    assert f"threshnet_time: {row['verdict']}" in capsys.readouterr().out
