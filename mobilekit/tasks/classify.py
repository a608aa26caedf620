"""Image classification: the digits or a user's image folder, top-1 accuracy, the kit's default task.

Its training also fine-tunes pretrained weights in two phases (``--weights``, ``--freeze-epochs``),
runs under a ``tf.distribute`` strategy (``--strategy``) and is resumable (``--resume``): see
``models.train``, ``models.distribute`` and ``mobilekit.jobs``.
"""
import os

import numpy as np

from mobilekit.runs import CHECKPOINT_FOLDER, LOGS_FOLDER
from mobilekit.tasks.base import Task
from models.data import default_augmentations, load_dataset
from models.distribute import check_strategy
from models.input_pipeline import parse_augmentations
from models.train import (check_freeze_epochs, default_freeze_epochs, evaluate_accuracy, pretrained_layers,
                          train_classifier, training_phases)
from tflite.converter import QUANTIZATIONS, convert
from tflite.validation import validate_batches


CALIBRATION_IMAGES = 200
VALIDATION_BATCH = 512  # exported files are checked on the test split this many images at a time


class Classify(Task):
    """Classifiers: pixels in, class probabilities out (``models.train.train_classifier``)."""

    name = "classify"
    summary = "image classification (top-1 accuracy)"
    data_help = "'digits', 'shapes', 'patterns' or a folder with one sub-folder of images per class"
    defaults = {"arch": "mobilenet_v2", "data": "digits", "image_size": 48, "alpha": 0.35, "epochs": 40,
                "batch_size": 64, "learning_rate": 3e-3, "patience": 10, "seed": 0, "strategy": "default"}
    options = (*Task.options, "patience", "strict", "augment", "freeze_epochs", "strategy")
    resumable = True
    quantizations = QUANTIZATIONS
    quality = ("tflite_accuracy", "test accuracy")
    quickstart_name = "quickstart"
    clip = {"name": "test_digits.avi", "title": "demo: int8 model on held-out digits", "frames": 60,
            "frame_size": 160}

    def quickstart_config(self, config):
        """The cosine schedule runs to its end (patience = epochs): on the digits' 270 validation
        images early stopping fired while the rate was still high and cost test accuracy (95.9%
        vs 99.6% in one run)."""
        return {**config, "patience": config["epochs"]}

    def config(self, options):
        """``freeze_epochs`` needs ``weights`` and defaults to ``models.train.default_freeze_epochs``
        with them; the config records the value, so a resumed run keeps its phases."""
        config = super().config(options)
        check_strategy(config["strategy"])
        config["augment"] = list(parse_augmentations(config.get("augment", default_augmentations(config["data"]))))
        if not config.get("weights"):
            if config.get("freeze_epochs"):
                raise ValueError(f"--freeze-epochs {config['freeze_epochs']} needs --weights: without pretrained "
                                 f"layers there is nothing to freeze")
            return config
        freeze_epochs = config.get("freeze_epochs", default_freeze_epochs(config["epochs"]))
        return {**config, "freeze_epochs": check_freeze_epochs(freeze_epochs, config["epochs"])}

    def load_data(self, config):
        return load_dataset(config["data"], config["image_size"], seed=config["seed"],
                            strict=config.get("strict", False))

    def data_report(self, data):
        """An image folder's split, the images per class and split, and the files skipped as unreadable."""
        if not data.info:
            return {}
        info = data.info
        sections = {"data": {"split": info["note"], "skipped_files": info["skipped_count"]},
                    "class_counts": [{"class": name, **counts} for name, counts in info["class_counts"].items()]}
        if info["skipped"]:
            sections["skipped_files"] = info["skipped"]
        return sections

    def labels(self, data):
        return list(data.class_names)

    def count(self, data, split):
        return getattr(data, split).size

    def fit(self, model, data, path, config, resume_from=None):
        return train_classifier(model, data, path, epochs=config["epochs"], batch_size=config["batch_size"],
                                learning_rate=config["learning_rate"], patience=config["patience"],
                                seed=config["seed"], augment=config.get("augment", ()), freeze_epochs=config.get("freeze_epochs", 0),
                                checkpoint_dir=os.path.join(path, CHECKPOINT_FOLDER),
                                log_dir=os.path.join(path, LOGS_FOLDER), resume_from=resume_from)

    def fit_report(self, model, config, history):
        """Where the weights came from (with counts of the layers loaded and initialized) and one row
        per training phase."""
        record = getattr(model, "pretrained", None)
        figures = {} if not record else {"weights_source": str(record["source"]),
                                         "layers_loaded": len(record["loaded"]),
                                         "layers_initialized": len(record["initialized"])}
        epochs_run = len(history.get("loss", []))
        phases = training_phases(config["epochs"], config["learning_rate"], config.get("freeze_epochs", 0),
                                 pretrained_layers(model))
        rows = [{"phase": p.name, "epochs": f"{p.first_epoch + 1}-{p.end_epoch}", "learning_rate": p.learning_rate,
                 "frozen_layers": len(p.frozen),
                 "epochs_run": min(max(epochs_run - p.first_epoch, 0), p.end_epoch - p.first_epoch)} for p in phases]
        return figures, {"phases": rows}

    def evaluate(self, model, data, config):
        return {"test_accuracy": evaluate_accuracy(model, data.test)}, {}

    def calibration_data(self, data):
        """``CALIBRATION_IMAGES`` training images spread over the split (a folder's split lies in class order)."""
        spread = np.linspace(0, data.train.size - 1, min(CALIBRATION_IMAGES, data.train.size)).astype(np.int64)
        return data.train.select(spread).take()

    def convert(self, model, config, data, quantization):
        """int8 is calibrated on ``calibration_data``."""
        return convert(model, quantization, representative_data=self.calibration_data(data),
                       calibration_steps=CALIBRATION_IMAGES)

    def validate(self, model_bytes, model, data, reference):
        return validate_batches(model_bytes, model, data.test.batches(VALIDATION_BATCH))

    def describe(self, row):
        return (f"{row['file']}: {row['size_bytes'] / 1e6:.2f} MB, accuracy {row['tflite_accuracy']:.4f} "
                f"(Keras {row['keras_accuracy']:.4f}), top-1 agreement {row['top1_agreement']:.4f}, "
                f"max |diff| {row['max_abs_diff']:.3g}")

    def clip_images(self, data):
        return data.test.take(self.clip["frames"]), data.test.labels[:self.clip["frames"]]

    def demo_figures(self, summary, labels):
        predicted = np.array([p[1] for p in summary["predictions"]])
        return {"accuracy_on_clip": float(np.mean(predicted == labels[:len(predicted)]))}


CLASSIFY = Classify()
