"""``mobilekit claims``: the seed papers' headline claims measured by the kit, one table.

Each claim of ``mobilekit.paper_claims.CLAIMS`` is an experiment here: a method and its baseline
(``ARMS``) trained from the same seeds on the procedural ``patterns`` set (``models.patterns``),
scored on the same held-out images, and their top-1 difference given with a 95% interval over
seeds and images (``mobilekit.stats.paired_interval``); ThreshNet's latency claim is a ratio of
TFLite medians timed interleaved (``mobilekit.stats.ratio_interval``). Each row's verdict is the
claim's test of its interval: reproduced, not reproduced or inconclusive, never one run's point.

Scale: 10 classes (the fine-tuning claim: 5 classes pretrained, 5 others fine-tuned from a small
share), the CIFAR networks (ResNet-20, ResNet-8, ThreshNet/HarDNet) at 32x32 and the ImageNet
ones (MobileNets, GhostNet), whose five stride-2 stages leave a 1x1 map of a 32x32 image and
learn the patterns little in a short run, at 64x64 (``MOBILE_IMAGE_SIZE``); trained with the
kit's recipe for the budget's epochs (``BUDGETS``): far below the papers' ImageNet/CIFAR
schedules, which the table says per row. A pair of which neither model has learnt the task
(under ``LEARNT`` top-1) leaves its row inconclusive.

Each (claim's arms, seed) trains in a fresh process, ``WORKERS`` at a time: TensorFlow's tracing
slows as one process accumulates functions, and most of a short training is single-threaded
tracing that a second process overlaps. A model one claim shares with another (ResNet-20 under
FFConv and QSFM) is trained once per seed, in the same process.
"""
import multiprocessing
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Callable, NamedTuple

import numpy as np

from mobilekit.quiet_tensorflow import import_tensorflow_quietly
from mobilekit.paper_claims import CLAIMS
from mobilekit.runs import run_dir, update_report
from mobilekit.seeded import Pair, Scores, compare, latency_comparison
from mobilekit.stats import INCONCLUSIVE
from mobilekit.transfer import network, subset, with_classes
from mobilekit.zoo import FINETUNE_LEARNING_RATE
from models.binary_nets import RESNET_8, binary_resnet
from models.classification_data import ClassificationData
from models.densenet import THRESHNET_79, threshnet
from models.files import atomic_output, write_bytes, write_text
from models.low_rank import factorize
from models.patterns import PATTERN_CLASSES, load_patterns_data
from models.profile import profile
from models.registry import build_model
from models.train import correct_predictions, train_classifier, with_preprocessing
from tflite.bench import benchmark
from tflite.converter import convert
from tflite.qsfm import qsfm_prune


class Budget(NamedTuple):
    """How much a ``claims`` run trains: ``train_images`` of patterns for ``epochs`` per model,
    ``seeds`` per arm, ``finetune_epochs`` after FFConv's factorization, the fine-tuning claim's
    ``target_epochs`` on its small target set, and ``runs`` timed invocations per latency."""

    train_images: int
    epochs: int
    seeds: int
    finetune_epochs: int
    target_epochs: int
    runs: int


BUDGETS = {"quick": Budget(train_images=1000, epochs=1, seeds=3, finetune_epochs=1, target_epochs=8, runs=30),
           "full": Budget(train_images=5000, epochs=4, seeds=3, finetune_epochs=2, target_epochs=15, runs=60)}
