"""The ``mobilekit train``, ``export`` and ``bench`` jobs, the same for every task.

``train`` builds ``config["arch"]`` through ``models.registry.build_model``, fits it with the
task's recipe and writes the run folder: ``model.keras``, ``labels.txt``,
``training_curves.png`` and the report's ``config``, ``model`` and ``training`` sections.
``export`` converts a trained run to each quantization and validates every file against
the Keras model on the test split (rows of one shape, see ``mobilekit.tasks.base``).
"""
import os
import time

from mobilekit.plots import plot_training_curves
from mobilekit.runs import load_trained_run, run_dir, update_report
from mobilekit.tasks import get_task
from models.data import sample_photos
from models.files import write_bytes, write_text
from models.profile import profile
from models.registry import architecture, build_model
from tflite.bench import benchmark
from tflite.converter import QUANTIZATIONS, convert
from tflite.inspect import operator_names


def _history_figures(history):
    """The last loss of training and validation, and the best of every other validation metric."""
    figures = {f"final_{key}": values[-1] for key, values in history.items() if key in ("loss", "val_loss")}
    figures.update({f"best_{key}": max(values) for key, values in history.items()
                    if key.startswith("val_") and key != "val_loss"})
    return figures


def train(task="classify", name="train", progress=print, **options):
    """Train a model for ``task`` into ``runs/<name>/`` (``options``: the task's ``defaults`` keys).

    Returns ``(run_path, model, data)``.
    """
    return train_config(get_task(task).config(options), name, progress)


def train_config(config, name, progress=print):
    """Train the model of a complete run ``config`` into ``runs/<name>/``; ``(run_path, model, data)``."""
    task = get_task(config["task"])
    path = run_dir(name)
    size = config["image_size"]
    progress(f"loading {config['data']} at {size}x{size}")
    data = task.load_data(config)
    data_sections = task.data_report(data)
    if data_sections.get("skipped_files"):
        progress(f"skipped {len(data_sections['skipped_files'])} unreadable file(s): " +
                 ", ".join(f"{s['file']} ({s['reason']})" for s in data_sections["skipped_files"][:5]))
    labels = task.labels(data)
    config = {**config, "classes": task.classes(data)}
    model = build_model(config)
    costs = profile(model)
    progress(f"training {model.name}: {costs['params']:,} parameters, {costs['macs'] / 1e6:.1f}M MACs, "
             f"{task.count(data, 'train')} training images, up to {config['epochs']} epochs")
    start = time.perf_counter()
    model, history = task.fit(model, data, path, config)
    seconds = time.perf_counter() - start
    write_text(os.path.join(path, "labels.txt"), "\n".join(labels) + "\n")
    plot_training_curves(history, os.path.join(path, "training_curves.png"), title=model.name)
    figures, sections = task.evaluate(model, data, config)
    training = {"epochs_run": len(history["loss"]), "seconds": round(seconds, 1), **_history_figures(history),
                **figures, "train_images": task.count(data, "train"), "test_images": task.count(data, "test")}
    progress(f"trained in {seconds:.0f} s: " + ", ".join(f"{key.replace('_', ' ')} {value:.4f}"
                                                          for key, value in figures.items()))
    update_report(path, config=config, model={"name": model.name, "params": costs["params"], "macs": costs["macs"]},
                  training=training, **data_sections, **sections, figures=["training_curves.png"])
    return path, model, data


def check_quantizations(quantizations, allowed, what):
    """``quantizations``, each one of ``allowed``, or a one-line error saying ``what`` they are for."""
    unknown = [q for q in quantizations if q not in allowed]
    if unknown:
        raise ValueError(f"--quantization {' '.join(unknown)} does not apply to {what}: expected some of "
                         f"{', '.join(allowed)}")
    return tuple(quantizations)


def export(name, quantizations=("fp32", "int8"), progress=print):
    """Convert the trained ``runs/<name>/model.keras`` and validate each file on the test split.

    Writes ``model_<quantization>.tflite`` and the report's ``export`` section; returns its rows.
    """
    path, config, model = load_trained_run(name)
    task = get_task(config.get("task", "classify"))
    quantizations = check_quantizations(quantizations, task.quantizations, task.name)
    data = task.load_data(config)
    reference = task.reference(model, data, config)
    rows = []
    for quantization in quantizations:
        progress(f"converting to {quantization}")
        model_bytes = task.convert(model, config, data, quantization)
        file_name = f"model_{quantization}.tflite"
        write_bytes(os.path.join(path, file_name), model_bytes)
        progress(f"validating {file_name} against the Keras model on {task.count(data, 'test')} test images")
        rows.append({"quantization": quantization, "file": file_name, "size_bytes": len(model_bytes),
                     **task.validate(model_bytes, model, data, reference),
                     "ops": " ".join(operator_names(model_bytes))})
        progress(task.describe(rows[-1]))
    update_report(path, export=rows)
    return rows


def bench_files(paths, runs=50, warmup=5, threads=2, rounds=3, name=None, progress=print):
    """Time existing ``.tflite`` files side by side; with ``name``, add them to that run's report."""
    rows = benchmark(paths, runs=runs, warmup=warmup, threads=threads, rounds=rounds, progress=progress)
    if name:
        update_report(run_dir(name), bench=rows)
    return rows


def bench_architecture(arch="mobilenet_v2", image_size=224, quantizations=("fp32", "int8"), name=None,
                       runs=50, warmup=5, threads=2, rounds=3, progress=print, **options):
    """Build ``arch`` untrained (``options``: builder arguments such as ``alpha``), convert it to each
    quantization and time the files side by side.

    int8 is calibrated on crops of scikit-image's photos, so its activation ranges are those
    of real images. Files go to ``runs/<name>/``.
    """
    entry = architecture(arch)
    for key in options:
        if key not in entry.arguments:
            raise ValueError(f"--{key.replace('_', '-')} does not apply to --arch {arch}: it takes "
                             f"{', '.join(entry.arguments) or 'no builder options'}")
    quantizations = check_quantizations(quantizations, QUANTIZATIONS, f"--arch {arch}")
    config = {"arch": arch, "image_size": image_size, "classes": entry.default_classes, **options}
    name = name or "_".join(["bench", arch, *(f"{value:g}" if isinstance(value, float) else str(value)
                                              for value in options.values()), str(image_size)])
    path = run_dir(name)
    model = build_model(config)
    photos = sample_photos(image_size, count=32)
    files = []
    for quantization in quantizations:
        progress(f"converting {model.name} to {quantization}")
        files.append(os.path.join(path, f"{arch}_{quantization}.tflite"))
        write_bytes(files[-1], convert(model, quantization, representative_data=photos))
    update_report(path, config=config)
    return bench_files(files, runs=runs, warmup=warmup, threads=threads, rounds=rounds, name=name, progress=progress)
