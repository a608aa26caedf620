"""Segmentation jobs: ``mobilekit train --task segment``, ``mobilekit export`` of a segmentation
run, and ``mobilekit quickstart --task segment`` (train -> export fp32 and int8 -> mIoU of the
Keras model and of each ``.tflite`` on held-out images -> timing -> demo frames with the class
mask drawn over them), all in ``runs/<name>/``.
"""
import os
import time

import numpy as np

from models.deeplab import build_segmenter
from models.files import write_bytes, write_text
from models.profile import profile
from models.runs import run_dir, update_report
from models.segmentation_data import load_segmentation_data
from models.segmentation_train import (confusion_matrix, iou_from_confusion, mean_iou, predict_masks,
                                       train_segmenter)
from models.train import with_preprocessing
from tflite.converter import convert
from tflite.inspect import operator_names
from tflite.jobs import load_trained_run

DEFAULTS = {"head": "lr_aspp", "backbone": "mobilenet_v3_large", "data": "shapes", "image_size": 96,
            "alpha": 1.0, "output_stride": 16, "epochs": 16, "batch_size": 32, "learning_rate": 5e-3,
            "patience": 8, "seed": 0, "train_images": 1200, "validation_images": 150, "test_images": 200}
CALIBRATION_IMAGES = 100


def _splits(config):
    sizes = {"train": config["train_images"], "validation": config["validation_images"], "test": config["test_images"]}
    return load_segmentation_data(config["data"], config["image_size"], seed=config["seed"], **sizes)


def train_segmentation(name="segment", progress=print, **options):
    """Train a segmenter (``DEFAULTS`` keys as options) into ``runs/<name>/``.

    Writes ``model.keras`` (takes pixels in [0, 255], gives class probabilities),
    ``labels.txt`` (background first), ``training_curves.png`` and the report's ``config``,
    ``model`` and ``training`` sections. Returns ``(run_path, model, splits)``.
    """
    unknown = set(options) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown segmentation option(s) {', '.join(sorted(unknown))}: expected {', '.join(DEFAULTS)}")
    config = {"task": "segment", **DEFAULTS, **options}
    path = run_dir(name)
    progress(f"loading {config['data']} at {config['image_size']}x{config['image_size']}")
    splits = _splits(config)
    labels = ("background", *splits["train"].class_names)
    size = config["image_size"]
    model = with_preprocessing(build_segmenter(
        config["head"], input_shape=(size, size, 3), classes=len(labels), alpha=config["alpha"],
        output_stride=config["output_stride"], backbone=config["backbone"]))
    costs = profile(model)
    progress(f"training {model.name}: {costs['params']:,} parameters, {costs['macs'] / 1e6:.1f}M MACs, "
             f"{len(splits['train'].images)} training images, up to {config['epochs']} epochs")
    start = time.perf_counter()
    model, history = train_segmenter(model, splits, path, len(labels), epochs=config["epochs"],
                                     batch_size=config["batch_size"], learning_rate=config["learning_rate"],
                                     patience=config["patience"], seed=config["seed"])
    seconds = time.perf_counter() - start
    write_text(os.path.join(path, "labels.txt"), "\n".join(labels) + "\n")
    test = splits["test"]
    scores = mean_iou(predict_masks(model, test.images * 255.0), test.masks, len(labels))
    training = {"epochs_run": len(history["loss"]), "seconds": round(seconds, 1),
                "best_val_miou": max(history["val_miou"]), "test_miou": scores["miou"],
                "train_images": len(splits["train"].images), "test_images": len(test.images)}
    progress(f"trained in {seconds:.0f} s: test mIoU {scores['miou']:.4f}")
    update_report(path, config=config, model={"name": model.name, "params": costs["params"], "macs": costs["macs"]},
                  training=training, class_iou=dict(zip(labels, scores["class_iou"])),
                  figures=["training_curves.png"])
    return path, model, splits


def tflite_masks(model_bytes, images):
    """Class maps (N, H, W) of a ``.tflite`` segmenter run image by image on pixels in [0, 255]."""
    from demo_app.runtime import TFLiteModel

    interpreter = TFLiteModel.from_bytes(model_bytes)
    return np.stack([np.argmax(interpreter.run(image)[0][0], axis=-1) for image in images]).astype(np.uint8)


def evaluate_tflite(model_bytes, keras_masks, images, masks, classes):
    """mIoU of a ``.tflite`` segmenter, and its pixel agreement with the Keras model's class maps."""
    predicted = tflite_masks(model_bytes, images)
    return {"tflite_miou": iou_from_confusion(confusion_matrix(predicted, masks, classes))["miou"],
            "pixel_agreement": float(np.mean(predicted == keras_masks))}


def export_segmentation(name, quantizations=("fp32", "int8"), progress=print):
    """Convert ``runs/<name>/model.keras`` and measure each file's mIoU on the test split.

    int8 is calibrated on training images. Writes ``model_<quantization>.tflite`` and the
    report's ``export`` section; returns its rows.
    """
    path, config, model = load_trained_run(name, "--task segment")
    config = {**DEFAULTS, **config}
    splits = _splits(config)
    classes = int(model.outputs[0].shape[-1])
    test_images, test_masks = splits["test"].images * 255.0, splits["test"].masks
    keras_masks = predict_masks(model, test_images)
    keras_miou = mean_iou(keras_masks, test_masks, classes)["miou"]
    rows = []
    for quantization in quantizations:
        progress(f"converting to {quantization}")
        model_bytes = convert(model, quantization,
                              representative_data=splits["train"].images[:CALIBRATION_IMAGES] * 255.0)
        file_name = f"model_{quantization}.tflite"
        write_bytes(os.path.join(path, file_name), model_bytes)
        progress(f"measuring the mIoU of {file_name} on {len(test_images)} test images")
        rows.append({"quantization": quantization, "file": file_name, "size_bytes": len(model_bytes),
                     "keras_miou": keras_miou,
                     **evaluate_tflite(model_bytes, keras_masks, test_images, test_masks, classes),
                     "ops": " ".join(operator_names(model_bytes))})
        progress(f"{file_name}: mIoU {rows[-1]['tflite_miou']:.4f} (Keras {keras_miou:.4f})")
    update_report(path, export=rows)
    return rows


def demo_on_test_clip(path, splits, model_file, frames=40, progress=print):
    """Run the demo headless on a clip of held-out shapes; return the report's demo section."""
    from tflite.quickstart import demo_clip, demo_section

    images = np.round(splits["test"].images[:frames] * 255).astype(np.uint8)
    summary = demo_clip(path, images, "test_shapes.avi", model_file, "demo: int8 segmenter on held-out shapes",
                        frame_size=192, progress=progress)
    return demo_section(summary, model_file)


def segment_quickstart(name="quickstart_segment", bench_runs=40, progress=print, **options):
    """Train, export, measure, time and demo a segmenter on the shapes; return the report."""
    from tflite.quickstart import finish_quickstart

    start = time.perf_counter()
    path, _, splits = train_segmentation(name, progress=progress, **options)
    rows = export_segmentation(name, ("fp32", "int8"), progress=progress)
    demo = demo_on_test_clip(path, splits, "model_int8.tflite", progress=progress)
    return finish_quickstart(path, name, [row["file"] for row in rows], demo, start, bench_runs,
                             "segmentation quickstart", progress)