IMAGE_SIZE, MOBILE_IMAGE_SIZE, CLASSES, BATCH_SIZE = 32, 64, 10, 64
SPLITS = ("train", "validation", "test")
WORKERS = 2  # training processes at a time: the 2 cores the budgets' minutes are measured on
TEST_IMAGES = 5000
LEARNT = 0.5  # least top-1 of a pair's better model for a verdict: near chance, any claim is noise
CALIBRATION_IMAGES = 256  # QSFM's feature-map statistics
QSFM_RATIO = 0.3  # share of each prunable group's filters removed
FFCONV_RANK = 0.5  # FFConv rank as a share of each convolution's output channels
SOURCE_CLASSES, TARGET_CLASSES, TARGET_FRACTION = (0, 1, 2, 3, 4), (5, 6, 7, 8, 9), 0.05
# ThreshNet-79's table at half width (growth and channels halved): the paper's depth and
# thresholds, trainable here in minutes. Its latency claim is timed on the full table.
THRESHNET_HALF = tuple(stage._replace(growth=stage.growth // 2, channels=stage.channels // 2)
                       for stage in THRESHNET_79)
THRESHNET_HALF_STEM = (16, 32)


class Arm(NamedTuple):
    """A model of the experiments: ``make(run, data)`` returns it trained from ``run.seed`` on
    ``data`` (patterns at ``image_size``; pixels in, probabilities out) with the test split it is
    scored on; ``scale`` says what it is; ``seconds``: roughly what one seed of it takes at the full
    budget (two processes on 2 cores, scaled from measured runs), used only to order the work longest
    first; ``test_images``: the patterns test split it needs (its held-out images are drawn from them)."""

    make: Callable
    scale: str
    seconds: float
    image_size: int = IMAGE_SIZE
    test_images: int = TEST_IMAGES


def _held_out(data):
    """The test images every claim but fine-tuning scores on."""
    return data.test.select(np.arange(TEST_IMAGES))


def _network(config):
    return lambda run, data: (run.train(build_model({"image_size": data.train.images.shape[1], "classes": CLASSES,
                                                     **config}), data), _held_out(data))


def _binary(variant):
    def make(run, data):
        backbone = binary_resnet(data.train.images.shape[1:], classes=CLASSES, stages=RESNET_8, stem="strided",
                                 variant=variant)
        return run.train(with_preprocessing(backbone), data), _held_out(data)
    return make


def _qsfm(run, data):
    model, test = run.model("ResNet-20")
    return qsfm_prune(model, data.train.take(CALIBRATION_IMAGES), ratio=QSFM_RATIO)[0], test


def _ffconv(run, data):
    model, test = run.model("ResNet-20")
    factorized = with_preprocessing(factorize(model.layers[-1], FFCONV_RANK)[0])
    return run.train(factorized, data, epochs=run.budget.finetune_epochs, learning_rate=FINETUNE_LEARNING_RATE), test


def _transfer(pretrained):
    """A MobileNetV2-0.35 on the target's small share: from scratch, or from the weights it learnt
    on the source classes (with the kit's two-phase fine-tuning, as ``train --weights`` does)."""
    def make(run, data):
        config = {"arch": "mobilenet_v2", "alpha": 0.35, "image_size": data.train.images.shape[1]}
        source, target = (with_classes(data, classes) for classes in (SOURCE_CLASSES, TARGET_CLASSES))
        extra, freeze_epochs = {}, 0
        if pretrained:
            model = run.train(build_model({**config, "classes": len(SOURCE_CLASSES)}), source)
            extra["weights"] = os.path.join(run.folder, "source.weights.h5")
            with atomic_output(extra["weights"]) as tmp:
                network(model).save_weights(tmp)
            freeze_epochs = run.budget.target_epochs // 3
        target = subset(target, TARGET_FRACTION, run.seed)
        model = build_model({**config, "classes": len(TARGET_CLASSES), **extra})
        return run.train(model, target, epochs=run.budget.target_epochs, freeze_epochs=freeze_epochs,
                         batch_size=16), target.test
    return make


ARMS = {
    "MobileNetV2-0.5": Arm(_network({"arch": "mobilenet_v2", "alpha": 0.5}), "MobileNetV2 0.5", 150,
                           MOBILE_IMAGE_SIZE),
    "MobileNetV2-WHT-0.5": Arm(_network({"arch": "mobilenet_v2_wht", "alpha": 0.5}),
                               "MobileNetV2 0.5, 1x1 convolutions as 1D-WHT layers", 250, MOBILE_IMAGE_SIZE),
    "ThreshNet-79-half": Arm(_network({"arch": "threshnet", "stages": THRESHNET_HALF, "stem": THRESHNET_HALF_STEM}),
                             "ThreshNet-79 at half width", 310),
    "HarDNet-79-half": Arm(_network({"arch": "threshnet", "stages": THRESHNET_HALF, "stem": THRESHNET_HALF_STEM,
                                     "threshold": 0}), "HarDNet-79 at half width", 170),
    "GhostNet-0.5": Arm(_network({"arch": "ghostnet", "alpha": 0.5}), "GhostNet 0.5x", 260, MOBILE_IMAGE_SIZE),
    "MobileNetV3-Small-0.75": Arm(_network({"arch": "mobilenet_v3_small", "alpha": 0.75}), "MobileNetV3-Small 0.75",
                                  125, MOBILE_IMAGE_SIZE),
    "ResNet-20": Arm(_network({"arch": "resnet20"}), "CIFAR ResNet-20", 270),
    "ResNet-20-FFConv": Arm(_ffconv, f"ResNet-20, d x d convolutions as rank-{FFCONV_RANK} FFConv, fine-tuned", 175),
    "ResNet-20-QSFM": Arm(_qsfm, f"ResNet-20, {QSFM_RATIO:.0%} of each filter group removed by QSFM", 30),
    "XNOR": Arm(_binary("xnor"), "XNOR ResNet-8", 50),
    "Rep-XNOR": Arm(_binary("rep_xnor"), "Rep-XNOR ResNet-8 (beta=2)", 65),
    # twice the test images: the 5 target classes alone keep TEST_IMAGES held out
    "fine-tuned": Arm(_transfer(pretrained=True), "MobileNetV2 0.35, fine-tuned", 200, MOBILE_IMAGE_SIZE,
                      2 * TEST_IMAGES),
    "from scratch": Arm(_transfer(pretrained=False), "MobileNetV2 0.35, from scratch", 80, MOBILE_IMAGE_SIZE,
                        2 * TEST_IMAGES),
}


class Experiment(NamedTuple):
    """A claim of ``CLAIMS`` measured as ``method`` against ``baseline`` (keys of ``ARMS``)."""

    claim: str
    method: str
    baseline: str


EXPERIMENTS = (
    Experiment("qsfm", "ResNet-20-QSFM", "ResNet-20"),
    Experiment("ffconv", "ResNet-20-FFConv", "ResNet-20"),
    Experiment("wht", "MobileNetV2-WHT-0.5", "MobileNetV2-0.5"),
    Experiment("repconv", "Rep-XNOR", "XNOR"),
    Experiment("threshnet_error", "ThreshNet-79-half", "HarDNet-79-half"),
    Experiment("ghostnet", "GhostNet-0.5", "MobileNetV3-Small-0.75"),
    Experiment("fine_tuning", "fine-tuned", "from scratch"),
)
# ThreshNet's latency claim: the paper's ThreshNet-79 and the DenseNet-79 of its table (every
# block dense) at CIFAR size; weights do not change a float file's latency, so untrained.
LATENCY_THRESHOLDS = {"ThreshNet-79": 3, "DenseNet-79": len(THRESHNET_79)}


class SeedRun:
    """One seed's arms in one process: the data at each image size, the budget, and the models
    trained so far (an arm another builds on, such as ResNet-20 under FFConv and QSFM, is trained once)."""

    def __init__(self, datasets, budget, folder, seed):
        self.datasets, self.budget, self.folder, self.seed = datasets, budget, folder, seed
        self.models = {}

    def train(self, model, data, epochs=None, learning_rate=3e-3, freeze_epochs=0, batch_size=BATCH_SIZE):
        epochs = epochs or self.budget.epochs
        model, _ = train_classifier(model, data, os.path.join(self.folder, "train"), epochs=epochs,
                                    batch_size=batch_size, learning_rate=learning_rate, patience=epochs,
                                    seed=self.seed, freeze_epochs=freeze_epochs, verbose=0)
        return model

    def model(self, arm):
        """``(model, test split)`` of ``arm`` trained from this run's seed (once)."""
        if arm not in self.models:
            self.models[arm] = ARMS[arm].make(self, self.datasets[ARMS[arm].image_size])
        return self.models[arm]


def _image_sizes(arms):
    """``{image size: test images}`` of the data ``arms`` train on (one file per size, with the
    most test images an arm of that size needs; the others score its first ones)."""
    sizes = {}
    for arm in arms:
        sizes[ARMS[arm].image_size] = max(sizes.get(ARMS[arm].image_size, 0), ARMS[arm].test_images)
    return sizes


def _data_file(folder, image_size):
    return os.path.join(folder, f"patterns{image_size}.npz")


def _score_unit(arms, seed, budget, data_folder, folder, with_costs):
    """In a worker process: train ``arms`` from ``seed``; return ``{arm: (per-image correctness,
    {params, macs} when ``with_costs``, seconds)}``."""
    datasets = {}
    for size in _image_sizes(arms):
        with np.load(_data_file(data_folder, size)) as arrays:
            datasets[size] = ClassificationData(*((arrays[f"{split}_images"], arrays[f"{split}_labels"])
                                                  for split in SPLITS), PATTERN_CLASSES)
    run, results = SeedRun(datasets, budget, os.path.join(folder, f"seed{seed}", arms[0]), seed), {}
    for arm in arms:
        start = time.perf_counter()
        model, test = run.model(arm)
        costs = {key: value for key, value in profile(model).items() if key in ("params", "macs")} if with_costs else {}
        results[arm] = correct_predictions(model, test), costs, time.perf_counter() - start
    return results


def _units(experiments):
    """The experiments' arms in groups that train in one process: an experiment's two arms, merged
    with another experiment's when they share one (ResNet-20 under FFConv and QSFM)."""
    units = []
    for experiment in experiments:
        arms = {experiment.method, experiment.baseline}
        joined = [unit for unit in units if unit & arms]
        units = [unit for unit in units if not unit & arms] + [arms.union(*joined)]
    # each unit's shared arm first, so the arms built on it find it trained
    return [tuple(sorted(unit, key=lambda arm: -sum(arm in (e.method, e.baseline) for e in experiments)))
            for unit in units]


def _unit_seconds(unit):
    """A unit's training time at the full budget, for scheduling (``Arm.seconds``)."""
    return sum(ARMS[arm].seconds for arm in unit)


def _scores(experiments, budget, seeds, folder, workers, progress):
    """Every arm's per-image correctness, per seed (``seeded.Scores``), and costs ``{arm: {params, macs}}``,
    each (unit, seed) trained in a fresh process, ``workers`` at a time (TensorFlow's tracing slows
    as one process accumulates functions, and two processes keep two cores busy through it)."""
    results, costs = {}, {}
    units = _units(experiments)
    with tempfile.TemporaryDirectory() as scratch:
        for size, test_images in _image_sizes(arm for unit in units for arm in unit).items():
            data = load_patterns_data(size, train_images=budget.train_images, test_images=test_images)
            np.savez(_data_file(scratch, size), **{f"{split}_{part}": getattr(data, split)[index] for split in SPLITS
                                                   for index, part in enumerate(("images", "labels"))})
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context, initializer=import_tensorflow_quietly,
                                 max_tasks_per_child=1) as pool:
            # the longest units of every seed first, so that the last ones to finish are short
            order = sorted(((unit, seed) for seed in seeds for unit in units), key=lambda job: -_unit_seconds(job[0]))
            jobs = {pool.submit(_score_unit, unit, seed, budget, scratch, folder, seed == seeds[0]): seed
                    for unit, seed in order}
            for job in as_completed(jobs):
                for arm, (correct, arm_costs, seconds) in job.result().items():
                    results[arm, jobs[job]] = correct
                    if arm_costs:
                        costs[arm] = arm_costs
                    progress(f"{arm}, seed {jobs[job]}: test accuracy {correct.mean():.4f} ({seconds:.0f} s)")
    scores = Scores()
    for (arm, _), correct in sorted(results.items(), key=lambda item: seeds.index(item[0][1])):
        scores.add(arm, correct)
    return scores, costs


