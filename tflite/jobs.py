"""The ``mobilekit export`` and ``mobilekit bench`` jobs."""
import os

from keras_layers.keras_api import keras
from models.data import load_dataset, sample_photos
from models.files import write_bytes
from models.registry import build, width_arguments
from models.runs import load_report, run_dir, update_report
from models.train import with_preprocessing
from tflite.bench import benchmark
from tflite.converter import convert
from tflite.inspect import operator_names
from tflite.validation import validate


def load_trained_run(name, task_flag=""):
    """``(path, config, model)`` of the trained run ``runs/<name>/``, or a one-line error naming the
    ``mobilekit train`` command (with ``task_flag``, e.g. ``--task detect``) that makes it."""
    path = os.path.join("runs", name)
    model_path = os.path.join(path, "model.keras")
    if not os.path.isfile(model_path):
        command = " ".join(filter(None, ["mobilekit train", task_flag, f"--name {name}"]))
        raise FileNotFoundError(f"no trained model at {model_path}: run `{command}` first")
    return path, load_report(path).get("config", {}), keras.models.load_model(model_path)


def export(name, quantizations=("fp32", "int8"), progress=print):
    """Convert the trained ``runs/<name>/model.keras`` and validate each file on the test split.

    Calibration (int8) uses the training split; writes ``model_<quantization>.tflite`` and
    the report's ``export`` section. Returns the section's rows.
    """
    path, config, model = load_trained_run(name)
    dataset = load_dataset(config.get("data", "digits"), config.get("image_size", model.inputs[0].shape[1]),
                           seed=config.get("seed", 0))
    rows = []
    for quantization in quantizations:
        progress(f"converting to {quantization}")
        model_bytes = convert(model, quantization, representative_data=dataset.train[0])
        file_name = f"model_{quantization}.tflite"
        write_bytes(os.path.join(path, file_name), model_bytes)
        progress(f"validating {file_name} against the Keras model on {len(dataset.test[1])} test images")
        check = validate(model_bytes, model, *dataset.test)
        rows.append({"quantization": quantization, "file": file_name, "size_bytes": len(model_bytes),
                     **check, "ops": " ".join(operator_names(model_bytes))})
    update_report(path, export=rows)
    return rows


def bench_files(paths, runs=50, warmup=5, threads=2, rounds=3, name=None, progress=print):
    """Time existing ``.tflite`` files side by side; with ``name``, add them to that run's report."""
    rows = benchmark(paths, runs=runs, warmup=warmup, threads=threads, rounds=rounds, progress=progress)
    if name:
        update_report(run_dir(name), bench=rows)
    return rows


def bench_architecture(arch="mobilenet_v2", alpha=1.0, image_size=224, classes=1000,
                       quantizations=("fp32", "int8"), name=None, progress=print, **timing):
    """Build ``arch`` untrained, convert it to each quantization and time the files side by side.

    int8 is calibrated on crops of scikit-image's photos, so its activation ranges are those
    of real images. Files go to ``runs/<name>/``.
    """
    width = width_arguments(arch, alpha)
    name = name or "_".join(["bench", arch, *(f"{alpha:g}" for alpha in width.values()), str(image_size)])
    path = run_dir(name)
    model = with_preprocessing(build(arch, input_shape=(image_size, image_size, 3), classes=classes, **width))
    photos = sample_photos(image_size, count=32)
    files = []
    for quantization in quantizations:
        progress(f"converting {model.name} to {quantization}")
        files.append(os.path.join(path, f"{arch}_{quantization}.tflite"))
        write_bytes(files[-1], convert(model, quantization, representative_data=photos))
    update_report(path, config={"arch": arch, **width, "image_size": image_size, "classes": classes})
    return bench_files(files, name=name, progress=progress, **timing)
