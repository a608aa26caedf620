"""``mobilekit export NAME --int8-report`` and ``--float-layers`` / ``--float-worst``: which layers of a
trained run int8 quantizes badly, and an int8 file with layers kept float.

The per-layer figures come from TensorFlow's Quantization Debugger on the images the run's int8
file is calibrated on (``tflite.int8_debug``; TensorFlow's guide "Inspecting Quantization Errors
with Quantization Debugger"). Writes into ``runs/<name>/``:

    int8_report.json             every quantized layer's row, in graph order
    int8_report.png              rmse/scale and range per layer in graph order, the worst and the
                                 layers kept float highlighted
    report.json / report.md      ``int8_layers`` (a summary), ``int8_worst_layers`` (the worst rows)

and, when layers are kept float (the report is written too):

    model_int8_selective.tflite  those layers float, the rest int8, float32 input and output, with
                                 the run's metadata like the other files
    report.json / report.md      ``int8_float_layers`` (the layers kept float) and ``int8_selective``:
                                 the file validated on the test split like ``export``'s files and
                                 timed against ``model_fp32.tflite`` / ``model_int8.tflite`` where they exist

It works for the tasks whose int8 file is the Keras model converted alone (``Task.calibration_data``:
classify, segment); a detector's file adds a post-processing op, so its runs are refused.
"""
import json
import os

import numpy as np

from mobilekit.jobs import with_metadata
from mobilekit.plots import new_figure, save_figure
from mobilekit.runs import load_report, load_trained_run, update_report
from mobilekit.tasks import get_task
from models.files import write_bytes, write_text
from tflite.bench import benchmark
from tflite.int8_debug import (IDEAL_RMSE_SCALE, SUSPECT_RMSE_SCALE, int8_layer_report, selective_int8,
                               worst_layers)

REPORT_FILE = "int8_report.json"
PLOT_FILE = "int8_report.png"
SELECTIVE_FILE = "model_int8_selective.tflite"
COMPARED_FILES = ("model_fp32.tflite", "model_int8.tflite")  # timed against the selective file when present
WORST_SHOWN = 5  # rows of the report's int8_worst_layers section, highlighted in the plot
SUMMARY_KEYS = ("index", "layers", "op", "rmse_scale", "range", "max_abs_error", "tensor")


def _label(row):
    """A short name of a report row: its Keras layers and op (the tensor name when no layer matched)."""
    return f"{'+'.join(row['layers']) or row['tensor']} {row['op']}"


def plot_int8_report(rows, path, title, kept=()):
    """rmse/scale (top) and range (bottom) of each report row in graph order, as the guide plots them; the
    ``WORST_SHOWN`` worst rows in red, rows of the tensors ``kept`` float in green, both numbered and named."""
    worst = {row["index"] for row in worst_layers(rows, WORST_SHOWN)}
    colors = ["#55a868" if row["tensor"] in kept else "#c44e52" if row["index"] in worst else "#4c72b0"
              for row in rows]
    figure, axes = new_figure(2, 1, figsize=(max(8.0, 0.09 * len(rows)), 6.5))
    for axis, key, label in ((axes[0], "rmse_scale", "rmse / scale"), (axes[1], "range", "range (255 x scale)")):
        axis.bar(np.arange(len(rows)), [row[key] for row in rows], color=colors, width=0.8)
        axis.set_ylabel(label)
        axis.grid(axis="y", alpha=0.3)
    axes[0].axhline(IDEAL_RMSE_SCALE, color="gray", linestyle=":", label=f"rounding only ({IDEAL_RMSE_SCALE:.3f})")
    axes[0].axhline(SUSPECT_RMSE_SCALE, color="black", linestyle="--", label=f"guide's cut ({SUSPECT_RMSE_SCALE})")
    named = [row for row in rows if row["index"] in worst or row["tensor"] in kept]
    for row in named:
        axes[0].annotate(str(row["index"]), (row["index"], row["rmse_scale"]), ha="center", fontsize=7,
                         xytext=(0, 2), textcoords="offset points")
    axes[0].text(1.01, 1.0, "\n".join(f"{row['index']}: {_label(row)}" for row in named), fontsize=7, va="top",
                 transform=axes[0].transAxes)
    axes[0].set_title(f"{title}: int8 error per layer (red: worst {WORST_SHOWN}" + (", green: kept float)" if kept
                                                                                    else ")"))
    axes[0].set_ylim(0, 1.25 * max(SUSPECT_RMSE_SCALE, *(row["rmse_scale"] for row in rows)))
    axes[0].legend(fontsize=7, loc="upper right")
    axes[1].set_xlabel("quantized layer, graph order")
    save_figure(figure, path)