def _accuracy_row(experiment, scores, costs):
    """The table row of an accuracy claim: ``seeded.compare``'s difference, interval and verdict
    (inconclusive under a baseline that has not learnt the task), the paper, the accuracies and
    the cost ratios of both arms."""
    claim = CLAIMS[experiment.claim]
    row = {"paper": claim.paper, **compare(Pair(experiment.method, experiment.baseline, experiment.claim), scores,
                                           claim.measure)}
    row["headline"] = claim.headline
    for role, arm in (("method", experiment.method), ("baseline", experiment.baseline)):
        row.update({f"{role}_{key}": value for key, value in scores.summary(arm).items()})
    if max(row["method_accuracy_mean"], row["baseline_accuracy_mean"]) < LEARNT:
        row.update(verdict=INCONCLUSIVE, note=f"both below {LEARNT:.0%} top-1: not trained enough to judge")
    ratios = {key: costs[experiment.method][key] / costs[experiment.baseline][key] for key in ("params", "macs")}
    row.update({"params_ratio": ratios["params"], "macs_ratio": ratios["macs"],
                "scale": f"{ARMS[experiment.method].scale} vs {ARMS[experiment.baseline].scale}; "
                         f"{ratios['params']:.2f}x params, {ratios['macs']:.2f}x MACs"})
    return row


