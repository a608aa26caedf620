"""``mobilekit binary``: float vs binary vs low-bit ResNets on the real digits (or any data set of
``models.data.load_dataset``), side by side.

Every variant of ``models.binary_nets.VARIANTS`` (float, BWN, XNOR, QNN W1A2, PokeBNN-style,
Rep-XNOR) is the same small ResNet (``RESNET_8`` with a stride-2 stem by default), trained with
the kit's recipe on the same split for the same epochs from each of several seeds
(``mobilekit.seeded``). The table gives the Keras models' test accuracy per seed, its mean and
standard deviation over the seeds, and the costs of
``models.profile``: MACs, binary MACs, ACE (MACs weighted by operand bits, PokeBNN) and the
weight storage in bits. The first seed's model is also converted to TFLite four ways and
validated against Keras on the test split (top-1 agreement, accuracy and bytes of each file):
``binary`` (``tflite.convert(model, "binary")``: the fp32 file with its binary kernels as int8
signs, ``tflite.binary_export``; the faithful path), ``dynamic`` (int8 weights, activations
quantized on the fly), full ``int8`` and ``int16x8`` (int8 weights, int16 activations).

``comparisons``: every variant against Float, and Rep-XNOR against XNOR (RepConv's claim,
``mobilekit.paper_claims``): the Keras models' top-1 difference, paired over seeds and test
images, with its 95% interval and, for the claim, its verdict.
"""
import os
import time
from typing import NamedTuple

from mobilekit.plots import new_figure, save_figure
from mobilekit.runs import run_dir, update_report
from mobilekit.seeded import (SPLIT_SEED, Pair, Scores, check_seeds, comparisons, load_split, statistics,
                              train_seeds)
from models.binary_nets import RESNET_8, binary_resnet
from models.profile import profile
from models.train import train_classifier, with_preprocessing
from tflite.converter import convert
from tflite.validation import validate


class TableRow(NamedTuple):
    """One row: a label, a key of ``VARIANTS`` and a key of ``STEMS`` (None: the table's stem)."""

    label: str
    variant: str
    stem: str = None


ROWS = (
    TableRow("Float", "float"),
    TableRow("BWN", "bwn"),
    TableRow("XNOR", "xnor"),
    TableRow("QNN W1A2", "qnn"),
    TableRow("PokeBNN-style", "pokebnn"),
    TableRow("PokeBNN + PokeInit", "pokebnn", "poke_strided"),
    TableRow("Rep-XNOR (beta=2)", "rep_xnor"),
)
# Every variant against the float network, and Rep-XNOR against its binary baseline (RepConv's claim).
PAIRS = (*(Pair(row.label, "Float") for row in ROWS if row.variant != "float"),
         Pair("Rep-XNOR (beta=2)", "XNOR", "repconv"))


def _costs(model):
    cost = profile(model)
    return {key: cost[key] for key in ("params", "macs", "binary_macs", "ace", "weight_bits")}


def _tflite_checks(model, dataset):
    """Top-1 agreement, accuracy and bytes of the ``binary``, ``dynamic``, full ``int8`` and ``int16x8``
    files: int8 activations round values near 0 to 0, which flips the sign a binary input layer takes
    of them, so XNOR-style networks need float (or 16-bit) activations on the device. A file the
    runtime cannot load gets None and its ``<kind>_error``."""
    checks = {}
    for kind in ("binary", "dynamic", "int8", "int16x8"):
        try:  # int16x8's conversion loads its file: a refusal shows there
            model_bytes = convert(model, kind, representative_data=dataset.train.take())
            checks[f"{kind}_bytes"] = len(model_bytes)
            check = validate(model_bytes, model, dataset.test.take(), dataset.test.labels)
        except ValueError as error:  # a file the runtime refuses is a result of the table, not its end
            checks.update({f"{kind}_agreement": None, f"{kind}_accuracy": None, f"{kind}_error": str(error)})
            checks.setdefault(f"{kind}_bytes", None)
            continue
        checks.update({f"{kind}_agreement": check["top1_agreement"], f"{kind}_accuracy": check["tflite_accuracy"]})
    return checks


