"""``mobilekit zoo``: every architecture of the kit trained briefly on digits (or any data set
of ``models.data.load_dataset``) at one small input, exported, validated and timed side by side,
in one table and one scatter plot.

All networks get the same data split, seeds, input size, epochs and training recipe, so the
table compares architectures rather than training effort. Each network trains once per seed
(``mobilekit.seeded``): the table's ``accuracies`` are its Keras models' test accuracies, one
per seed, with their mean +- std; the costs, the .tflite files (their accuracies and sizes) and
the latencies are the first seed's models'. Latencies come from one interleaved
``tflite.bench.benchmark`` call over every exported file. Networks with re-parameterizable
blocks (RepVGG, RMNet) are exported, costed and timed in their deploy form.

``ZOO_PAIRS`` are the differences the zoo reports (``comparisons``): the Keras models' top-1
difference, paired over seeds and test images, with its 95% interval and, where the pair is a
paper's claim (``mobilekit.paper_claims``), the verdict. ``LATENCY_PAIRS`` are latency ratios
of the fp32 files (``latency_comparisons``): ThreshNet-79 over DenseNet-79 for ThreshNet's
"less inference time" claim.

A row with a ``Compression`` is a trained network of another row (trained once, shared)
compressed after training, then fine-tuned for the compression's epochs when it has any:

    qsfm    RMNet's pairing (Meng et al., 2021): the residual-free deploy form as plain layers
            (``models.reparameterize.plain_network``), ``amount`` of every convolution's channels
            removed by QSFM (``tflite.qsfm``), block outputs included
    ffconv  every d x d convolution as a truncated-SVD FFConv of rank ``amount`` x C_out
            (``models.low_rank.factorize``)
"""
import os
import re
import time
from typing import NamedTuple

import numpy as np

from keras_layers.protocol import Foldable, implements
from mobilekit.plots import new_figure, save_figure
from mobilekit.runs import run_dir, update_report
from mobilekit.seeded import (SPLIT_SEED, Pair, Scores, check_seeds, comparisons, latency_comparison, load_split,
                              statistics, train_seeds)
from models.files import write_bytes
from models.g_ghostnet import G_GHOST_REGNETX_200MF, REGNETX_3_2GF, REGNETX_200MF
from models.low_rank import factorize
from models.profile import profile
from models.registry import build_model
from models.reparameterize import plain_network, reparameterize
from models.train import train_classifier, with_preprocessing
from tflite.bench import benchmark
from tflite.converter import convert
from tflite.qsfm import qsfm_prune
from tflite.validation import validate


class Compression(NamedTuple):
    """A step after training: ``kind`` of ``COMPRESSIONS`` at ``amount``, then ``finetune_epochs``."""

    kind: str
    amount: float
    finetune_epochs: int = 0


class ZooEntry(NamedTuple):
    """One row of the zoo: a label, a registered architecture, its builder arguments and an
    optional ``Compression`` of the trained network."""

    label: str
    arch: str
    kwargs: dict = {}
    compression: Compression = None


CALIBRATION_IMAGES = 256  # QSFM's feature-map statistics
FINETUNE_LEARNING_RATE = 1e-3  # after a compression: a third of the training recipe's


