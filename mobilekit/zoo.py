"""``mobilekit zoo``: every architecture of the kit trained briefly on digits at one small
input, exported, validated and timed side by side, in one table and one scatter plot.

All networks get the same data split, seed, input size, epochs and training recipe, so the
table compares architectures rather than training effort. Latencies come from one
interleaved ``tflite.bench.benchmark`` call over every exported file. Networks with
re-parameterizable blocks (RepVGG, RMNet) are exported, costed and timed in their deploy form.

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
from models.data import load_digits_data
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


def _train(entry, dataset, folder, image_size, epochs, batch_size, seed, progress, trained):
    """The trained network of ``entry`` (from ``trained`` when another row trained the same one)
    and the seconds its training took."""
    key = (entry.arch, repr(sorted(entry.kwargs.items())))
    if key not in trained:
        model = build_model({"arch": entry.arch, "image_size": image_size, "classes": 10, **entry.kwargs})
        progress(f"{entry.label}: training {model.count_params():,} parameters for up to {epochs} epochs")
        start = time.perf_counter()
        model, _ = train_classifier(model, dataset, folder, epochs=epochs, batch_size=batch_size, patience=epochs,
                                    seed=seed, verbose=0)
        trained[key] = model, round(time.perf_counter() - start, 1)
    return trained[key]


def _compressed(entry, model, dataset, folder, batch_size, seed, progress):
    kind, amount, finetune_epochs = entry.compression
    if kind not in COMPRESSIONS:
        raise ValueError(f"{entry.label}: unknown compression {kind!r}: expected one of {', '.join(COMPRESSIONS)}")
    progress(f"{entry.label}: {kind} {amount} of the trained {entry.arch}, then {finetune_epochs} fine-tuning epochs")
    model = COMPRESSIONS[kind](model, dataset.train[0][:CALIBRATION_IMAGES], amount)
    if finetune_epochs:
        model, _ = train_classifier(model, dataset, folder, epochs=finetune_epochs, batch_size=batch_size,
                                    patience=finetune_epochs, learning_rate=FINETUNE_LEARNING_RATE, seed=seed,
                                    verbose=0)
    return model


def train_and_export(entry, dataset, path, image_size, epochs, batch_size, seed, progress, trained=None):
    """Train (or take from ``trained``, a dict shared by the rows of one run) and export one zoo
    entry; return its row (without latencies) and its two .tflite paths."""
    folder = os.path.join(path, _slug(entry.label))
    model, train_s = _train(entry, dataset, folder, image_size, epochs, batch_size, seed, progress,
                            {} if trained is None else trained)
    model = deploy_form(model) if entry.compression is None else \
        _compressed(entry, model, dataset, folder, batch_size, seed, progress)
    costs = profile(model)  # of the exported form
    row = {"model": entry.label, "params": costs["params"], "macs": costs["macs"], "train_s": train_s}
    files = {}
    for quantization in ("fp32", "int8"):
        model_bytes = convert(model, quantization, representative_data=dataset.train[0])
        files[quantization] = os.path.join(folder, f"model_{quantization}.tflite")
        write_bytes(files[quantization], model_bytes)
        check = validate(model_bytes, model, *dataset.test)
        row["keras_accuracy"] = check["keras_accuracy"]
        row[f"{quantization}_accuracy"] = check["tflite_accuracy"]
        row[f"{quantization}_bytes"] = len(model_bytes)
    return row, files


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


def run_zoo(name="zoo", entries=ZOO, image_size=32, epochs=4, batch_size=32, seed=0, runs=30, threads=2,
            progress=print):
    """Train, export, validate and time every entry; write ``runs/<name>/``; return the rows."""
    path = run_dir(name)
    dataset = load_digits_data(image_size, seed=seed)
    rows, files, trained = [], [], {}
    for entry in entries:
        row, exported = train_and_export(entry, dataset, path, image_size, epochs, batch_size, seed, progress,
                                         trained)
        rows.append(row)
        files += [exported["fp32"], exported["int8"]]
    bench = benchmark(files, runs=runs, threads=threads, progress=progress)
    timings = {t["model"]: t["median_ms"] for t in bench}
    for row, fp32, int8 in zip(rows, files[::2], files[1::2]):
        row["fp32_ms"], row["int8_ms"] = timings[fp32], timings[int8]
    config = {"data": "digits", "image_size": image_size, "epochs": epochs, "batch_size": batch_size, "seed": seed,
              "train_images": len(dataset.train[1]), "test_images": len(dataset.test[1]),
              "threads": threads, "runs": runs}
    title = f"digits {image_size}x{image_size}, {epochs} epochs of batch {batch_size}, seed {seed}"
    plot_zoo(rows, os.path.join(path, "zoo.png"), title)
    update_report(path, config=config, zoo=rows, bench=bench, figures=["zoo.png"])
    return rows