def train_variant(row, dataset, path, stages, stem, image_size, epochs, batch_size, seeds, scores, progress):
    """Train ``row`` once per seed (each seed's Keras model scored in ``scores``); cost and check the
    files of the first seed's; return its table row."""
    seconds = []

    def train(seed):
        model = with_preprocessing(binary_resnet((image_size, image_size, 3), classes=len(dataset.class_names),
                                                 stages=stages, stem=row.stem or stem, variant=row.variant))
        folder = os.path.join(path, f"{row.variant}{'_' + row.stem if row.stem else ''}_seed{seed}")
        start = time.perf_counter()
        model, _ = train_classifier(model, dataset, folder, epochs=epochs, batch_size=batch_size, patience=epochs,
                                    seed=seed, verbose=0)
        seconds.append(time.perf_counter() - start)
        progress(f"{row.label}, seed {seed}: trained in {seconds[-1]:.0f} s")
        return {row.label: model}

    model = train_seeds(seeds, train, dataset.test, scores, progress)[row.label]
    return {"model": row.label, "variant": row.variant, "stem": row.stem or stem, **scores.summary(row.label),
            **_costs(model), **_tflite_checks(model, dataset), "train_s": round(sum(seconds), 1)}


def plot_binary_table(rows, path, title):
    """Test accuracy (mean and std over seeds) against ACE, log scale."""
    figure, axis = new_figure(figsize=(7, 4.5))
    for row in rows:
        axis.errorbar(row["ace"], row["accuracy_mean"], yerr=row["accuracy_std"], fmt="o", capsize=4)
        axis.annotate(f"{row['model']}\n{row['weight_bits'] / 8192:.0f} KB of weights", (row["ace"],
                      row["accuracy_mean"]), fontsize=8, xytext=(5, -12), textcoords="offset points")
    axis.set_xscale("log")
    axis.set_xlabel("ACE (MACs x input bits x weight bits, log)")
    axis.set_ylabel("test accuracy (mean +- std over seeds)")
    axis.grid(alpha=0.3)
    axis.set_title(title)
    save_figure(figure, path)


def run_binary_table(name="binary", rows=ROWS, stages=RESNET_8, stem="strided", data="digits", image_size=32,
                     epochs=8, batch_size=32, seeds=(0, 1, 2), pairs=PAIRS, progress=print):
    """Train every row on ``data`` (one split, ``seeded.SPLIT_SEED``) from every seed, compare
    ``pairs`` where both rows ran; write ``runs/<name>/``; return the table rows."""
    seeds = check_seeds(seeds)
    path = run_dir(name)
    dataset = load_split(data, image_size)
    scores = Scores()
    table = [train_variant(row, dataset, path, stages, stem, image_size, epochs, batch_size, seeds, scores, progress)
             for row in rows]
    float_ace = next((row["ace"] for row in table if row["variant"] == "float"), None)
    for row in table:
        if float_ace:
            row["ace_vs_float"] = row["ace"] / float_ace
    config = {"data": data, "image_size": image_size, "stages": [list(stage) for stage in stages],
              "stem": stem, "epochs": epochs, "batch_size": batch_size, "seeds": list(seeds), "split_seed": SPLIT_SEED,
              "train_images": dataset.train.size, "test_images": dataset.test.size}
    title = f"{data} {image_size}x{image_size}, {epochs} epochs, {len(seeds)} seeds"
    plot_binary_table(table, os.path.join(path, "binary.png"), title)
    update_report(path, config=config, binary=table, statistics=statistics(seeds, dataset.test.size),
                  comparisons=comparisons(pairs, scores), figures=["binary.png"])
    return table