def _latency_row(folder, runs, progress):
    """ThreshNet-79's fp32 latency over DenseNet-79's, timed interleaved, with its interval."""
    paths = {}
    for label, threshold in LATENCY_THRESHOLDS.items():
        model = threshnet((IMAGE_SIZE, IMAGE_SIZE, 3), classes=CLASSES, threshold=threshold)
        paths[label] = os.path.join(folder, f"{label}_fp32.tflite")
        write_bytes(paths[label], convert(model, "fp32"))
    method, baseline = benchmark(list(paths.values()), runs=runs, progress=progress, keep_latencies=True)
    claim = CLAIMS["threshnet_time"]
    row = {"paper": claim.paper, **latency_comparison(Pair(*LATENCY_THRESHOLDS, "threshnet_time"),
                                                      method["latencies_ms"], baseline["latencies_ms"], claim.measure)}
    row.update(headline=claim.headline,
               scale=f"ThreshNet-79 vs DenseNet-79 at 32x32, untrained, TFLite fp32, 2 threads, {runs} runs each "
                     f"({method['median_ms']:.2f} vs {baseline['median_ms']:.2f} ms median)")
    return row


def run_claims(name="claims", budget="full", seed=0, only=None, workers=WORKERS, progress=print):
    """Run the claim experiments (``only``: claim keys, default all) with ``BUDGETS[budget]`` (or a
    ``Budget``) from seeds ``seed, seed + 1, ...``, ``workers`` training processes at a time; write
    ``runs/<name>/`` (report.json and report.md with the rows as ``comparisons`` and
    ``latency_comparisons``, and the table alone as claims.md); return the rows."""
    if not isinstance(budget, Budget) and budget not in BUDGETS:
        raise ValueError(f"budget {budget!r}: expected one of {', '.join(BUDGETS)}")
    keys = [*(e.claim for e in EXPERIMENTS), "threshnet_time"]
    unknown = sorted(set(only or ()) - set(keys))
    if unknown:
        raise ValueError(f"unknown claim {', '.join(unknown)}: expected some of {', '.join(keys)}")
    plan, start = BUDGETS.get(budget, budget), time.perf_counter()
    experiments = [e for e in EXPERIMENTS if not only or e.claim in only]
    seeds = [seed + index for index in range(plan.seeds)]
    path = run_dir(name)
    scores, costs = _scores(experiments, plan, seeds, path, workers, progress) if experiments else (None, {})
    accuracy_rows = [_accuracy_row(experiment, scores, costs) for experiment in experiments]
    latency_rows = [_latency_row(path, plan.runs, progress)] if not only or "threshnet_time" in only else []
    config = {"budget": budget if isinstance(budget, str) else "custom", **plan._asdict(), "seeds": seeds,
              "data": "patterns", "image_size": IMAGE_SIZE,
              "mobile_image_size": MOBILE_IMAGE_SIZE, "test_images": TEST_IMAGES, "workers": workers,
              "minutes": round((time.perf_counter() - start) / 60, 1)}
    write_text(os.path.join(path, "claims.md"), claims_table(accuracy_rows + latency_rows) + "\n")
    update_report(path, config=config, comparisons=accuracy_rows, latency_comparisons=latency_rows)
    return accuracy_rows + latency_rows


def claims_table(rows):
    """The rows as a markdown table a person reads: paper, claim, measured figure with interval,
    test, scale, verdict."""
    lines = ["| paper | claim | measured (95% interval) | test | data and scale | verdict |", "|---|---|---|---|---|---|"]
    for row in rows:
        figure = f"{row['difference_points']:+.2f} ({row['low_points']:+.2f}, {row['high_points']:+.2f}) points" \
            if "difference_points" in row else f"{row['ratio']:.2f}x ({row['low']:.2f}, {row['high']:.2f})"
        note = f" ({row['note']})" if "note" in row else ""
        lines.append(f"| {row['paper']} | {row['headline']} | {row['measure']}: {figure} | {row['test']} | "
                     f"{row['scale']} | **{row['verdict']}**{note} |")
    return "\n".join(lines)
