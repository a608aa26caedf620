"""One run comparing the optimizations of a trained classifier, and the QSFM ResNet-56 experiment.

``optimize_report`` trains each network of ``ARCHS`` on digits (or any data set of ``models.data.load_dataset``;
the kit's MobileNetV2 and V3-Small, and
``keras.applications.MobileNetV2``, a network the kit did not build), reads it back from its ``.keras``
file, then exports side by side:

    fp32            the float model
    ptq_int8        post-training full-int8 quantization (calibrated on the training split)
    qat_int8        quantization-aware fine-tuning of the Keras 3 model (``tflite.qat``), then an
                    integer-only int8 file
    qat_tfmot_int8  the same with TFMOT in tf_keras (``tflite.qat_tfmot``), for comparison
    pruned_int8     magnitude pruning to ``sparsity`` during fine-tuning (``tflite.pruning``), int8
    qsfm_int8       QSFM filter pruning (``tflite.qsfm``), optionally fine-tuned, int8

with parameters, MACs, file size (and gzip size, where pruning's zeros pay), TFLite accuracy
on the test split and TFLite latency, all timed in one interleaved benchmark. ``qsfm_experiment``
measures the QSFM claim (Wang et al.: ResNet-56, -48.7% FLOPs at -0.54 points without
fine-tuning): MACs, parameters, accuracy and fp32 TFLite latency before and after.

Both repeat their training from each of ``seeds`` on one split (``mobilekit.seeded``) and report
accuracy per seed with its mean +- std, and ``comparisons``: a top-1 difference paired over seeds
and test images with its 95% interval. ``optimize_report`` compares each variant's file with the
fp32 file of the same network (a variant is a file: PTQ has no Keras model of its own), so every
seed's variants are exported; sizes, sparsity and latencies are the first seed's files'.
``qsfm_experiment`` compares the pruned Keras model with the original (the QSFM claim's verdict);
its files, costs and latencies are the first seed's.

TFMOT's QAT and pruning need tf_keras (see ``tflite.qat_tfmot``): ``optimize_report`` trains and
runs the other variants in this (Keras 3) process and hands the trained weights to a child process
with ``TF_USE_LEGACY_KERAS=1`` (``python -m mobilekit.optimize``, job ``tfmot``) for those two;
``mobilekit qsfm`` runs there whole. Writes ``runs/<name>/`` (report.json, report.md, a PNG, every
.tflite).
"""
import gzip
import json
import os
import sys
import time

import numpy as np

from keras_layers.keras_api import keras
from mobilekit.jobs import with_metadata
from mobilekit.model_export import load_keras_model
from mobilekit.plots import new_figure, save_figure
from mobilekit.runs import load_report, load_trained_run, run_dir, run_path, update_report
from mobilekit.seeded import (SPLIT_SEED, Pair, Scores, check_seeds, comparisons, load_split, statistics,
                              train_seeds)
from mobilekit.tasks.classify import CLASSIFY
from models.data import load_dataset
from models.files import write_bytes, write_text
from models.profile import profile
from models.registry import build_model
from models.train import train_classifier
from tflite import pruning, qat, qat_tfmot
from tflite.bench import benchmark
from tflite.converter import convert
from tflite.qsfm import qsfm_prune
from tflite.validation import load_tflite, tflite_predict, validate

KERAS_MOBILENET_V2 = "keras.applications.MobileNetV2"  # a network none of the kit's builders made
ARCHS = {"mobilenet_v2": {"alpha": 0.35}, "mobilenet_v3_small": {"alpha": 1.0}, KERAS_MOBILENET_V2: {"alpha": 0.35}}
VARIANTS = ("fp32", "ptq_int8", "qat_int8", "qat_tfmot_int8", "pruned_int8", "qsfm_int8")
TFMOT_ROWS = "tfmot_variants.json"  # the rows the tf_keras child writes beside its files