def _summary(rows, calibration_images):
    """The report's ``int8_layers`` section."""
    errors = [row["rmse_scale"] for row in rows]
    return {"layers": len(rows), "calibration_images": calibration_images,
            "median_rmse_scale": float(np.median(errors)), "max_rmse_scale": max(errors),
            f"layers_above_{SUSPECT_RMSE_SCALE}": sum(error > SUSPECT_RMSE_SCALE for error in errors),
            "details": REPORT_FILE}


def _compare(path, task, model, data, config, rows, kept, runs, progress):
    """Validate and time the selective file against the run's fp32 / int8 files; the ``int8_selective`` rows."""
    files = [f for f in COMPARED_FILES if os.path.isfile(os.path.join(path, f))] + [SELECTIVE_FILE]
    reference = task.reference(model, data, config)
    floats = {"model_fp32.tflite": len(rows), "model_int8.tflite": 0, SELECTIVE_FILE: len(kept)}
    table = []
    for file_name in files:
        with open(os.path.join(path, file_name), "rb") as f:
            model_bytes = f.read()
        progress(f"validating {file_name} against the Keras model on {task.count(data, 'test')} test images")
        table.append({"file": file_name, "float_layers": floats[file_name], "size_bytes": len(model_bytes),
                      **task.validate(model_bytes, model, data, reference)})
    timings = benchmark([os.path.join(path, f) for f in files], runs=runs, progress=progress)
    for row, timing in zip(table, timings):
        row.update(median_ms=timing["median_ms"], latency_ratio=timing["latency_ratio"])
        progress(f"{task.describe(row)}, median {row['median_ms']:.3f} ms")
    return table


def diagnose(name, float_layers=(), float_worst=0, runs=20, progress=print):
    """The int8 report of trained run ``name`` and, with ``float_layers`` (tensor names of the report) or
    ``float_worst`` (that many of the highest rmse/scale), ``SELECTIVE_FILE`` with them kept float,
    validated and timed (``runs`` timed invocations per file). See the module docstring; returns the report."""
    path, config, model = load_trained_run(name)
    task = get_task(config.get("task", "classify"))
    data = task.load_data(config)
    samples = task.calibration_data(data)
    if samples is None:
        raise ValueError(f"--int8-report / --float-layers / --float-worst do not apply to a {task.name} run: its int8 "
                         f"file is more than the Keras model converted (expected a run whose task calibrates it)")
    selective = bool(float_layers or float_worst)
    progress(f"measuring the int8 error of each layer on {len(samples)} calibration images "
             f"(TensorFlow's quantization debugger)" + (", then keeping layers float" if selective else ""))
    if selective:
        model_bytes, kept, rows = selective_int8(model, samples, float_layers, float_worst,
                                                 calibration_steps=len(samples))
    else:
        rows, kept = int8_layer_report(model, samples, calibration_steps=len(samples)), []
    write_text(os.path.join(path, REPORT_FILE), json.dumps({"run": name, "calibration_images": len(samples),
                                                            "layers": rows}, indent=1) + "\n")
    plot_int8_report(rows, os.path.join(path, PLOT_FILE), name, kept)
    worst = [{key: row[key] for key in SUMMARY_KEYS} for row in worst_layers(rows, WORST_SHOWN)]
    for row in worst:
        progress(f"rmse/scale {row['rmse_scale']:.3f}: layer {row['index']} {_label(row)}")
    sections = {"int8_layers": _summary(rows, len(samples)), "int8_worst_layers": worst}
    if selective:
        model_bytes = with_metadata(model_bytes, task.name, task.labels(data), name,
                                    f"int8 with {len(kept)} layer(s) float")
        write_bytes(os.path.join(path, SELECTIVE_FILE), model_bytes)
        progress(f"{SELECTIVE_FILE}: kept float " + ", ".join(f"layer {row['index']} {_label(row)}" for row in rows
                                                               if row["tensor"] in kept))
        sections["int8_float_layers"] = [{key: row[key] for key in SUMMARY_KEYS} for row in rows
                                         if row["tensor"] in kept]
        sections["int8_selective"] = _compare(path, task, model, data, config, rows, kept, runs, progress)
    figures = list(dict.fromkeys([*load_report(path).get("figures", []), PLOT_FILE]))
    return update_report(path, **sections, figures=figures)
