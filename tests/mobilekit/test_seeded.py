"""mobilekit.seeded on synthetic per-image scores: the table's accuracy fields, the comparison rows
against an independent computation from those fields, the verdicts, and the one-line errors."""
import numpy as np
import pytest

from mobilekit import seeded
from mobilekit.paper_claims import CLAIMS
from mobilekit.seeded import (Pair, Scores, check_seeds, compare, comparisons, latency_comparison, load_split,
                              statistics, train_seeds)
from models.data import load_digits_data


def _scores(accuracies, images=400, seed=0):
    """A ``Scores`` with one model per label, each seed's correctness drawn at the given accuracy."""
    rng = np.random.default_rng(seed)
    scores = Scores()
    for label, per_seed in accuracies.items():
        for accuracy in per_seed:
            scores.add(label, rng.random(images) < accuracy)
    return scores


def test_summary_is_each_seeds_accuracy_and_their_mean_and_sample_std():
    scores = _scores({"a": (0.6, 0.7, 0.8)})
    summary = scores.summary("a")
    np.testing.assert_allclose(summary["accuracies"], scores.matrix("a").mean(axis=1))
    assert summary["accuracy_mean"] == pytest.approx(np.mean(summary["accuracies"]))
    assert summary["accuracy_std"] == pytest.approx(np.std(summary["accuracies"], ddof=1))
    assert scores.matrix("a").shape == (3, 400) and "a" in scores and "b" not in scores
    assert Scores.summary(_scores({"one": (0.5,)}), "one")["accuracy_std"] == 0.0


@pytest.mark.parametrize("method, baseline, claim", [
    ((0.9, 0.92, 0.88), (0.6, 0.62, 0.58), "threshnet_error"),  # far better: reproduced
    ((0.5, 0.52, 0.48), (0.8, 0.82, 0.78), "threshnet_error"),  # far worse: not reproduced
    ((0.7, 0.72, 0.68), (0.7, 0.72, 0.68), "wht"),  # the same level: within a point either way
])
def test_comparison_is_the_mean_of_the_per_seed_differences_with_its_interval_and_verdict(method, baseline, claim):
    scores = _scores({"m": method, "b": baseline})
    row = compare(Pair("m", "b", claim), scores)
    per_seed = np.subtract(scores.summary("m")["accuracies"], scores.summary("b")["accuracies"])
    assert row["difference_points"] == pytest.approx(100 * per_seed.mean())
    assert row["low_points"] <= row["difference_points"] <= row["high_points"]
    assert (row["seeds"], row["test_images"]) == (3, 400)
    test = CLAIMS[claim].claim
    assert row["verdict"] == test.verdict(row["low_points"] / 100, row["high_points"] / 100)
    assert row["test"] == f"difference {test.side} {100 * test.threshold:g} points"
    assert row["claim"] == claim and CLAIMS[claim].headline in row["headline"]


def test_clear_differences_get_clear_verdicts_and_a_tie_none():
    clear = _scores({"m": (0.9, 0.92, 0.88), "b": (0.6, 0.62, 0.58)})
    assert compare(Pair("m", "b", "threshnet_error"), clear)["verdict"] == "reproduced"
    assert compare(Pair("b", "m", "threshnet_error"), clear)["verdict"] == "not reproduced"
    tie = Scores()
    for label in ("m", "b"):  # the same answers: difference 0, interval [0, 0], not above 0
        tie.add(label, np.arange(100) % 3 == 0)
    assert compare(Pair("m", "b", "threshnet_error"), tie)["verdict"] == "inconclusive"


def test_seed_level_noise_widens_the_interval():
    """Two seeds that disagree on the sign: the interval straddles zero although each seed's
    image-level interval would not."""
    scores = _scores({"m": (0.85, 0.55), "b": (0.7, 0.7)}, images=2000)
    row = compare(Pair("m", "b", "threshnet_error"), scores)
    assert row["low_points"] < 0 < row["high_points"] and row["verdict"] == "inconclusive"