def copy_model(model):
    """A new model with the same architecture and weights (QAT fine-tuning it leaves ``model`` alone)."""
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def export_file(model, file_name, quantization, dataset, folder, describe=None, integer_only=False):
    """Convert, write and validate one file (``describe``: adds metadata to its bytes); return its row (bytes,
    gzip bytes, sparsity, accuracy)."""
    model_bytes = convert(model, quantization, representative_data=dataset.train[0], integer_only=integer_only)
    if describe:
        model_bytes = describe(model_bytes)
    write_bytes(os.path.join(folder, file_name), model_bytes)
    check = validate(model_bytes, model, *dataset.test)
    return {"file": file_name, "size_bytes": len(model_bytes), "gzip_bytes": len(gzip.compress(model_bytes)),
            "sparsity": round(pruning.tflite_sparsity(model_bytes), 4), **check}


def build_classifier(config):
    """``config``'s classifier: the kit's builder, or for ``KERAS_MOBILENET_V2`` the ``keras.applications``
    network (under either Keras generation, with the same layer names) behind a rescaling of pixels to its
    [-1, 1] input."""
    if config["arch"] != KERAS_MOBILENET_V2:
        return build_model(config)
    shape = (config["image_size"], config["image_size"], 3)
    pixels = keras.Input(shape, name="pixels")
    network = keras.applications.MobileNetV2(input_shape=shape, alpha=config["alpha"], weights=None,
                                             classes=config["classes"])
    return keras.Model(pixels, network(keras.layers.Rescaling(1 / 127.5, -1, name="to_input_range")(pixels)),
                       name="keras_applications_mobilenet_v2")


def optimize_arch(arch, dataset, folder, image_size, epochs, finetune_epochs, sparsity, qsfm_ratio, seed, progress,
                  data="digits"):
    """Train ``arch`` from ``seed`` on ``dataset`` (``data`` split with ``seeded.SPLIT_SEED``, which the
    tf_keras child loads again) and export its six variants (two of them in the child); return the rows."""
    config = {"arch": arch, "image_size": image_size, "classes": len(dataset.class_names), "data": data,
              **ARCHS.get(arch, {})}
    model = build_classifier(config)
    progress(f"{arch}: training {model.count_params():,} parameters for {epochs} epochs")
    train_classifier(model, dataset, folder, epochs=epochs, patience=epochs, seed=seed, verbose=0)
    model = load_keras_model(os.path.join(folder, "model.keras"))  # as `export --model` reads a user's file
    costs = profile(model)
    rows = []

    def add(row, variant, variant_costs=costs):
        rows.append({"arch": arch, "variant": variant, "params": variant_costs["params"],
                     "macs": variant_costs["macs"], **row})

    def export(variant_model, variant, quantization, integer_only=False):
        progress(f"{arch}: exporting {variant}")
        return export_file(variant_model, f"{variant}.tflite", quantization, dataset, folder,
                           integer_only=integer_only)

    add(export(model, "fp32", "fp32"), "fp32")
    add(export(model, "ptq_int8", "int8"), "ptq_int8")
    progress(f"{arch}: QAT fine-tuning for {finetune_epochs} epochs")
    add(export(qat.train_quantized(model, dataset, finetune_epochs), "qat_int8", "int8", integer_only=True), "qat_int8")
    progress(f"{arch}: TFMOT's QAT and magnitude pruning to {sparsity:.0%} over {finetune_epochs} epochs (tf_keras)")
    qat_tfmot.save_layer_weights(model, os.path.join(folder, "weights.npz"))
    run_in_tf_keras("tfmot", progress, config=config, folder=folder, finetune_epochs=finetune_epochs,
                    sparsity=sparsity, seed=SPLIT_SEED)  # the child's seed picks its split
    with open(os.path.join(folder, TFMOT_ROWS)) as f:
        for row in json.load(f):
            add(row, row.pop("variant"))
    progress(f"{arch}: QSFM removing {qsfm_ratio:.0%} of each prunable group's channels")
    slim, _ = qsfm_prune(model, dataset.train.take(256), ratio=qsfm_ratio)
    if finetune_epochs:
        qat.fine_tune(slim, dataset, epochs=finetune_epochs, learning_rate=3e-4, verbose=0)
    add(export(slim, "qsfm_int8", "int8"), "qsfm_int8", profile(slim))
    return rows


