"""The demo loop: frames -> TFLite classifier -> annotated frames on screen, in a video or PNGs.

``run_demo`` is the Python entry point; ``add_arguments``/``run_from_args`` give the same
options to ``python -m demo_app`` on the board and to ``mobilekit demo`` on the host.
"""
import os
import sys
import time

import cv2
import numpy as np

from demo_app.detection import MIN_SCORE, detections, draw_boxes, is_detector
from demo_app.output import open_output
from demo_app.overlay import draw_overlay, overlay_lines
from demo_app.preprocess import INPUT_RANGES, image_size, parse_input_range, preprocess
from demo_app.runtime import TFLiteModel
from demo_app.segmentation import class_colors, class_fractions, class_map, draw_mask, is_segmenter
from demo_app.sources import open_source

NO_DISPLAY = "no display available: run with --headless (and --output)"
WINDOW = "mobilekit demo"


def load_labels(path):
    """Labels from a text file, one per line (line i names class i)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"labels file not found: {path}")
    with open(path, encoding="utf-8") as f:
        labels = [line.strip() for line in f.read().splitlines()]
    while labels and not labels[-1]:
        labels.pop()
    if not labels:
        raise ValueError(f"labels file {path} is empty: expected one label per line")
    return labels


def _check_display():
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise ValueError(NO_DISPLAY)


def _show(rgb):
    """Show ``rgb`` in the demo window; True when q or Esc was pressed."""
    try:
        cv2.imshow(WINDOW, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        return cv2.waitKey(1) & 0xFF in (ord("q"), 27)
    except cv2.error:
        raise ValueError(NO_DISPLAY) from None


def _close_window():
    try:
        cv2.destroyWindow(WINDOW)
    except cv2.error:
        pass


def _classify(scores):
    """``[(class, score), ...]`` of a classifier's scores, best first."""
    scores = scores.reshape(-1)
    return [(int(i), float(scores[i])) for i in np.argsort(-scores, kind="stable")]


def _segment(scores, frame, names):
    """``[(class, pixel fraction), ...]`` of the classes a segmenter finds (background when none),
    and the frame with the translucent class mask drawn over it."""
    classes = class_map(scores, *frame.shape[:2])
    shown = class_fractions(classes, len(names)) or [(0, 1.0)]
    return shown, draw_mask(frame, classes, class_colors(len(names)))


def _detect(outputs, frame, names, min_score):
    """``[(class, score), ...]`` of a detector's detections scoring at least ``min_score``, best
    first, and the frame with their boxes, labels and scores drawn."""
    boxes, classes, scores = detections(outputs, min_score)
    return [(int(c), float(s)) for c, s in zip(classes, scores)], draw_boxes(frame, boxes, classes, scores, names)


def _label(names, index):
    return names[index] if 0 <= index < len(names) else "nothing" if index < 0 else str(index)


