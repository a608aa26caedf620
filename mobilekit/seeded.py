"""What the experiment jobs (zoo, binary, optimize, qsfm, transfer) share: training seeds, one fixed
split, per-image scores and the comparison rows built from them.

Each job trains every model of its table once per training seed (``seeds``, default 0, 1, 2) on
one split of its data, drawn with ``SPLIT_SEED`` whatever the training seed: every model of every
seed is scored on the same test images, in the same order. ``Scores`` keeps each model's per-image
correctness (1 right, 0 wrong) per seed. A table row reports the per-seed accuracies and their mean
+- std (``stats.mean_std``, Bessel's std): the std says how much one training run varies, not how
well the mean is known. A ``Pair`` (method, baseline, and the key of ``paper_claims.CLAIMS`` it
tests, if any) becomes a comparison row: the difference of the two models' accuracy in points,
which is the mean over seeds of the per-seed accuracy differences, and its 95% interval from a
bootstrap over seeds and test images (``stats.paired_interval``); a claim's row adds the claim's
test and the verdict its interval gives (``stats.Claim.verdict``), never one from a point estimate.
"""
from typing import NamedTuple

import numpy as np

from mobilekit.paper_claims import CLAIMS
from mobilekit.stats import CONFIDENCE, mean_std, paired_interval, ratio_interval
from models.data import load_dataset
from models.train import correct_predictions

SPLIT_SEED = 0  # the split every training seed shares
ACCURACY_MEASURE = "top-1 accuracy of the Keras models (points)"


def check_seeds(seeds):
    """``seeds`` as a tuple of distinct non-negative ints, or a one-line error."""
    seeds = tuple(seeds)
    if not seeds:
        raise ValueError("seeds: expected at least one training seed, e.g. (0, 1, 2), got none")
    if not all(isinstance(seed, (int, np.integer)) and seed >= 0 for seed in seeds) or len(set(seeds)) < len(seeds):
        raise ValueError(f"seeds {list(seeds)}: expected distinct non-negative integers")
    return tuple(int(seed) for seed in seeds)


def load_split(data, image_size):
    """``data`` (a ``models.data.load_dataset`` name, e.g. "digits" or "patterns", or an image
    folder) at ``image_size``, split with ``SPLIT_SEED``."""
    return load_dataset(data, image_size, seed=SPLIT_SEED)


class Pair(NamedTuple):
    """A comparison of a job's table: ``method`` against ``baseline`` (labels of its models) and
    the key of ``paper_claims.CLAIMS`` the difference tests (None: the difference alone)."""

    method: str
    baseline: str
    claim: str = None


class Scores:
    """Per-image scores of each model of a table: one array per training seed, in seed order, every
    array over the same test images in the same order (so two models pair image by image)."""

    def __init__(self):
        self._scores = {}

    def __contains__(self, label):
        return label in self._scores

    def add(self, label, correct):
        """Append ``label``'s per-image correctness (bools or 0/1) for its next seed."""
        correct = np.asarray(correct, np.float64).reshape(-1)
        sizes = {len(arrays[0]) for arrays in self._scores.values()}
        if sizes and sizes != {correct.size}:
            raise ValueError(f"{label}: scores of {correct.size} test images, expected {sizes.pop()} like the "
                             f"other models'")
        self._scores.setdefault(label, []).append(correct)

    def record(self, label, model, split):
        """Score Keras classifier ``model`` on each image of ``split`` as ``label``'s next seed; return
        its accuracy."""
        correct = correct_predictions(model, split)
        self.add(label, correct)
        return float(np.mean(correct))

    def matrix(self, label):
        """``label``'s scores as a ``(seeds, images)`` array."""
        return np.stack(self._scores[label])

    def accuracies(self, label):
        """``label``'s accuracy per seed."""
        return [float(np.mean(correct)) for correct in self._scores[label]]

    def summary(self, label):
        """A table row's accuracy fields: ``accuracies`` (one per seed), ``accuracy_mean`` and
        ``accuracy_std`` (over seeds, Bessel's correction; 0 for one seed)."""
        accuracies = self.accuracies(label)
        spread = mean_std(accuracies)
        return {"accuracies": accuracies, "accuracy_mean": spread["mean"], "accuracy_std": spread["std"]}


