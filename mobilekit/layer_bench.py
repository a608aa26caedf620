"""Time layers against the layers they replace, in TFLite fp32 and int8, side by side.

For every shape of a suite (``mobilekit.suites``), each candidate becomes a one-block model,
is converted (int8 calibrated on Gaussian inputs) and timed by ``tflite.bench.benchmark``
together with the other candidates of that shape and quantization, in interleaved rounds.
Rows report parameters, MACs, median latency, and the speed-up and parameter reduction
against the suite's baseline (the first candidate). A suite may also define
``host_rows(shape, runs, rounds, progress)`` returning rows of the same keys for kernels
timed in this process (its own baseline included). A suite that compares quantizations of one
network rather than layers sets ``COMPARE = "quantization"``: each candidate's files are then timed
together and compared with its first quantization. ``calibration_data(shape)`` (default: 16
Gaussian inputs) and ``convert(model, quantization, data)`` (default ``tflite.converter.convert``)
override how candidates are calibrated and converted. Writes ``runs/bench_<suite>/``: the
``.tflite`` files, ``report.json``/``report.md`` and ``layer_bench.png``.
"""
import os

import numpy as np

from mobilekit.plots import new_figure, save_figure
from mobilekit.runs import run_dir, update_report
from mobilekit.suites import load_suite
from models.files import write_bytes
from models.profile import profile
from tflite.bench import benchmark
from tflite.converter import convert


def _shape_tag(shape):
    return "x".join(str(d) for d in shape)


def _gaussian_inputs(shape):
    return np.random.default_rng(0).standard_normal((16, *shape)).astype(np.float32)


def _convert_candidates(suite, shape, quantizations, path, progress):
    data = getattr(suite, "calibration_data", _gaussian_inputs)(shape)
    to_tflite = getattr(suite, "convert", lambda model, quantization, data: convert(model, quantization,
                                                                                 representative_data=data))
    entries = []
    for label, build in suite.candidates(shape):
        model = build()
        costs = profile(model)
        for quantization in quantizations:
            progress(f"converting {label} at {_shape_tag(shape)} to {quantization}")
            file = os.path.join(path, f"{_shape_tag(shape)}_{label}_{quantization}.tflite")
            write_bytes(file, to_tflite(model, quantization, data))
            entries.append({"shape": _shape_tag(shape), "layer": label, "quantization": quantization,
                            "params": costs["params"], "macs": costs["macs"], "file": file})
    return entries


def plot_speedups(rows, path, title):
    """Bars of speed-up over the baseline, one group per shape and quantization."""
    groups = list(dict.fromkeys((row["shape"], row["quantization"]) for row in rows))
    labels = list(dict.fromkeys(row["layer"] for row in rows))
    figure, axis = new_figure(figsize=(max(6, 1.6 * len(groups)), 3.5))
    width = 0.8 / len(labels)
    for i, label in enumerate(labels):
        values = [next((r["speedup"] for r in rows if (r["shape"], r["quantization"]) == g and r["layer"] == label),
                       np.nan) for g in groups]
        axis.bar(np.arange(len(groups)) + i * width, values, width, label=label)
    axis.set_xticks(np.arange(len(groups)) + 0.4 - width / 2, [f"{s}\n{q}" for s, q in groups])
    axis.set_yscale("log")
    axis.set_ylabel("speed-up over baseline")
    axis.axhline(1.0, color="black", linewidth=0.8)
    axis.legend(fontsize=8)
    axis.set_title(title)
    save_figure(figure, path)


def run_suite(name, quantizations=("fp32", "int8"), runs=30, warmup=3, threads=2, rounds=3, progress=print):
    """Run benchmark suite ``name``; return its rows (see the module docstring)."""
    suite = load_suite(name)
    path = run_dir(f"bench_{name}")
    rows = []
    shared = "layer" if getattr(suite, "COMPARE", "layer") == "quantization" else "quantization"  # by a group
    for shape in suite.SHAPES:
        entries = _convert_candidates(suite, tuple(shape), quantizations, path, progress)
        for key in dict.fromkeys(entry[shared] for entry in entries):
            group = [e for e in entries if e[shared] == key]
            timings = benchmark([e["file"] for e in group], runs=runs, warmup=warmup, threads=threads,
                                rounds=rounds, progress=progress)
            for entry, timing in zip(group, timings):
                rows.append({**entry, "file": os.path.basename(entry["file"]), "median_ms": timing["median_ms"],
                             "p90_ms": timing["p90_ms"], "size_bytes": timing["size_bytes"],
                             "speedup": 1.0 / timing["latency_ratio"],
                             "param_reduction": group[0]["params"] / max(entry["params"], 1)})
        if hasattr(suite, "host_rows"):  # kernels timed in this process (e.g. NumPy), not as .tflite files
            rows += suite.host_rows(tuple(shape), runs=runs, rounds=rounds, progress=progress)
    plot_speedups(rows, os.path.join(path, "layer_bench.png"), getattr(suite, "DESCRIPTION", name))
    update_report(path, suite={"name": name, "description": getattr(suite, "DESCRIPTION", ""),
                               "threads": threads, "runs": runs},
                  layers=rows, figures=["layer_bench.png"])
    return rows