ZOO = (
    ZooEntry("MobileNetV2-0.35", "mobilenet_v2", {"alpha": 0.35}),
    ZooEntry("MobileNetV2-1.0", "mobilenet_v2", {"alpha": 1.0}),
    ZooEntry("MobileNetV2-WHT-1.0", "mobilenet_v2_wht", {"alpha": 1.0}),
    ZooEntry("MobileNetV3-Small", "mobilenet_v3_small"),
    ZooEntry("MobileNetV3-Large", "mobilenet_v3_large"),
    ZooEntry("GhostNet-0.5", "ghostnet", {"alpha": 0.5}),
    ZooEntry("GhostNet-1.0", "ghostnet"),
    ZooEntry("ResNet-20", "resnet20"),
    ZooEntry("ResNet-20-FFConv-0.5", "resnet20", compression=Compression("ffconv", 0.5, 2)),
    ZooEntry("ResNet-56", "resnet56"),
    # ThreshNet's table with every block dense (DenseNet) or every block harmonic (HarDNet):
    # the same-depth baselines the ThreshNet paper compares with.
    ZooEntry("DenseNet-79", "threshnet", {"threshold": 5}),
    ZooEntry("ThreshNet-79", "threshnet"),
    ZooEntry("HarDNet-79", "hardnet"),
    ZooEntry("RepVGG-A0-0.25", "repvgg", {"alpha": 0.25}),
    ZooEntry("RMNet-20", "rm_resnet"),
    ZooEntry("RMNet-20-QSFM-0.5", "rm_resnet", compression=Compression("qsfm", 0.5)),
    ZooEntry("MGIC-Net", "mgic_net"),
    ZooEntry("RegNetX-200MF", "g_ghostnet", {"stages": REGNETX_200MF}),
    ZooEntry("G-GhostNet-200MF", "g_ghostnet", {"stages": G_GHOST_REGNETX_200MF}),
)
# ImageNet-size networks: minutes each to train and convert, so only with ``mobilekit zoo --all``.
LARGE_ZOO = (
    ZooEntry("ResNet-18", "resnet18"),
    ZooEntry("ResNet-50", "resnet50"),
    ZooEntry("DenseNet-121", "densenet121"),
    ZooEntry("RegNetX-3.2GF", "g_ghostnet", {"stages": REGNETX_3_2GF}),
    ZooEntry("G-GhostNet-3.2GF", "g_ghostnet"),
)
# The accuracy differences the zoo reports, method vs baseline (labels of rows), with the claim of
# ``mobilekit.paper_claims.CLAIMS`` a pair tests; pairs without a claim give the difference alone.
ZOO_PAIRS = (
    Pair("MobileNetV2-WHT-1.0", "MobileNetV2-1.0", "wht"),
    Pair("ResNet-20-FFConv-0.5", "ResNet-20", "ffconv"),
    Pair("ThreshNet-79", "HarDNet-79", "threshnet_error"),
    Pair("ThreshNet-79", "DenseNet-79"),
    Pair("RMNet-20-QSFM-0.5", "RMNet-20", "qsfm"),
    Pair("G-GhostNet-200MF", "RegNetX-200MF"),
    # GhostNet's claim is against MobileNetV3-Small 0.75x at the same FLOPs; the zoo's is 1.0x
    Pair("GhostNet-0.5", "MobileNetV3-Small"),
)
# Latency ratios of the fp32 files, method over baseline.
LATENCY_PAIRS = (Pair("ThreshNet-79", "DenseNet-79", "threshnet_time"),)
ACCURACY_MEASURE = "top-1 accuracy of the Keras models (points; the .tflite files are the first seed's)"
LATENCY_MEASURE = "TFLite fp32 median latency ratio (the first seed's files, timed interleaved)"


def _slug(label):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", label)


def deploy_form(model):
    """``model`` (pixels, preprocessing, backbone) with its re-parameterizable blocks folded
    (``models.reparameterize``), as it is deployed; a model without such blocks unchanged."""
    backbone = model.layers[-1]
    if not any(implements(layer, Foldable) for layer in getattr(backbone, "layers", ())):
        return model
    return with_preprocessing(reparameterize(backbone))


def _qsfm_plain(model, images, ratio):
    return qsfm_prune(with_preprocessing(plain_network(model.layers[-1])), images, ratio)[0]


def _low_rank(model, images, rank_fraction):
    return with_preprocessing(factorize(model.layers[-1], rank_fraction)[0])


COMPRESSIONS = {"qsfm": _qsfm_plain, "ffconv": _low_rank}