def tfmot_variants(config, folder, finetune_epochs=3, sparsity=0.5, seed=0, progress=print):
    """The tf_keras side of ``optimize_arch``: rebuild ``config``'s classifier with the weights in
    ``folder/weights.npz``, export its TFMOT QAT (integer-only, as ``qat_int8``) and pruned variants,
    and write their rows to ``folder/TFMOT_ROWS``."""
    dataset = load_dataset(config.get("data", "digits"), config["image_size"], seed=seed)
    model = qat_tfmot.load_layer_weights(build_classifier(config), os.path.join(folder, "weights.npz"))
    quantized = qat_tfmot.quantize_model(copy_model(model))
    qat.fine_tune(quantized, dataset, epochs=finetune_epochs, learning_rate=1e-4, verbose=0)
    rows = [{"variant": "qat_tfmot_int8", **export_file(quantized, "qat_tfmot_int8.tflite", "int8", dataset, folder,
                                                        integer_only=True)}]
    pruned = prune_and_fine_tune(model, dataset, sparsity, finetune_epochs, verbose=0)
    rows.append({"variant": "pruned_int8", **export_file(pruned, "pruned_int8.tflite", "int8", dataset, folder)})
    write_text(os.path.join(folder, TFMOT_ROWS), json.dumps(rows))


