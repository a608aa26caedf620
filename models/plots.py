"""PNG figures of training runs (matplotlib, no display needed)."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from models.files import atomic_output  # noqa: E402


def save_figure(figure, path):
    """Save a matplotlib figure as PNG atomically and close it."""
    with atomic_output(path) as tmp:
        figure.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(figure)


def plot_training_curves(history, path, title="training"):
    """Loss and accuracy per epoch, training vs validation, side by side."""
    figure, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for axis, metric in zip(axes, ("loss", "accuracy")):
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