def _network_key(entry):
    """What two rows that train the same network share: its architecture and builder arguments."""
    return entry.arch, repr(sorted(entry.kwargs.items()))


def _train(entry, dataset, folder, image_size, epochs, batch_size, seed, progress, trained=None):
    """The network of ``entry`` trained from ``seed`` and the seconds its training took; ``trained``
    (a dict, or None when no other row shares the network) keeps it for the other rows."""
    key = (*_network_key(entry), seed)
    if trained is not None and key in trained:
        return trained[key]
    config = {"arch": entry.arch, "image_size": image_size, "classes": len(dataset.class_names), **entry.kwargs}
    model = build_model(config)
    progress(f"{entry.label}, seed {seed}: training {model.count_params():,} parameters for up to {epochs} epochs")
    start = time.perf_counter()
    model, _ = train_classifier(model, dataset, folder, epochs=epochs, batch_size=batch_size, patience=epochs,
                                seed=seed, verbose=0)
    result = model, round(time.perf_counter() - start, 1)
    if trained is not None:
        trained[key] = result
    return result


def _compressed(entry, model, dataset, folder, batch_size, seed, progress):
    kind, amount, finetune_epochs = entry.compression
    if kind not in COMPRESSIONS:
        raise ValueError(f"{entry.label}: unknown compression {kind!r}: expected one of {', '.join(COMPRESSIONS)}")
    progress(f"{entry.label}, seed {seed}: {kind} {amount} of the trained {entry.arch}, then {finetune_epochs} "
             f"fine-tuning epochs")
    model = COMPRESSIONS[kind](model, dataset.train.take(CALIBRATION_IMAGES), amount)
    if finetune_epochs:
        model, _ = train_classifier(model, dataset, folder, epochs=finetune_epochs, batch_size=batch_size,
                                    patience=finetune_epochs, learning_rate=FINETUNE_LEARNING_RATE, seed=seed,
                                    verbose=0)
    return model


def _exported(model, dataset, folder):
    """Costs of ``model`` (a row's exported form) and its fp32 and int8 files, written into
    ``folder`` and validated on the test split; return the row's fields and the two paths."""
    costs = profile(model)
    row, files = {"params": costs["params"], "macs": costs["macs"]}, {}
    for quantization in ("fp32", "int8"):
        model_bytes = convert(model, quantization, representative_data=dataset.train.take())
        files[quantization] = os.path.join(folder, f"model_{quantization}.tflite")
        write_bytes(files[quantization], model_bytes)
        check = validate(model_bytes, model, dataset.test.take(), dataset.test.labels)
        row["keras_accuracy"] = check["keras_accuracy"]
        row[f"{quantization}_accuracy"] = check["tflite_accuracy"]
        row[f"{quantization}_bytes"] = len(model_bytes)
    return row, files


def train_and_export(entry, dataset, path, image_size, epochs, batch_size, seeds, scores, progress, trained=None):
    """Train one zoo entry from each of ``seeds`` (or take the network from ``trained``, a dict
    shared by the rows of one run), score each seed's model in ``scores``, and export the first
    seed's; return its row (without latencies) and its two .tflite paths. The row's
    ``keras_accuracy`` and file accuracies are the first seed's; ``accuracies`` every seed's."""
    folder = os.path.join(path, _slug(entry.label))
    seconds = []

    def train(seed):
        seed_folder = os.path.join(folder, f"seed{seed}")
        model, train_s = _train(entry, dataset, seed_folder, image_size, epochs, batch_size, seed, progress, trained)
        seconds.append(train_s)
        model = deploy_form(model) if entry.compression is None else \
            _compressed(entry, model, dataset, seed_folder, batch_size, seed, progress)
        return {entry.label: model}

    model = train_seeds(seeds, train, dataset.test, scores, progress)[entry.label]
    row, files = _exported(model, dataset, folder)
    return {"model": entry.label, **row, **scores.summary(entry.label), "train_s": round(sum(seconds), 1)}, files


