"""PNG figures of runs, drawn with matplotlib's object-oriented API.

``new_figure`` makes a ``matplotlib.figure.Figure`` directly (the Agg canvas renders it on
``savefig``), so importing this module switches no global backend and needs no display.
"""
import numpy as np
from matplotlib.figure import Figure

from models.files import atomic_output


def new_figure(rows=1, columns=1, figsize=(7, 4.5)):
    """``(figure, axes)`` as ``pyplot.subplots`` returns them, without pyplot's global state."""
    figure = Figure(figsize=figsize)
    return figure, figure.subplots(rows, columns, squeeze=True)


def save_figure(figure, path):
    """Save a figure as PNG atomically."""
    with atomic_output(path) as tmp:
        figure.savefig(tmp, dpi=110, bbox_inches="tight", format="png")


CURVES = ("loss", "accuracy", "miou")  # the metrics a training history may hold, one panel each


def plot_training_curves(history, path, title="training"):
    """Each metric of ``CURVES`` in ``history`` per epoch, training vs validation, side by side."""
    metrics = [m for m in CURVES if m in history or f"val_{m}" in history]
    figure, axes = new_figure(1, len(metrics), figsize=(4.5 * len(metrics), 3.5))
    for axis, metric in zip(np.atleast_1d(axes), metrics):
        for prefix, style in (("", "-"), ("val_", "--")):
            if prefix + metric in history:
                axis.plot(range(1, len(history[prefix + metric]) + 1), history[prefix + metric], style,
                          label=(prefix or "train_") + metric)
        axis.set_xlabel("epoch")
        axis.set_title(metric)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(title)
    save_figure(figure, path)
