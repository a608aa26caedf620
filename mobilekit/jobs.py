"""The ``mobilekit train``, ``export`` and ``bench`` jobs, the same for every task.

``train`` builds ``config["arch"]`` through ``models.registry.build_model``, fits it with the
task's recipe and writes the run folder: ``model.keras``, ``labels.txt``,
``training_curves.png`` and the report's ``status``, ``config``, ``model`` and ``training``
sections. The model is built and trained inside the scope of the config's ``strategy``
(``models.distribute``); in a multi-worker cluster only the chief writes the run folder.
Keras 3 (3.15) cannot ``fit`` under ``MultiWorkerMirroredStrategy`` (keras-team/keras#20585:
its first step reduces a per-replica batch eagerly and fails), so a Keras 3 process trains a
``multiworker`` run in a tf_keras child process (``python -m mobilekit.jobs``) and rebuilds the
trained model as a Keras 3 ``model.keras`` from the child's weights.

A resumable task's run is interrupted cleanly by SIGINT / SIGTERM (report status
``interrupted``, the last epoch's checkpoint kept) and continued by ``resume`` with its saved
config. ``export`` converts a trained run to each quantization and validates every file against
the Keras model on the test split (rows of one shape, see ``mobilekit.tasks.base``).
"""
import importlib.metadata
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np

from demo_app.errors import is_input_error
from demo_app.preprocess import normalization
from keras_layers.keras_api import LEGACY_KERAS
from mobilekit.plots import plot_training_curves
from mobilekit.runs import (CHECKPOINT_FOLDER, LOGS_FOLDER, load_report, load_trained_run, run_dir, run_path,
                            update_report)
from mobilekit.tasks import TASKS, get_task
from models.batch_statistics import calibrate_batch_norm
from models.checkpoint import read_checkpoint
from models.data import sample_photos
from models.distribute import cluster, is_chief_task, make_strategy, worker_folder
from models.files import atomic_output, write_bytes, write_text
from models.interrupt import SIGNALS, TrainingInterrupted
from models.profile import profile
from models.registry import architecture, build_model
from tflite.bench import benchmark
from tflite.converter import QUANTIZATIONS, convert
from tflite.inspect import operator_names
from tflite.metadata import add_metadata
from tflite.qat_tfmot import load_layer_weights, save_layer_weights

BATCH_NORM_IMAGES = 8  # photos an untrained architecture's batch-norm statistics are measured on
TRAINED_WEIGHTS = "trained_weights.npz"  # a tf_keras child's trained weights, by layer name (see tflite.qat_tfmot)


def _history_figures(history):
    """The last loss of training and validation, and the best of every other validation metric."""
    figures = {f"final_{key}": values[-1] for key, values in history.items() if key in ("loss", "val_loss")}
    figures.update({f"best_{key}": max(values) for key, values in history.items()
                    if key.startswith("val_") and key != "val_loss"})
    return figures


def train(task="classify", name="train", progress=print, resume=False, **options):
    """Train a model for ``task`` into ``runs/<name>/`` (``options``: the task's ``defaults`` keys);
    with ``resume``, continue run ``name`` instead (``options`` given must agree with its config).

    Returns ``(run_path, model, data)``.
    """
    if resume:
        return resume_run(name, {"task": task, **options}, progress)
    return train_config(get_task(task).config(options), name, progress)


def resume_run(name, options, progress=print):
    """Continue run ``name`` from its last checkpoint with its saved config; ``options`` that
    contradict the config, a run without checkpoint and a complete run are one-line errors."""
    path = run_path(name)
    report = load_report(path)
    config = report.get("config")
    checkpoint = os.path.join(path, CHECKPOINT_FOLDER)
    if not isinstance(config, dict) or not config or read_checkpoint(checkpoint) is None:
        raise ValueError(f"--resume: run {name} has no checkpoint in {checkpoint}: expected a run that "
                         f"`mobilekit train --name {name}` started and interrupted")
    if report.get("status") == "complete":
        raise ValueError(f"--resume: run {name} is complete: nothing to resume (train a new --name instead)")
    _, config = saved_config(name, config, required=("arch", "data", "image_size"))
    for key, value in options.items():
        if value is not None and config.get(key) != value:
            raise ValueError(f"--{key.replace('_', '-')} {value} contradicts run {name}'s saved config "
                             f"({key} {config.get(key)}): --resume continues the run as it was configured")
    return train_config(config, name, progress, resume=True)


