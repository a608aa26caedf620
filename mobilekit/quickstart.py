"""``mobilekit quickstart``: the kit's whole path for one task, in one run.

Train the task's default model on its built-in data (classify: a MobileNetV2 on the real
handwritten digits; detect: SSDLite on the shapes; segment: LR-ASPP on the shapes), export
fp32 and full-int8 TFLite, validate both against the Keras model on held-out images, time
both side by side, and run the camera demo headless on a video clip of held-out images.
Everything lands in ``runs/<name>/``: models, ``report.json``, ``report.md``,
``training_curves.png``, ``tradeoffs.png``, ``demo_montage.png`` and the annotated demo frames.
"""
import glob
import os
import time

import cv2
import numpy as np

from demo_app.app import run_demo
from mobilekit.jobs import bench_files, export, train_config
from mobilekit.plots import new_figure, save_figure
from mobilekit.report import render
from mobilekit.runs import update_report
from mobilekit.tasks import get_task
from models.files import atomic_output

EXPORTED = ("fp32", "int8")
DEMO_MODEL = "model_int8.tflite"


def write_clip(images, path, frame_size=160, fps=10):
    """Write ``images`` as an MJPG ``.avi`` clip (atomically), each scaled up to ``frame_size`` squared."""
    with atomic_output(path) as tmp:
        writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"MJPG"), fps, (frame_size, frame_size))
        try:
            if not writer.isOpened():
                raise OSError("OpenCV's VideoWriter did not open with MJPG")
            for image in images:
                frame = cv2.resize(image, (frame_size, frame_size), interpolation=cv2.INTER_LINEAR)
                writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        finally:
            writer.release()


def plot_montage(frame_paths, path, title, columns=6):
    """A grid of annotated demo frames."""
    rows = int(np.ceil(len(frame_paths) / columns))
    figure, axes = new_figure(rows, columns, figsize=(2 * columns, 2 * rows))
    for axis in np.ravel(axes):
        axis.axis("off")
    for axis, frame_path in zip(np.ravel(axes), frame_paths):
        axis.imshow(cv2.cvtColor(cv2.imread(frame_path), cv2.COLOR_BGR2RGB))
    figure.suptitle(title)
    save_figure(figure, path)


def demo_on_test_clip(task, path, data, model_file=DEMO_MODEL, progress=print):
    """Write the task's clip of held-out images, run the demo headless on it with ``model_file`` and
    draw a montage of the annotated frames; return the report's demo section."""
    images, labels = task.clip_images(data)
    clip = os.path.join(path, task.clip["name"])
    write_clip(images, clip, frame_size=task.clip["frame_size"])
    output = os.path.join(path, "demo_frames")
    progress(f"running the demo on {clip} with {model_file}")
    summary = run_demo(os.path.join(path, model_file), clip, labels=os.path.join(path, "labels.txt"),
                       output=output, headless=True, quiet=True)
    frame_files = sorted(glob.glob(os.path.join(glob.escape(output), "*.png")))  # not a killed run's hidden files
    plot_montage(frame_files[:12], os.path.join(path, "demo_montage.png"), task.clip["title"])
    return {"model": model_file, "source": task.clip["name"], "frames": summary["frames"],
            **task.demo_figures(summary, labels), "median_latency_ms": summary["median_latency_ms"],
            "fps": summary["fps"], "frames_dir": "demo_frames"}


def quickstart(task="classify", name=None, bench_runs=60, progress=print, **options):
    """Run the whole path for ``task`` (``options``: the task's ``defaults`` keys); return the report."""
    task = get_task(task)
    name = name or task.quickstart_name
    start = time.perf_counter()
    path, _, data = train_config(task.quickstart_config(task.config(options)), name, progress)
    rows = export(name, EXPORTED, progress=progress)
    demo = demo_on_test_clip(task, path, data, progress=progress)
    bench_files([os.path.join(path, row["file"]) for row in rows], runs=bench_runs, name=name, progress=progress)
    update_report(path, demo=demo, figures=["training_curves.png", "demo_montage.png"],
                  quickstart={"seconds": round(time.perf_counter() - start, 1)})
    progress(f"{task.name} quickstart done in {time.perf_counter() - start:.0f} s: see {path}/report.md")
    return render(path)
