"""Figures and re-rendering of a run's report (``mobilekit report``)."""
import os

import numpy as np

from mobilekit.plots import new_figure, save_figure
from mobilekit.runs import load_report, update_report
from mobilekit.tasks import get_task

TRADEOFF_PNG = "tradeoffs.png"


def plot_tradeoffs(rows, path, title, quality):
    """Bars of ``quality`` (the export rows' quality key and its label), median latency and file
    size, one bar per exported model."""
    names = [row["quantization"] for row in rows]
    panels = [(*quality, 1.0), ("median_ms", "median latency (ms)", 1.0),
              ("size_bytes", "file size (MB)", 1e-6)]
    figure, axes = new_figure(1, len(panels), figsize=(10, 3.2))
    for axis, (key, label, scale) in zip(axes, panels):
        values = np.array([row.get(key, np.nan) for row in rows], np.float64) * scale
        bars = axis.bar(names, values, color=["#4c72b0", "#dd8452", "#55a868", "#c44e52"][:len(rows)])
        axis.bar_label(bars, fmt="%.3g")
        axis.set_title(label)
        if key == quality[0]:
            axis.set_ylim(max(0.0, np.nanmin(values) - 0.1), 1.0)
    figure.suptitle(title, y=1.04)
    save_figure(figure, path)


def exported_rows(report):
    """Join the export and bench sections of a report: one row per quantization."""
    timings = {os.path.basename(row["model"]): row for row in report.get("bench", [])}
    return [{**row, **timings.get(row["file"], {})} for row in report.get("export", [])]


def render(path):
    """Re-render ``report.md`` and the trade-off figure of run folder ``path``."""
    report = load_report(path)
    if not report:
        raise FileNotFoundError(f"no report.json in {path}")
    rows = exported_rows(report)
    figures = list(report.get("figures", []))
    if rows:
        task = get_task(report.get("config", {}).get("task", "classify"))
        plot_tradeoffs(rows, os.path.join(path, TRADEOFF_PNG), os.path.basename(os.path.abspath(path)), task.quality)
        figures = list(dict.fromkeys([*figures, TRADEOFF_PNG]))
    return update_report(path, figures=figures)
