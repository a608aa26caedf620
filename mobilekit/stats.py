"""Statistics of the experiment jobs: mean +- std over seeds, 95% intervals of differences, and
the verdict an interval gives a claim.

A difference between a method and its baseline is measured paired: both trained from the same
seeds, scored on the same test images. Its interval comes from a two-level bootstrap (Davison &
Hinkley, "Bootstrap Methods and their Application", 1997, sec. 3.8): each round redraws the
seeds with replacement and the test images with replacement (the same images for both models),
and takes the mean difference; the interval is the middle ``confidence`` of those means. So it
covers both sources of noise an experiment has: which seed trained the models (oneDNN training
is not bit-reproducible either) and which images happened to be held out. One seed leaves the
image level only, which is why the jobs default to three.

A claim is a side of a threshold (``Claim``): "the method is more accurate" is ``above 0``,
"negligible accuracy loss" is ``above -NEGLIGIBLE_LOSS``, "faster" is a latency ratio
``below 1``. An interval wholly on the claimed side reproduces the claim, wholly on the other
side does not, and one that straddles the threshold is inconclusive: never a verdict from one
run's point estimate.
"""
from typing import NamedTuple

import numpy as np

CONFIDENCE = 0.95
BOOTSTRAP_ROUNDS = 4000
NEGLIGIBLE_LOSS = 0.01  # accuracy (1 point): what the kit calls a negligible loss in a claim's test

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = "reproduced", "not reproduced", "inconclusive"


def mean_std(values):
    """``{"mean", "std", "n"}`` of ``values``; ``std`` with Bessel's correction (0 for one value)."""
    values = np.asarray(values, np.float64)
    if values.size == 0:
        raise ValueError("mean_std needs at least one value")
    std = float(np.std(values, ddof=1)) if values.size > 1 else 0.0
    return {"mean": float(np.mean(values)), "std": std, "n": int(values.size)}


def _interval(draws, confidence):
    tail = (1 - confidence) / 2
    low, high = np.quantile(draws, [tail, 1 - tail])
    return float(low), float(high)


def paired_interval(method, baseline, confidence=CONFIDENCE, rounds=BOOTSTRAP_ROUNDS, seed=0):
    """The mean of ``method - baseline`` and its bootstrap interval over seeds and test images.

    ``method``, ``baseline``: per-image scores (1 = correct, 0 = wrong, or any per-image
    measure) of shape ``(seeds, images)``, row ``s`` of both from seed ``s``, column ``i`` from
    test image ``i``; a 1-D array is one seed. Returns ``{"difference", "low", "high",
    "confidence", "seeds", "images"}``.
    """
    method, baseline = np.atleast_2d(np.asarray(method, np.float64)), np.atleast_2d(np.asarray(baseline, np.float64))
    if method.shape != baseline.shape or method.size == 0:
        raise ValueError(f"paired scores need the same non-empty (seeds, images) shape, got {method.shape} and "
                         f"{baseline.shape}")
    difference = method - baseline
    seeds, images = difference.shape
    rng = np.random.default_rng(seed)
    draws = np.empty(rounds)
    for start in range(0, rounds, 500):  # image weights of 500 rounds at a time: (500, images) counts
        count = min(500, rounds - start)
        image_weights = rng.multinomial(images, np.full(images, 1 / images), size=count) / images
        seed_weights = rng.multinomial(seeds, np.full(seeds, 1 / seeds), size=count) / seeds
        draws[start:start + count] = np.sum((image_weights @ difference.T) * seed_weights, axis=1)
    low, high = _interval(draws, confidence)
    return {"difference": float(difference.mean()), "low": low, "high": high, "confidence": confidence,
            "seeds": seeds, "images": images}


def ratio_interval(method, baseline, confidence=CONFIDENCE, rounds=BOOTSTRAP_ROUNDS, seed=0):
    """The ratio of the medians of two independent samples (latencies of two files timed
    interleaved) and its bootstrap interval. Returns ``{"ratio", "low", "high", "confidence"}``."""
    method, baseline = np.asarray(method, np.float64), np.asarray(baseline, np.float64)
    if method.size == 0 or baseline.size == 0:
        raise ValueError("ratio_interval needs samples of both")
    rng = np.random.default_rng(seed)
    draws = (np.median(rng.choice(method, (rounds, method.size)), axis=1)
             / np.median(rng.choice(baseline, (rounds, baseline.size)), axis=1))
    low, high = _interval(draws, confidence)
    return {"ratio": float(np.median(method) / np.median(baseline)), "low": low, "high": high,
            "confidence": confidence}


class Claim(NamedTuple):
    """What a claim says of a measured quantity: it lies ``side`` ("above" or "below") of
    ``threshold``."""

    side: str
    threshold: float

    def verdict(self, low, high):
        """``REPRODUCED`` when the interval ``[low, high]`` lies wholly on the claimed side of the
        threshold, ``NOT_REPRODUCED`` when wholly on the other, else ``INCONCLUSIVE``."""
        if self.side not in ("above", "below"):
            raise ValueError(f"claim side {self.side!r}: expected 'above' or 'below'")
        if low > high:
            raise ValueError(f"interval [{low}, {high}] has its low end above its high end")
        above, below = low > self.threshold, high < self.threshold
        if above or below:
            return REPRODUCED if (above if self.side == "above" else below) else NOT_REPRODUCED
        return INCONCLUSIVE

    def describe(self, unit=""):
        return f"{self.side} {self.threshold:g}{unit}"
