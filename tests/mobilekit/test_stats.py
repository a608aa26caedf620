"""mobilekit.stats against independent computations: normal-theory intervals, a brute-force
two-level bootstrap, and the verdict table written out."""
import numpy as np
import pytest

from mobilekit.stats import (INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, Claim, mean_std, paired_interval,
                             ratio_interval)


def test_mean_std_uses_bessels_correction():
    assert mean_std([0.8, 0.9, 1.0]) == pytest.approx({"mean": 0.9, "std": 0.1, "n": 3})
    assert mean_std([0.5]) == {"mean": 0.5, "std": 0.0, "n": 1}
    with pytest.raises(ValueError, match="at least one"):
        mean_std([])


def test_one_seed_interval_matches_the_normal_approximation():
    rng = np.random.default_rng(1)
    images = 5000
    baseline = rng.random(images) < 0.80
    method = np.where(rng.random(images) < 0.1, ~baseline, baseline)  # 10% of the answers flipped
    result = paired_interval(method, baseline)
    difference = method.astype(float) - baseline
    half_width = 1.96 * difference.std(ddof=1) / np.sqrt(images)
    assert result["difference"] == pytest.approx(difference.mean())
    assert result["low"] == pytest.approx(difference.mean() - half_width, abs=0.15 * half_width)
    assert result["high"] == pytest.approx(difference.mean() + half_width, abs=0.15 * half_width)
    assert (result["seeds"], result["images"], result["confidence"]) == (1, images, 0.95)


def test_seed_level_resampling_matches_a_brute_force_bootstrap():
    rng = np.random.default_rng(2)
    seeds, images, rounds = 3, 400, 3000
    baseline = rng.random((seeds, images)) < 0.7
    # seed 2's method is much worse: the seed level must widen the interval beyond the image level
    method = rng.random((seeds, images)) < np.array([[0.75], [0.74], [0.55]])
    result = paired_interval(method, baseline, rounds=rounds, seed=3)
    difference = method.astype(float) - baseline
    draws = []
    for _ in range(rounds):
        rows = rng.integers(0, seeds, seeds)
        columns = rng.integers(0, images, images)
        draws.append(difference[rows][:, columns].mean())
    low, high = np.quantile(draws, [0.025, 0.975])
    assert result["low"] == pytest.approx(low, abs=0.015)
    assert result["high"] == pytest.approx(high, abs=0.015)
    images_only = paired_interval(method.reshape(1, -1), baseline.reshape(1, -1))
    assert result["high"] - result["low"] > 2 * (images_only["high"] - images_only["low"])


def test_intervals_are_deterministic_and_checked():
    rng = np.random.default_rng(4)
    a, b = rng.random((3, 100)) < 0.5, rng.random((3, 100)) < 0.5
    assert paired_interval(a, b) == paired_interval(a, b)
    with pytest.raises(ValueError, match="same non-empty"):
        paired_interval(a, b[:, :50])


def test_ratio_interval_covers_the_true_ratio_and_excludes_one_for_a_clear_speedup():
    rng = np.random.default_rng(5)
    fast, slow = rng.normal(6.0, 0.3, 60), rng.normal(10.0, 0.5, 60)
    result = ratio_interval(fast, slow)
    assert result["low"] < 0.6 < result["high"] < 1.0
    assert result["ratio"] == pytest.approx(np.median(fast) / np.median(slow))


@pytest.mark.parametrize("side, low, high, expected", [
    ("above", 0.01, 0.03, REPRODUCED), ("above", -0.03, -0.01, NOT_REPRODUCED), ("above", -0.01, 0.01, INCONCLUSIVE),
    ("below", 0.5, 0.8, REPRODUCED), ("below", 1.1, 1.3, NOT_REPRODUCED), ("below", 0.9, 1.1, INCONCLUSIVE),
])
def test_verdicts(side, low, high, expected):
    threshold = 0.0 if side == "above" else 1.0
    assert Claim(side, threshold).verdict(low, high) == expected


def test_bad_claims_are_refused():
    with pytest.raises(ValueError, match="expected 'above' or 'below'"):
        Claim("beyond", 0).verdict(0, 1)
    with pytest.raises(ValueError, match="low end above"):
        Claim("above", 0).verdict(1, 0)