def run_demo(model, source, labels=None, output=None, headless=False, num_threads=None,
             input_range="0,255", max_frames=None, top_k=1, quiet=False, min_score=MIN_SCORE):
    """Run a .tflite classifier or segmenter on every frame of ``source``; show/write annotated frames.

    The model's kind comes from its outputs: one ``(1, h, w, classes)`` output is a segmenter
    (its class mask is drawn over the frame, labels give the classes' pixel fractions), any
    other single output a classifier. Four outputs (boxes, classes, scores, count, as
    ``TFLite_Detection_PostProcess`` makes them) are a detector: boxes scoring at least
    ``min_score`` are drawn with their labels and scores.

    Args:
        model: path of a .tflite image classifier, or a ``TFLiteModel``.
        source: image, folder of images, video file, or camera index (int or digit string).
        labels: text file with one label per line; default labels are the class indices.
        output: ``.mp4``/``.avi`` file for an annotated video, any other path a folder of
            annotated ``frame_00000.png``, ... frames; ``None`` writes nothing.
        headless: do not open a window (required without a display).
        num_threads: interpreter threads when ``model`` is a path.
        input_range: real-valued range the model expects pixels in: ``0,255`` (the kit's
            models), ``0,1`` or ``-1,1``.
        max_frames: stop after this many frames.
        top_k: classes drawn on each frame.
        quiet: print nothing.
        min_score: detectors: the least score of a drawn box.

    Returns:
        dict with ``frames``, ``mean_latency_ms`` and ``median_latency_ms`` (interpreter
        invoke time), ``fps`` (whole loop), ``output`` and ``predictions``, a list of
        top-1 ``(frame_name, class_index, label, score)``, one per frame (for a segmenter: the
        largest non-background class and its pixel fraction, or background; for a detector: the
        best detection, or class -1 ``nothing`` with score 0).
    """
    log = (lambda *a: None) if quiet else (lambda *a: print(*a, flush=True))
    if int(top_k) < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    if max_frames is not None and int(max_frames) < 1:
        raise ValueError(f"max_frames must be at least 1, got {max_frames}")
    parse_input_range(input_range)
    if not headless:
        _check_display()
    if not isinstance(model, TFLiteModel):
        model = TFLiteModel(model, num_threads=num_threads)
    image_size(model.input_shape)
    detector = is_detector(model.output_shapes)
    segmenter = not detector and is_segmenter(model.output_shapes)
    num_classes = 0 if detector else int(model.output_shapes[0][-1] if segmenter else
                                          np.prod(model.output_shapes[0][1:]))
    names = load_labels(labels) if labels else [str(i) for i in range(num_classes)]
    if len(names) < num_classes:
        raise ValueError(f"labels file {labels} has {len(names)} labels but the model scores {num_classes} classes")
    frames = open_source(source)
    log(f"{model!r}, source {source}")

    sink = open_output(os.fspath(output), fps=frames.fps) if output else None
    latencies, predictions, fps, success = [], [], None, False
    start = last_frame = last_log = time.perf_counter()
    try:
        for name, frame in frames:
            outputs = model.run(preprocess(frame, model.input_shape, input_range))
            if detector:
                shown, picture = _detect(outputs, frame, names, min_score)
            elif segmenter:
                shown, picture = _segment(outputs[0], frame, names)
            else:
                shown, picture = _classify(outputs[0]), frame
            latencies.append(model.last_latency_ms)
            best = shown[0] if shown else (-1, 0.0)
            predictions.append((name, best[0], _label(names, best[0]), best[1]))
            now = time.perf_counter()
            rate = 1.0 / max(now - last_frame, 1e-9)
            fps, last_frame = rate if fps is None else 0.9 * fps + 0.1 * rate, now
            annotated = draw_overlay(picture, overlay_lines([(_label(names, i), v) for i, v in shown[:int(top_k)]],
                                                            fps, model.last_latency_ms))
            if sink:
                sink.write(annotated)
            if not frames.is_stream or now - last_log >= 1.0:
                log(f"{name}: {predictions[-1][2]} {predictions[-1][3]:.3f} ({latencies[-1]:.2f} ms)")
                last_log = now
            if not headless and _show(annotated):
                break
            if max_frames is not None and len(predictions) >= int(max_frames):
                break
        success = True
    finally:
        frames.close()
        if sink:
            sink.close(success)
        if not headless:
            _close_window()

    elapsed = time.perf_counter() - start
    summary = dict(
        frames=len(predictions),
        mean_latency_ms=float(np.mean(latencies)) if latencies else None,
        median_latency_ms=float(np.median(latencies)) if latencies else None,
        fps=len(predictions) / elapsed if predictions else None,
        output=os.fspath(output) if output else None,
        predictions=predictions,
    )
    if predictions:
        log(f"{summary['frames']} frames: latency mean {summary['mean_latency_ms']:.2f} ms, "
            f"median {summary['median_latency_ms']:.2f} ms, {summary['fps']:.1f} FPS"
            + (f", written to {summary['output']}" if output else ""))
    else:
        log("no frames")
    return summary


def add_arguments(parser):
    """Add the demo's options to an ``argparse`` parser (or subparser)."""
    parser.add_argument("--model", required=True, metavar="M.tflite",
                        help="TFLite image classifier, segmenter or SSD-style detector to run")
    parser.add_argument("--source", required=True, metavar="SRC",
                        help="image file, folder of images, video file, or camera index (e.g. 0)")
    parser.add_argument("--labels", metavar="L.txt", help="text file with one class label per line")
    parser.add_argument("--output", metavar="OUT",
                        help="write annotated frames: a .mp4/.avi video, or else a folder of PNG frames")
    parser.add_argument("--headless", action="store_true", help="no window (needed without a display)")
    parser.add_argument("--threads", type=int, metavar="N", help="interpreter threads (default: the runtime's)")
    parser.add_argument("--input-range", default="0,255", choices=list(INPUT_RANGES), metavar="RANGE",
                        help="pixel range the model expects: 0,255 (the kit's models, default), 0,1, "
                             "or -1,1 (write --input-range=-1,1)")
    parser.add_argument("--max-frames", type=int, metavar="N", help="stop after N frames")
    parser.add_argument("--top-k", type=int, default=1, metavar="K", help="classes shown per frame (default 1)")
    parser.add_argument("--min-score", type=float, default=MIN_SCORE, metavar="S",
                        help=f"detectors: draw boxes scoring at least S (default {MIN_SCORE})")
    return parser


def run_from_args(args):
    """Run the demo with options parsed by a parser set up with ``add_arguments``."""
    return run_demo(args.model, args.source, labels=args.labels, output=args.output, headless=args.headless,
                    num_threads=args.threads, input_range=args.input_range, max_frames=args.max_frames,
                    top_k=args.top_k, min_score=args.min_score)