def prune_and_fine_tune(model, dataset, sparsity, epochs, batch_size=64, verbose=2):
    """``model`` magnitude-pruned to ``sparsity`` over the first two thirds of ``epochs`` of
    fine-tuning (``tflite.pruning``), the pruning wrappers stripped."""
    steps = epochs * max(1, dataset.train.size // batch_size)  # qat.fine_tune trains on full batches
    pruned = pruning.prune_model(model, final_sparsity=sparsity, end_step=max(1, steps * 2 // 3),
                                 frequency=max(1, steps // 10))
    qat.fine_tune(pruned, dataset, epochs=epochs, learning_rate=3e-4, batch_size=batch_size, verbose=verbose,
                  callbacks=[pruning.pruning_callback()])
    return pruning.strip(pruned)


def plot_variants(rows, path, title):
    """Accuracy, latency and size per variant, one group of bars per architecture."""
    archs = list(dict.fromkeys(row["arch"] for row in rows))
    panels = [("tflite_accuracy", "TFLite test accuracy", 1.0), ("median_ms", "median latency (ms)", 1.0),
              ("size_bytes", "file size (KB)", 1 / 1024)]
    figure, axes = new_figure(1, len(panels), figsize=(13, 3.6))
    width = 0.8 / len(VARIANTS)
    for axis, (key, label, scale) in zip(axes, panels):
        for k, variant in enumerate(VARIANTS):
            values = [next((r[key] * scale for r in rows if r["arch"] == a and r["variant"] == variant), np.nan)
                      for a in archs]
            axis.bar(np.arange(len(archs)) + k * width, values, width, label=variant)
        axis.set_xticks(np.arange(len(archs)) + 0.4 - width / 2, archs)
        axis.set_title(label)
        if key == "tflite_accuracy":
            axis.set_ylim(max(0.0, min(r["tflite_accuracy"] for r in rows) - 0.05), 1.0)
    axes[0].legend(fontsize=7)
    figure.suptitle(title, y=1.03)
    save_figure(figure, path)


def file_correct(path, split):
    """Whether the ``.tflite`` classifier at ``path`` gets each image of ``split`` right (bool, in order)."""
    outputs = tflite_predict(load_tflite(path), split.take())
    return outputs.reshape(split.size, -1).argmax(-1) == split.labels


def _variant_label(arch, variant):
    return f"{arch} {variant}"


def optimize_seeds(arch, dataset, path, image_size, epochs, finetune_epochs, sparsity, qsfm_ratio, seeds, scores,
                   progress, data="digits"):
    """``optimize_arch`` from each of ``seeds``, the first seed's files in ``path/arch/``, the others' in
    ``path/arch/seed<N>/``; each file's per-image correctness scored in ``scores``. Returns the first seed's
    rows with every seed's TFLite accuracy (``accuracies``, mean, std)."""
    first = None
    for seed in seeds:
        folder = _sub_dir(path, arch if first is None else os.path.join(arch, f"seed{seed}"))
        rows = optimize_arch(arch, dataset, folder, image_size, epochs, finetune_epochs, sparsity, qsfm_ratio, seed,
                             progress, data)
        for row in rows:
            scores.add(_variant_label(arch, row["variant"]), file_correct(os.path.join(folder, row["file"]),
                                                                          dataset.test))
        first = first or rows
    return [{**row, **scores.summary(_variant_label(arch, row["variant"]))} for row in first]


def variant_pairs(archs):
    """Each variant against the fp32 file of the same network."""
    return tuple(Pair(_variant_label(arch, variant), _variant_label(arch, "fp32"))
                 for arch in archs for variant in VARIANTS if variant != "fp32")


def optimize_report(name="optimize", archs=tuple(ARCHS), data="digits", image_size=32, epochs=30, finetune_epochs=3,
                    sparsity=0.5, qsfm_ratio=0.3, seeds=(0, 1, 2), runs=30, progress=print):
    """Train each architecture on ``data`` from each of ``seeds``, export the six variants, time the first
    seed's together, compare each variant with fp32; write ``runs/<name>/``."""
    seeds = check_seeds(seeds)
    path = run_dir(name)
    dataset = load_split(data, image_size)
    rows, scores = [], Scores()
    for arch in archs:
        rows += optimize_seeds(arch, dataset, path, image_size, epochs, finetune_epochs, sparsity, qsfm_ratio, seeds,
                               scores, progress, data)
    paths = [os.path.join(path, row["arch"], row["file"]) for row in rows]
    timings = benchmark(paths, runs=runs, progress=progress)
    for row, timing in zip(rows, timings):
        row["median_ms"] = timing["median_ms"]
    for row in rows:
        base = next(r for r in rows if r["arch"] == row["arch"] and r["variant"] == "fp32")
        row["latency_ratio"] = round(row["median_ms"] / base["median_ms"], 3)
    config = {"data": data, "image_size": image_size, "epochs": epochs, "finetune_epochs": finetune_epochs,
              "sparsity": sparsity, "qsfm_ratio": qsfm_ratio, "seeds": list(seeds), "split_seed": SPLIT_SEED,
              "runs": runs, "test_images": dataset.test.size}
    plot_variants(rows, os.path.join(path, "optimize.png"), f"{data} {image_size}x{image_size}, first seed's files")
    compared = "the TFLite files (PTQ is a conversion, with no Keras model of its own)"
    update_report(path, config=config, variants=rows, statistics=statistics(seeds, dataset.test.size, compared),
                  comparisons=comparisons(variant_pairs(archs), scores, "top-1 accuracy of the TFLite files (points)"),
                  figures=["optimize.png"])
    return rows


def _sub_dir(path, name):
    folder = os.path.join(path, name)
    os.makedirs(folder, exist_ok=True)
    return folder


QSFM_PAIRS = (Pair("qsfm", "original", "qsfm"),)  # the pruned model against the one it was pruned from


def _trained_or_reused(arch, dataset, folder, image_size, epochs, seed, reuse, progress):
    """``arch`` trained from ``seed`` into ``folder``, or with ``reuse`` read from ``folder/model.keras``
    when an earlier call left one there."""
    trained = os.path.join(folder, "model.keras")
    if reuse and os.path.isfile(trained):
        progress(f"{arch}, seed {seed}: reusing {trained}")
        return keras.models.load_model(trained)
    model = build_model({"arch": arch, "image_size": image_size, "classes": len(dataset.class_names)})
    progress(f"{arch}, seed {seed}: training {model.count_params():,} parameters for {epochs} epochs")
    model, _ = train_classifier(model, dataset, folder, epochs=epochs, patience=epochs, seed=seed, verbose=0)
    return model


def _qsfm_rows(models, scores, dataset, path, runs, progress):
    """The rows of the first seed's original and pruned models: costs, every seed's Keras accuracy
    (from ``scores``), the fp32 file's accuracy and size, its latency (both timed interleaved)."""
    rows, paths = [], []
    for label, variant in models.items():
        costs = profile(variant)
        model_bytes = convert(variant, "fp32")
        paths.append(os.path.join(path, f"{label}_fp32.tflite"))
        write_bytes(paths[-1], model_bytes)
        check = validate(model_bytes, variant, dataset.test.take(), dataset.test.labels)
        rows.append({"model": label, "params": costs["params"], "macs": costs["macs"], **scores.summary(label),
                     "tflite_accuracy": check["tflite_accuracy"], "size_bytes": len(model_bytes)})
    for row, timing in zip(rows, benchmark(paths, runs=runs, progress=progress)):
        row["median_ms"] = timing["median_ms"]
    return rows


def qsfm_experiment(name="qsfm_resnet56", arch="resnet56", data="digits", image_size=32, epochs=15, ratio=0.45,
                    calibration=256, seeds=(0, 1, 2), runs=30, reuse=False, progress=print):
    """Train ``arch`` on ``data`` (one split, ``seeded.SPLIT_SEED``) from each of ``seeds``, QSFM-prune each
    without fine-tuning; compare the pruned Keras models' accuracy with the originals' over every seed
    (``comparisons``, with the QSFM claim's verdict) and cost, file and latency of the first seed's.

    With ``reuse``, each seed's ``seed<N>/model.keras`` from an earlier call is pruned instead of training anew.
    """
    seeds = check_seeds(seeds)
    path = run_dir(name)
    dataset = load_split(data, image_size)
    scores, seconds, channels = Scores(), [], []

    def train(seed):
        start = time.perf_counter()
        model = _trained_or_reused(arch, dataset, os.path.join(path, f"seed{seed}"), image_size, epochs, seed, reuse,
                                   progress)
        seconds.append(time.perf_counter() - start)
        progress(f"{arch}, seed {seed}: QSFM on {calibration} calibration images, ratio {ratio}")
        slim, kept = qsfm_prune(model, dataset.train.take(calibration), ratio=ratio)
        channels.append(sum(len(k) for k in kept.values()))
        return {"original": model, "qsfm": slim}

    rows = _qsfm_rows(train_seeds(seeds, train, dataset.test, scores, progress), scores, dataset, path, runs, progress)
    compared = comparisons(QSFM_PAIRS, scores)
    summary = {"macs_reduction": 1 - rows[1]["macs"] / rows[0]["macs"],
               "params_reduction": 1 - rows[1]["params"] / rows[0]["params"],
               "accuracy_change_points": compared[0]["difference_points"],
               "accuracy_change_low_points": compared[0]["low_points"],
               "accuracy_change_high_points": compared[0]["high_points"],
               "verdict": compared[0]["verdict"],
               "latency_ratio": rows[1]["median_ms"] / rows[0]["median_ms"],
               "channels_kept": channels[0],
               ("load_s" if reuse else "train_s"): round(sum(seconds), 1)}
    config = {"arch": arch, "data": data, "image_size": image_size, "epochs": epochs, "ratio": ratio,
              "calibration": calibration, "seeds": list(seeds), "split_seed": SPLIT_SEED, "fine_tuning": "none",
              "test_images": dataset.test.size}
    update_report(path, config=config, qsfm=rows, summary=summary, statistics=statistics(seeds, dataset.test.size),
                  comparisons=compared)
    return rows, summary


def _classifier_run(path, config):
    """The data set and labels of the classifier run at ``path`` (one-line errors for other runs)."""
    if "arch" not in config:
        raise ValueError(f"{path}/report.json has no training config: train it with `mobilekit train` first")
    if config.get("task", "classify") != CLASSIFY.name:
        raise ValueError(f"--qat / --prune export classifiers only; {path} is a {config['task']} run")
    dataset = CLASSIFY.load_data(config)
    return dataset, CLASSIFY.labels(dataset)


def _record_exports(path, rows, progress):
    """Report the exported files' rows, replacing earlier rows of the same files."""
    for row in rows:
        progress(f"{row['file']}: {row['size_bytes'] / 1e6:.2f} MB ({row['gzip_bytes'] / 1e6:.2f} MB gzipped), "
                 f"sparsity {row['sparsity']:.2f}, accuracy {row['tflite_accuracy']:.4f} "
                 f"(Keras {row['keras_accuracy']:.4f})")
    files = {row["file"] for row in rows}
    earlier = [row for row in load_report(path).get("export_optimized", []) if row.get("file") not in files]
    update_report(path, export_optimized=earlier + rows)


def export_optimized(name, qat_epochs=0, prune_sparsity=0.0, finetune_epochs=3, progress=print):
    """The tf_keras side of ``mobilekit export --qat-backend tfmot / --prune``: rebuild the classifier of
    run ``name`` from its config (``models.registry.build_model``), load its trained weights
    (``weights.npz``), fine-tune with TFMOT, export ``model_qat_tfmot_int8.tflite`` (integer-only) /
    ``model_pruned_int8.tflite`` and validate them."""
    path = run_path(name)
    config = load_report(path).get("config", {})
    dataset, labels = _classifier_run(path, config)
    # the run's trained weights replace everything: no pretrained file is read again
    model = build_model({**config, "classes": CLASSIFY.classes(dataset), "weights": None})
    qat_tfmot.load_layer_weights(model, os.path.join(path, "weights.npz"))
    rows = []
    if qat_epochs:
        progress(f"TFMOT QAT fine-tuning for {qat_epochs} epochs")
        quantized = qat_tfmot.quantize_model(copy_model(model))
        qat.fine_tune(quantized, dataset, epochs=qat_epochs)
        rows.append(export_file(quantized, "model_qat_tfmot_int8.tflite", "int8", dataset, path,
                                lambda data: with_metadata(data, CLASSIFY.name, labels, name, "QAT int8 (TFMOT)"),
                                integer_only=True))
    if prune_sparsity:
        progress(f"magnitude pruning to {prune_sparsity:.0%} over {finetune_epochs} epochs")
        pruned = prune_and_fine_tune(model, dataset, prune_sparsity, finetune_epochs)
        rows.append(export_file(pruned, "model_pruned_int8.tflite", "int8", dataset, path,
                                lambda data: with_metadata(data, CLASSIFY.name, labels, name, "pruned int8")))
    _record_exports(path, rows, progress)
    return rows


# The jobs of this module that run under tf_keras, by the name the child process is given.
JOBS = {"tfmot": tfmot_variants, "qsfm": qsfm_experiment, "export": export_optimized}


def main(argv=None):
    """Entry point of the tf_keras child process: ``python -m mobilekit.optimize JOB KWARGS_JSON``."""
    job, kwargs = (argv if argv is not None else sys.argv[1:])
    try:
        JOBS[job](**json.loads(kwargs))
    except (ValueError, OSError) as error:
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    return 0


def run_in_tf_keras(job, progress=print, **kwargs):
    """Run ``JOBS[job](**kwargs)`` under tf_keras: in this process when it already uses tf_keras,
    else in a child process started with ``TF_USE_LEGACY_KERAS=1``."""
    from keras_layers.keras_api import LEGACY_KERAS

    if LEGACY_KERAS:
        JOBS[job](progress=progress, **kwargs)
        return
    qat_tfmot.run_legacy("mobilekit.optimize", [job, json.dumps(kwargs)], progress=progress)


QAT_BACKENDS = ("native", "tfmot")  # tflite.qat in this process; TFMOT in a tf_keras process
QAT_EPOCHS = 3  # `mobilekit export --qat` fine-tuning epochs


def export_with_optimization(name, qat_epochs=0, prune_sparsity=0.0, qat_backend="native", progress=print):
    """``mobilekit export NAME --qat / --prune``: QAT of the trained Keras 3 model in this process
    (``tflite.qat``: ``model_qat_int8.tflite``, integer-only); TFMOT's QAT (``--qat-backend tfmot``)
    and pruning in a tf_keras process, handed the trained weights (``weights.npz``, by layer name;
    see ``tflite.qat_tfmot``)."""
    if qat_backend not in QAT_BACKENDS:
        raise ValueError(f"--qat-backend {qat_backend} is not a backend: expected one of {', '.join(QAT_BACKENDS)}")
    path, config, model = load_trained_run(name)
    tfmot_epochs = qat_epochs if qat_backend == "tfmot" else 0
    if tfmot_epochs or prune_sparsity:
        qat_tfmot.save_layer_weights(model, os.path.join(path, "weights.npz"))
        run_in_tf_keras("export", progress, name=name, qat_epochs=tfmot_epochs, prune_sparsity=prune_sparsity)
    if qat_epochs and qat_backend == "native":
        dataset, labels = _classifier_run(path, config)
        progress(f"QAT fine-tuning for {qat_epochs} epochs")
        quantized = qat.train_quantized(model, dataset, qat_epochs, verbose=2)
        row = export_file(quantized, "model_qat_int8.tflite", "int8", dataset, path,
                          lambda data: with_metadata(data, CLASSIFY.name, labels, name, "QAT int8"), integer_only=True)
        _record_exports(path, [row], progress)


if __name__ == "__main__":
    sys.exit(main())
