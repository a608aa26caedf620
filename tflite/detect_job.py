"""The detection jobs: export a trained SSDLite run to fp32 and int8 ``.tflite`` files ending in
``TFLite_Detection_PostProcess``, measure mAP of the Keras model and of each file on the
held-out split, and ``quickstart --task detect`` (train -> export -> mAP -> timing -> demo).
"""
import os
import time

import numpy as np

from demo_app.runtime import TFLiteModel
from models.box_coding import PostProcessing, postprocess
from models.detection_data import detection_splits
from models.detection_metrics import mean_average_precision
from models.detection_train import anchor_config, train_detection
from models.files import write_bytes
from models.runs import update_report
from models.ssdlite import model_anchors
from tflite.detection_export import convert_detector
from tflite.inspect import operator_names
from tflite.jobs import load_trained_run


def keras_detections(model, images, anchors, settings=PostProcessing(), batch_size=64):
    """``(boxes, classes, scores)`` lists of a Keras SSDLite model over images in [0, 1]."""
    outputs = model.predict(np.asarray(images, np.float32) * 255.0, batch_size=batch_size, verbose=0)
    per_image = [postprocess(o, anchors, settings) for o in outputs]
    return tuple(list(column) for column in zip(*per_image))


def tflite_detections(tflite_model, images):
    """``(boxes, classes, scores)`` lists of a detector ``.tflite`` (boxes, classes, scores, count outputs)."""
    if not isinstance(tflite_model, TFLiteModel):
        tflite_model = TFLiteModel.from_bytes(tflite_model)
    boxes, classes, scores = [], [], []
    for image in images:
        b, c, s, count = tflite_model.run(np.asarray(image, np.float32) * 255.0)
        n = int(count.reshape(-1)[0])
        boxes.append(b[0, :n]), classes.append(c[0, :n].astype(np.int32)), scores.append(s[0, :n])
    return boxes, classes, scores


def detection_map(detections, data):
    """mAP@0.5 and mAP@[.5:.95] of ``detections`` on ``data`` (a ShapesData split)."""
    return mean_average_precision((data.boxes, data.classes), detections, len(data.class_names),
                                  image_size=data.images.shape[1:3])


def export_detector(name, quantizations=("fp32", "int8"), progress=print):
    """Convert ``runs/<name>/model.keras`` (an SSDLite run) and measure each file's mAP on the test split.

    Writes ``model_<quantization>.tflite``, the report's ``export`` section (one row per file)
    and ``keras_detection`` (the Keras model's mAP). Returns the Keras row, then the file rows.
    """
    path, config, model = load_trained_run(name, "--task detect")
    anchors = model_anchors(model, anchor_config(config))
    splits = detection_splits(config.get("data", "shapes"), int(model.inputs[0].shape[1]), seed=config.get("seed", 0))
    test = splits["test"]
    progress(f"measuring the Keras model's mAP on {len(test.images)} test images")
    rows = [{"model": "keras", **detection_map(keras_detections(model, test.images, anchors), test)}]
    for quantization in quantizations:
        progress(f"converting to {quantization} with TFLite_Detection_PostProcess")
        model_bytes = convert_detector(model, anchors, quantization, representative_data=splits["train"].images * 255.0)
        file_name = f"model_{quantization}.tflite"
        write_bytes(os.path.join(path, file_name), model_bytes)
        progress(f"measuring {file_name}'s mAP on {len(test.images)} test images")
        scores = detection_map(tflite_detections(model_bytes, test.images), test)
        rows.append({"model": file_name, "quantization": quantization, "file": file_name,
                     "size_bytes": len(model_bytes), **scores, "ops": " ".join(operator_names(model_bytes))})
    for row in rows:
        progress(f"{row['model']}: mAP@0.5 {row['map50']:.4f}, mAP@[.5:.95] {row['map']:.4f}")
    update_report(path, keras_detection={key: rows[0][key] for key in ("map50", "map")}, export=rows[1:])
    return rows


def demo_on_test_clip(path, test, model_file, frames=40, progress=print):
    """Run the demo headless on a clip of held-out images; return the report's demo section."""
    from tflite.quickstart import demo_clip, demo_section

    summary = demo_clip(path, np.round(test.images[:frames] * 255).astype(np.uint8), "test_images.avi", model_file,
                        "demo: int8 detector on held-out images", frame_size=192, progress=progress)
    return demo_section(summary, model_file,
                        frames_with_detections=sum(p[1] >= 0 for p in summary["predictions"]))


def detect_quickstart(name="quickstart_detect", bench_runs=40, progress=print, **options):
    """Train, export, measure, time and demo an SSDLite detector on the shapes; return the report.

    ``options`` override ``models.detection_train.DETECT_DEFAULTS`` (e.g. ``epochs``).
    """
    from tflite.quickstart import finish_quickstart

    start = time.perf_counter()
    path, _, splits = train_detection(name, progress=progress, **options)
    rows = export_detector(name, ("fp32", "int8"), progress=progress)
    demo = demo_on_test_clip(path, splits["test"], "model_int8.tflite", progress=progress)
    return finish_quickstart(path, name, [row["file"] for row in rows[1:]], demo, start, bench_runs,
                             "detection quickstart", progress)