def plot_zoo(rows, path, title):
    """Scatter of int8 accuracy against int8 latency; marker area follows the int8 file size."""
    figure, axis = new_figure(figsize=(7, 4.5))
    sizes = np.array([row["int8_bytes"] for row in rows], np.float64)
    axis.scatter([row["int8_ms"] for row in rows], [row["int8_accuracy"] for row in rows],
                 s=40 + 400 * sizes / sizes.max(), alpha=0.6)
    for row in rows:
        axis.annotate(row["model"], (row["int8_ms"], row["int8_accuracy"]), fontsize=8,
                      xytext=(4, 4), textcoords="offset points")
    axis.set_xscale("log")
    axis.set_xlabel("TFLite int8 median latency (ms, log)")
    axis.set_ylabel("int8 test accuracy")
    axis.grid(alpha=0.3)
    axis.set_title(title)
    save_figure(figure, path)


def _timed(rows, files, runs, threads, progress):
    """Time every file in one interleaved benchmark; set each row's ``fp32_ms`` / ``int8_ms``; return
    the benchmark's rows and each row's fp32 latencies (every timed run) by label."""
    bench = benchmark(files, runs=runs, threads=threads, progress=progress, keep_latencies=True)
    latencies = {timing["model"]: timing.pop("latencies_ms") for timing in bench}
    timings = {timing["model"]: timing["median_ms"] for timing in bench}
    for row, fp32, int8 in zip(rows, files[::2], files[1::2]):
        row["fp32_ms"], row["int8_ms"] = timings[fp32], timings[int8]
    return bench, {row["model"]: latencies[fp32] for row, fp32 in zip(rows, files[::2])}


def run_zoo(name="zoo", entries=ZOO, data="digits", image_size=32, epochs=4, batch_size=32, seeds=(0, 1, 2), runs=30,
            threads=2, pairs=ZOO_PAIRS, latency_pairs=LATENCY_PAIRS, progress=print):
    """Train every entry from each of ``seeds`` on ``data`` (one split, ``seeded.SPLIT_SEED``),
    export, validate and time the first seed's models, compare ``pairs`` (accuracy) and
    ``latency_pairs`` (fp32 latency) where both rows ran; write ``runs/<name>/``; return the rows."""
    seeds = check_seeds(seeds)
    path = run_dir(name)
    dataset = load_split(data, image_size)
    shared = {_network_key(entry) for entry in entries if entry.compression}  # networks two rows train
    rows, files, trained, scores = [], [], {}, Scores()
    for entry in entries:
        row, exported = train_and_export(entry, dataset, path, image_size, epochs, batch_size, seeds, scores, progress,
                                         trained if _network_key(entry) in shared else None)
        rows.append(row)
        files += [exported["fp32"], exported["int8"]]
    bench, latencies = _timed(rows, files, runs, threads, progress)
    latency = [latency_comparison(pair, latencies[pair.method], latencies[pair.baseline], LATENCY_MEASURE)
               for pair in latency_pairs if pair.method in latencies and pair.baseline in latencies]
    config = {"data": data, "image_size": image_size, "epochs": epochs, "batch_size": batch_size, "seeds": list(seeds),
              "split_seed": SPLIT_SEED, "train_images": dataset.train.size, "test_images": dataset.test.size,
              "threads": threads, "runs": runs}
    title = f"{data} {image_size}x{image_size}, {epochs} epochs of batch {batch_size}, first of {len(seeds)} seeds"
    plot_zoo(rows, os.path.join(path, "zoo.png"), title)
    update_report(path, config=config, zoo=rows, bench=bench,
                  statistics=statistics(seeds, dataset.test.size, "the Keras models"),
                  comparisons=comparisons(pairs, scores, ACCURACY_MEASURE), latency_comparisons=latency,
                  figures=["zoo.png"])
    return rows