def train_config(config, name, progress=print, resume=False, exchange_weights=False):
    """Train the model of a complete run ``config`` into ``runs/<name>/`` (``resume``: from its
    checkpoint; ``exchange_weights``: also write ``TRAINED_WEIGHTS``); ``(run_path, model, data)``."""
    strategy_name = config.get("strategy", "default")
    if strategy_name == "multiworker" and not LEGACY_KERAS:
        return _train_in_tf_keras(config, name, resume, progress)
    task = get_task(config["task"])
    strategy = make_strategy(strategy_name)
    chief = is_chief_task(cluster()) if strategy_name == "multiworker" else True
    with worker_folder(run_path(name), chief) as path:
        model, data = _train_in_folder(task, strategy, config, name, path, resume, progress)
        if exchange_weights:
            save_layer_weights(model, os.path.join(path, TRAINED_WEIGHTS))
    return run_path(name), model, data


def _train_in_folder(task, strategy, config, name, path, resume, progress):
    """``train_config``'s work, writing to ``path`` (the run folder, or a non-chief worker's); ``(model, data)``."""
    size = config["image_size"]
    progress(f"loading {config['data']} at {size}x{size}")
    data = task.load_data(config)
    data_sections = task.data_report(data)
    if data_sections.get("skipped_files"):
        progress(f"skipped {len(data_sections['skipped_files'])} unreadable file(s): " +
                 ", ".join(f"{s['file']} ({s['reason']})" for s in data_sections["skipped_files"][:5]))
    labels = task.labels(data)
    config = {**config, "classes": task.classes(data)}
    if not resume:
        for folder in (CHECKPOINT_FOLDER, LOGS_FOLDER):
            shutil.rmtree(os.path.join(path, folder), ignore_errors=True)
    with strategy.scope():
        model = build_model(config)
    update_report(path, status="running", config=config)
    costs = profile(model)
    progress(f"training {model.name}: {costs['params']:,} parameters, {costs['macs'] / 1e6:.1f}M MACs, "
             f"{task.count(data, 'train')} training images, up to {config['epochs']} epochs on "
             f"{strategy.num_replicas_in_sync} replica(s)" + (" (resumed)" if resume else ""))
    resume_from = {"resume_from": os.path.join(run_path(name), CHECKPOINT_FOLDER)} if resume else {}
    start = time.perf_counter()
    try:
        with strategy.scope():
            model, history = task.fit(model, data, path, config, **resume_from)
    except TrainingInterrupted as stop:
        update_report(path, status="interrupted", training={"epochs_run": stop.epochs,
                                                            **_history_figures(stop.history)})
        raise
    seconds = time.perf_counter() - start
    write_text(os.path.join(path, "labels.txt"), "\n".join(labels) + "\n")
    plot_training_curves(history, os.path.join(path, "training_curves.png"), title=model.name)
    figures, sections = task.evaluate(model, data, config)
    fit_figures, fit_sections = task.fit_report(model, config, history)
    training = {"epochs_run": len(history["loss"]), "seconds": round(seconds, 1), **_history_figures(history),
                **figures, "train_images": task.count(data, "train"), "test_images": task.count(data, "test"),
                "replicas": strategy.num_replicas_in_sync, **fit_figures}
    progress(f"trained in {seconds:.0f} s: " + ", ".join(f"{key.replace('_', ' ')} {value:.4f}"
                                                          for key, value in figures.items()))
    update_report(path, status="complete", config=config,
                  model={"name": model.name, "params": costs["params"], "macs": costs["macs"]},
                  training=training, **fit_sections, **data_sections, **sections, figures=["training_curves.png"])
    return model, data


