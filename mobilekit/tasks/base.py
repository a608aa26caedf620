"""What the three applications share: the ``Task`` a job asks for everything task-specific.

A task states its defaults once (``defaults``: the training options and the default
architecture's builder arguments), loads its data, fits a built model, evaluates it (accuracy,
mAP, mIoU), converts and validates exported files (rows of one shape: ``quantization``,
``file``, ``size_bytes``, ``keras_<metric>``, ``tflite_<metric>``, ``ops``), and chooses the
demo clip of the quickstart. The jobs (``mobilekit.jobs``), the quickstart and the CLI read
tasks; none of them branches on a task's name.
"""
import numpy as np

from models.registry import architecture, backbones, names

# Numeric options that must be above zero (sizes, counts, rates), and those that may be zero.
POSITIVE = ("image_size", "alpha", "output_stride", "epochs", "batch_size", "learning_rate", "train_images",
            "validation_images", "test_images")
NOT_NEGATIVE = ("patience", "seed", "freeze_epochs")


class Task:
    """Base of the classify, detect and segment tasks (see the module docstring).

    Subclasses set the class attributes and implement the methods that raise here.
    """

    name = ""
    summary = ""
    data_help = ""
    defaults = {}
    # The options a task's training takes besides ``defaults``' builder arguments.
    options = ("data", "image_size", "epochs", "batch_size", "learning_rate", "seed", "weights")
    resumable = False  # whether ``fit`` writes a per-epoch checkpoint that ``mobilekit train --resume`` continues
    quantizations = ("fp32", "fp16", "dynamic", "int8", "int16x8")
    quality = ("tflite_accuracy", "test accuracy")  # the export rows' quality figure and its label
    quickstart_name = ""
    clip = {"name": "test_images.avi", "title": "", "frames": 40, "frame_size": 160}

    def config(self, options):
        """The run config of user ``options`` (None: not given) on top of ``defaults``.

        A flag that means nothing for this task or for the chosen architecture, or a number out of
        range (``POSITIVE``, ``NOT_NEGATIVE``), is a one-line error, not ignored; the task's defaults
        for builder arguments the chosen architecture does not take are dropped.
        """
        options = {key: value for key, value in options.items() if value is not None}
        for key, value in options.items():
            if (key in POSITIVE and not value > 0) or (key in NOT_NEGATIVE and not value >= 0):
                raise ValueError(f"--{key.replace('_', '-')} {value} is out of range: expected a number "
                                 f"{'>= 0' if key in NOT_NEGATIVE else '> 0'}")
        arch = options.get("arch", self.defaults["arch"])
        arguments = architecture(arch, self.name).arguments
        for key in options:
            if key != "arch" and key not in self.options and key not in arguments:
                raise ValueError(f"--{key.replace('_', '-')} does not apply to {self.name} with --arch {arch}: "
                                 f"expected options among {', '.join(self.flags(arch))}")
        if "backbone" in options:
            if options["backbone"] not in backbones():
                raise ValueError(f"--backbone {options['backbone']} is not a backbone with feature taps: expected one "
                                 f"of {', '.join(backbones())}")
        defaults = {key: value for key, value in self.defaults.items()
                    if key in self.options or key in arguments or key == "arch"}
        return {"task": self.name, **defaults, **options}

    def architectures(self):
        """The names of the registered architectures of this task."""
        return names(self.name)

    def flags(self, arch):
        """The options (``--name`` form) of the command line that apply to this task with ``arch``:
        the task's own and the builder arguments the task has defaults for."""
        arguments = [key for key in architecture(arch, self.name).arguments if key in self.defaults]
        keys = dict.fromkeys(("arch", *self.options, *arguments))
        return [f"--{key.replace('_', '-')}" for key in keys]

    def quickstart_config(self, config):
        """The config ``mobilekit quickstart`` trains with (``config`` unless the task says otherwise)."""
        return config

    def load_data(self, config):
        """The ``train`` / ``validation`` / ``test`` splits and class names of ``config["data"]``."""
        raise NotImplementedError

    def data_report(self, data):
        """Report sections about the loaded data (skipped files, counts per class), none by default."""
        return {}

    def labels(self, data):
        """The label names the model's outputs stand for (``labels.txt``)."""
        raise NotImplementedError

    def classes(self, data):
        """The ``classes`` argument of the builder for ``data``."""
        return len(self.labels(data))

    def count(self, data, split):
        """The number of images in ``split``."""
        raise NotImplementedError

    def fit(self, model, data, path, config):
        """Train ``model`` with the task's recipe, writing ``path/model.keras``; ``(model, history)``.

        A ``resumable`` task's ``fit`` also takes ``resume_from``, the checkpoint folder to continue from.
        """
        raise NotImplementedError

    def fit_report(self, model, config, history):
        """Figures for the report's training section and extra sections about the fit: ``(figures, sections)``."""
        return {}, {}

    def evaluate(self, model, data, config):
        """The training report's test figures and extra sections: ``(figures, sections)``."""
        raise NotImplementedError

    def reference(self, model, data, config):
        """What validating each exported file needs from the Keras model (computed once)."""
        return None

    def calibration_data(self, data):
        """The samples of the model's input (no batch axis) its int8 file is calibrated on; ``None`` when
        that file is more than the Keras model converted (a detector's post-processing op)."""
        return None

    def convert(self, model, config, data, quantization):
        """The ``.tflite`` bytes of ``model`` at ``quantization``."""
        raise NotImplementedError

    def validate(self, model_bytes, model, data, reference):
        """``keras_<metric>`` and ``tflite_<metric>`` figures (and agreement) of one exported file."""
        raise NotImplementedError

    def describe(self, row):
        """One line about an exported file's row."""
        raise NotImplementedError

    def clip_images(self, data):
        """``(uint8 images, labels or None)`` of the quickstart's demo clip."""
        raise NotImplementedError

    def demo_figures(self, summary, labels):
        """Task figures of a demo run over the clip (``summary`` of ``demo_app.run_demo``)."""
        return {}


def uint8_images(images):
    """Float images in [0, 1] as uint8 pixels."""
    return np.round(np.asarray(images) * 255).astype(np.uint8)