def test_pairs_without_a_claim_or_without_both_models():
    scores = _scores({"m": (0.8, 0.8), "b": (0.7, 0.7)})
    rows = comparisons((Pair("m", "b"), Pair("m", "absent", "wht"), Pair("absent", "b")), scores, "a measure")
    assert [(row["method"], row["baseline"], row["measure"]) for row in rows] == [("m", "b", "a measure")]
    assert not {"claim", "verdict", "test"} & set(rows[0])
    with pytest.raises(ValueError, match="claim 'nope': expected one of wht"):
        compare(Pair("m", "b", "nope"), scores)


def test_latency_ratio_and_its_verdict():
    rng = np.random.default_rng(3)
    fast, slow = list(rng.normal(6.0, 0.2, 30)), list(rng.normal(10.0, 0.3, 30))
    row = latency_comparison(Pair("fast", "slow", "threshnet_time"), fast, slow, "fp32 latency")
    assert row["ratio"] == pytest.approx(np.median(fast) / np.median(slow))
    assert row["low"] <= row["ratio"] <= row["high"] < 1 and row["verdict"] == "reproduced"
    assert row["test"] == "ratio below 1x" and row["runs"] == 30
    assert latency_comparison(Pair("slow", "fast", "threshnet_time"), slow, fast, "")["verdict"] == "not reproduced"
    assert "verdict" not in latency_comparison(Pair("slow", "fast"), slow, fast, "")


def test_train_seeds_scores_every_seed_in_order_and_returns_the_first_seeds_models(monkeypatch):
    """Models here are arrays of answers: the fake scorer compares them with the split's labels."""
    labels = np.arange(10) % 2
    monkeypatch.setattr(seeded, "correct_predictions", lambda model, split: model == split[1])
    answers = {0: labels, 1: 1 - labels, 2: labels}  # seed 1 gets everything wrong
    calls, messages = [], []

    def train(seed):
        calls.append(seed)
        return {"net": answers[seed], "zero": np.zeros(10, int)}

    scores = Scores()
    first = train_seeds((0, 1, 2), train, (None, labels), scores, messages.append)
    assert calls == [0, 1, 2] and first["net"] is answers[0]
    assert scores.summary("net")["accuracies"] == [1.0, 0.0, 1.0] and scores.summary("zero")["accuracies"] == [0.5] * 3
    assert messages[:2] == ["net, seed 0: test accuracy 1.0000", "zero, seed 0: test accuracy 0.5000"]


def test_scores_of_another_test_set_are_refused():
    scores = _scores({"a": (0.5,)})
    with pytest.raises(ValueError, match="b: scores of 10 test images, expected 400"):
        scores.add("b", np.ones(10))


@pytest.mark.parametrize("seeds, message", [((), "seeds: expected at least one training seed"),
                                            ((0, 0), r"seeds \[0, 0\]: expected distinct non-negative integers"),
                                            ((-1,), "expected distinct non-negative integers")])
def test_bad_seeds_are_one_line_errors(seeds, message):
    with pytest.raises(ValueError, match=message):
        check_seeds(seeds)


def test_seeds_and_split():
    assert check_seeds([2, np.int64(0)]) == (2, 0)
    split, digits = load_split("digits", 8), load_digits_data(8, seed=0)
    np.testing.assert_array_equal(split.test.labels, digits.test.labels)
    with pytest.raises(ValueError, match="data 'nothing' is neither a built-in data set"):
        load_split("nothing", 8)


def test_statistics_section_says_what_was_compared():
    section = statistics((0, 1), 270, "the TFLite files")
    assert section["seeds"] == [0, 1] and section["test_images"] == 270 and section["split_seed"] == 0
    assert section["comparisons"].startswith("of the TFLite files") and "95%" in section["comparisons"]