def train_seeds(seeds, train, split, scores, progress=print):
    """For each seed, ``train(seed)`` -> ``{label: trained Keras model}``; record each model's
    per-image correctness on ``split`` in ``scores``. Returns the first seed's models: the ones a
    job exports, costs and times (what does not depend on the seed is measured once)."""
    first = None
    for seed in seeds:
        models = train(seed)
        for label, model in models.items():
            progress(f"{label}, seed {seed}: test accuracy {scores.record(label, model, split):.4f}")
        if first is None:
            first = models
    return first


def _claim_fields(key, figure, low, high, unit, scale):
    """The claim columns of a comparison: its key, the paper's headline, the test (side of the
    threshold, in the row's unit) and the verdict of the interval ``[low, high]`` (unscaled)."""
    if key not in CLAIMS:
        raise ValueError(f"claim {key!r}: expected one of {', '.join(CLAIMS)}")
    paper = CLAIMS[key]
    return {"claim": key, "headline": f"{paper.paper}: {paper.headline}",
            "test": f"{figure} {paper.claim.side} {paper.claim.threshold * scale:g}{unit}",
            "verdict": paper.claim.verdict(low, high)}


def compare(pair, scores, measure=ACCURACY_MEASURE):
    """The comparison row of ``pair``: ``difference_points`` (method - baseline accuracy, the mean
    over seeds of the per-seed differences), ``low_points`` / ``high_points`` (its 95% interval
    over seeds and test images), ``seeds``, ``test_images``, and for a claim its test and verdict."""
    interval = paired_interval(scores.matrix(pair.method), scores.matrix(pair.baseline))
    row = {"method": pair.method, "baseline": pair.baseline, "measure": measure,
           "difference_points": 100 * interval["difference"], "low_points": 100 * interval["low"],
           "high_points": 100 * interval["high"], "seeds": interval["seeds"], "test_images": interval["images"]}
    if pair.claim:
        row.update(_claim_fields(pair.claim, "difference", interval["low"], interval["high"], " points", 100))
    return row


def comparisons(pairs, scores, measure=ACCURACY_MEASURE):
    """The comparison rows of the ``pairs`` whose method and baseline were both run, in order."""
    return [compare(pair, scores, measure) for pair in pairs if pair.method in scores and pair.baseline in scores]


def latency_comparison(pair, method_ms, baseline_ms, measure):
    """``pair``'s latency ratio: median of ``method_ms`` over median of ``baseline_ms`` (each
    file's timed runs) with its 95% bootstrap interval (``stats.ratio_interval``), and for a claim
    its test and verdict."""
    interval = ratio_interval(method_ms, baseline_ms)
    row = {"method": pair.method, "baseline": pair.baseline, "measure": measure, "ratio": interval["ratio"],
           "low": interval["low"], "high": interval["high"], "runs": min(len(method_ms), len(baseline_ms))}
    if pair.claim:
        row.update(_claim_fields(pair.claim, "ratio", interval["low"], interval["high"], "x", 1))
    return row


def statistics(seeds, test_images, compared="the Keras models"):
    """A report's ``statistics`` section: what its accuracies and comparisons mean."""
    return {"seeds": list(seeds), "split_seed": SPLIT_SEED, "test_images": test_images,
            "accuracy": "mean +- std over the seeds (Bessel's std: how much one training run varies)",
            "comparisons": f"of {compared}: method - baseline accuracy in points, the mean over seeds of the "
                           f"per-seed differences, with its {CONFIDENCE:.0%} interval from a bootstrap over seeds "
                           f"and test images (mobilekit.stats.paired_interval)",
            "verdict": "reproduced when the interval lies wholly on the claim's side of its threshold, not reproduced "
                       "when wholly on the other, else inconclusive"}