def _train_in_tf_keras(config, name, resume, progress):
    """Train a ``multiworker`` run in a tf_keras child process (see the module docstring); SIGINT /
    SIGTERM are passed on to it. The chief then writes the Keras 3 ``model.keras``."""
    command = [sys.executable, "-m", "mobilekit.jobs", name, json.dumps(config), *(["--resume"] if resume else [])]
    process = subprocess.Popen(command, env={**os.environ, "TF_USE_LEGACY_KERAS": "1"}, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = {s: signal.signal(s, lambda signum, frame: process.send_signal(signum)) for s in SIGNALS} \
        if main_thread else {}
    last = ["no output"]
    try:
        for line in process.stdout:
            last = [*last, line.rstrip()][-20:]
            progress(line.rstrip())
        code = process.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    path = run_path(name)
    if code in (128 + signal.SIGINT, 128 + signal.SIGTERM):
        state = read_checkpoint(os.path.join(path, CHECKPOINT_FOLDER)) or {}
        raise TrainingInterrupted(code - 128, state.get("epoch", 0), state.get("history"))
    if code:
        errors = [line for line in last if "error" in line.lower()] or last
        raise ValueError(f"multi-worker training under tf_keras failed (exit {code}): {errors[-1]}")
    task = get_task(config["task"])
    data = task.load_data(config)
    if not is_chief_task(cluster()):
        return path, None, data
    model = build_model({**config, "classes": task.classes(data), "weights": None})
    load_layer_weights(model, os.path.join(path, TRAINED_WEIGHTS))
    with atomic_output(os.path.join(path, "model.keras")) as tmp:
        model.save(tmp)
    os.remove(os.path.join(path, TRAINED_WEIGHTS))
    return path, model, data


def saved_config(name, config, required=("data", "image_size")):
    """``(task, config)`` of run ``name``'s saved ``config`` (from its report.json): its values must have
    the types of the task's defaults, the keys ``required`` must be there (what is never filled in from
    defaults), training options it lacks take their defaults. A config damaged or edited by hand is a
    one-line error naming the file."""
    where = f"run {name}'s config in {os.path.join(run_path(name), 'report.json')}"
    task = config.get("task", "classify")
    if not isinstance(task, str) or task not in TASKS:
        raise ValueError(f"{where} has task {task!r}: expected one of {', '.join(TASKS)}")
    task = TASKS[task]
    missing = [key for key in required if key not in config]
    if missing:
        raise ValueError(f"{where} lacks {', '.join(missing)}: expected the config `mobilekit train` writes")
    for key, default in task.defaults.items():
        value = config.get(key, default)
        kinds = (int, float) if isinstance(default, float) else type(default)
        if isinstance(value, bool) != isinstance(default, bool) or not isinstance(value, kinds):
            raise ValueError(f"{where} has {key} {value!r}: expected a value of the type of its default {default!r} "
                             f"({type(default).__name__})")
    return task, {**{key: value for key, value in task.defaults.items() if key in task.options}, **config}


def check_quantizations(quantizations, allowed, what):
    """``quantizations``, each one of ``allowed``, or a one-line error saying ``what`` they are for."""
    unknown = [q for q in quantizations if q not in allowed]
    if unknown:
        raise ValueError(f"--quantization {' '.join(unknown)} does not apply to {what}: expected some of "
                         f"{', '.join(allowed)}")
    return tuple(quantizations)


def with_metadata(model_bytes, task, labels, name, quantization, input_range="0,255"):
    """``model_bytes`` with TFLite Model Metadata (``tflite.metadata``): the run's name, what the file is, the
    input normalization of ``input_range`` (the kit's models take pixels 0..255) and the labels."""
    mean, std = normalization(input_range)
    return add_metadata(model_bytes, name=name, description=f"{get_task(task).summary}, {quantization}, "
                                                            f"exported by mobilekit", version=kit_version(),
                        task=task, labels=labels, input_mean=(mean,), input_std=(std,), author="mobilekit")


def kit_version():
    """The installed kit's version (``setup.cfg``), for the files it writes."""
    try:
        return importlib.metadata.version("mobilekit")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def export(name, quantizations=("fp32", "int8"), progress=print):
    """Convert the trained ``runs/<name>/model.keras`` and validate each file on the test split.

    Writes ``model_<quantization>.tflite`` and the report's ``export`` section; returns its rows.
    """
    path, config, model = load_trained_run(name)
    task, config = saved_config(name, config)
    quantizations = check_quantizations(quantizations, task.quantizations, task.name)
    try:
        data = task.load_data(config)
    except ValueError as error:
        if not is_input_error(error):
            raise
        raise ValueError(f"run {name}'s data: {error}") from error
    reference = task.reference(model, data, config)
    rows = []
    for quantization in quantizations:
        progress(f"converting to {quantization}")
        model_bytes = with_metadata(task.convert(model, config, data, quantization), task.name, task.labels(data),
                                    name, quantization)
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

    Batch norm statistics are first set to those of crops of scikit-image's photos
    (``models.batch_statistics``; at their initial statistics an untrained network's activations
    fade, to ~1e-11 in MobileNetV2, which int16x8 cannot hold), and int8 / int16x8 are calibrated
    on the same photos, so activation ranges are those of real images. Files go to ``runs/<name>/``.
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
    photos = sample_photos(image_size, count=32).astype(np.float32)
    calibrate_batch_norm(model, photos[:BATCH_NORM_IMAGES])
    files = []
    for quantization in quantizations:
        progress(f"converting {model.name} to {quantization}")
        files.append(os.path.join(path, f"{arch}_{quantization}.tflite"))
        write_bytes(files[-1], convert(model, quantization, representative_data=photos))
    update_report(path, config=config)
    return bench_files(files, runs=runs, warmup=warmup, threads=threads, rounds=rounds, name=name, progress=progress)


def main(argv=None):
    """``python -m mobilekit.jobs NAME CONFIG_JSON [--resume]``: ``train_config`` in this process (the
    tf_keras child of a multi-worker run); exits 0, 2 on bad input, 128 + signal when interrupted."""
    name, config, *flags = sys.argv[1:] if argv is None else argv
    try:
        train_config(json.loads(config), name, resume="--resume" in flags, exchange_weights=True)
    except TrainingInterrupted as stop:
        print(stop, flush=True)
        return stop.exit_code
    except (ValueError, OSError) as error:
        print(f"error: {' '.join(str(error).split())}", flush=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
