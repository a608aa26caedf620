"""The demo loop: frames -> TFLite classifier -> annotated frames on screen, in a video or PNGs.

``run_demo`` is the Python entry point; ``add_arguments``/``run_from_args`` give the same
options to ``python -m demo_app`` on the board and to ``mobilekit demo`` on the host.
"""
import os
import time

import numpy as np

from demo_app.background import BackgroundWriter, Prefetch
from demo_app.capture_thread import SourceLost
from demo_app.detection import MIN_SCORE, class_indices, detections, draw_boxes, filter_detections, is_detector
from demo_app.live_page import LivePage, parse_serve
from demo_app.metadata import read_metadata
from demo_app.options import parse_size
from demo_app.output import open_output
from demo_app.overlay import draw_overlay, overlay_lines
from demo_app.preprocess import INPUT_RANGES, image_size, parse_input_range, preprocess
from demo_app.runtime import TFLiteModel
from demo_app.segmentation import class_colors, class_fractions, class_map, draw_legend, draw_mask, is_segmenter
from demo_app.sources import open_source
from demo_app.window import Window

WINDOW_TITLE = "mobilekit demo"


def load_labels(path):
    """Labels from a text file, one per line (line i names class i)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"labels file not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            labels = [line.strip() for line in f.read().splitlines()]
    except UnicodeDecodeError as error:
        raise ValueError(f"labels file {path} is not UTF-8 text ({error.reason} at byte {error.start}): expected "
                         f"one label per line") from None
    while labels and not labels[-1]:
        labels.pop()
    if not labels:
        raise ValueError(f"labels file {path} is empty: expected one label per line")
    return labels


def _classify(scores, count):
    """``[(class, score), ...]`` of a classifier's ``count`` best scores, best first."""
    scores = scores.reshape(-1)
    return [(int(i), float(scores[i])) for i in np.argsort(-scores, kind="stable")[:count]]


def _segment(scores, frame, names):
    """``[(class, pixel fraction), ...]`` of the classes a segmenter finds (background when none),
    and the frame with the translucent class mask drawn over it."""
    classes = class_map(scores, *frame.shape[:2])
    shown = class_fractions(classes, len(names)) or [(0, 1.0)]
    colors = class_colors(len(names))
    return shown, draw_legend(draw_mask(frame, classes, colors), [c for c, _ in shown if c], names, colors)


def _detect(outputs, frame, names, min_score, allowed_classes=None, max_results=None):
    """``[(class, score), ...]`` of a detector's detections scoring at least ``min_score`` (of
    ``allowed_classes``, at most ``max_results``), best first, and the frame with their boxes,
    labels and scores drawn."""
    boxes, classes, scores = filter_detections(*detections(outputs, min_score), allowed_classes, max_results)
    return [(int(c), float(s)) for c, s in zip(classes, scores)], draw_boxes(frame, boxes, classes, scores, names)


def _label(names, index):
    return names[index] if 0 <= index < len(names) else "nothing" if index < 0 else str(index)


def run_demo(model, source, labels=None, output=None, headless=False, num_threads=None,
             input_range=None, max_frames=None, top_k=1, quiet=False, min_score=MIN_SCORE, serve=None,
             camera_size=None, camera_fps=None, reconnect_seconds=10.0, classes=None, max_results=None):
    """Run a .tflite classifier or segmenter on every frame of ``source``; show/write annotated frames.

    The model's kind comes from its outputs: one ``(1, h, w, classes)`` output is a segmenter
    (its class mask is drawn over the frame, labels give the classes' pixel fractions), any
    other single output a classifier. Four outputs (boxes, classes, scores, count, as
    ``TFLite_Detection_PostProcess`` makes them) are a detector: boxes scoring at least
    ``min_score`` are drawn with their labels and scores.

    Args:
        model: path of a .tflite image classifier, or a ``TFLiteModel``.
        source: image, folder of images, glob pattern, video file, camera index (int or digit
            string), ``/dev/videoN``, ``picam[:N]`` (Raspberry Pi camera through picamera2), or an
            ``rtsp://`` / ``http(s)://`` stream (``demo_app.sources.open_source``). Live sources
            are read on a capture thread that keeps the newest frame; its age is shown.
        labels: text file with one label per line; default: the labels in the file's TFLite Model
            Metadata (``demo_app.metadata``), else the class indices.
        output: ``.mp4``/``.avi`` file for an annotated video, any other path a folder of
            annotated ``frame_00000.png``, ... frames; ``None`` writes nothing. On Ctrl-C or a
            lost live source the video is finished with the frames written so far; after any
            other error no partial video is left.
        headless: do not open a window (required without a display).
        num_threads: interpreter threads when ``model`` is a path.
        input_range: real-valued range the model expects pixels in: ``0,255`` (the kit's
            models), ``0,1`` or ``-1,1``; default: the normalization in the file's metadata, else
            ``0,255``.
        max_frames: stop after this many frames.
        top_k: classes drawn on each frame.
        quiet: print nothing.
        min_score: detectors: the least score of a drawn box.
        classes: detectors: draw only these classes (label names or indices, a list or one
            comma-separated string); ``None``: all.
        max_results: detectors: draw at most this many boxes, best first; ``None``: all.
        serve: ``"[HOST:]PORT"``: serve the live page (annotated stream, FPS, latency, results;
            ``demo_app.live_page``), on 127.0.0.1 unless a host is given.
        camera_size, camera_fps: ``(width, height)`` (or ``"WxH"``) and frame rate asked of a camera.
        reconnect_seconds: live sources: how long a lost camera or stream is retried (with
            backoff) before the demo stops with a "lost source" error.

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
    if input_range is not None:
        parse_input_range(input_range)
    address = parse_serve(serve) if serve is not None else None
    if isinstance(camera_size, str):
        camera_size = parse_size(camera_size, "--camera-size")
    if not isinstance(model, TFLiteModel):
        model = TFLiteModel(model, num_threads=num_threads)
    try:
        image_size(model.input_shape)
    except ValueError as error:
        raise ValueError(f"{model.name}: {error}") from None
    metadata = (read_metadata(model.path) if model.path else None) or {}
    if input_range is None:
        input_range = metadata.get("input_range") or "0,255"
    detector = is_detector(model.output_shapes)
    segmenter = not detector and is_segmenter(model.output_shapes)
    num_classes = 0 if detector else int(model.output_shapes[0][-1] if segmenter else
                                          np.prod(model.output_shapes[0][1:]))
    names = load_labels(labels) if labels else metadata.get("labels") or [str(i) for i in range(num_classes)]
    if len(names) < num_classes:
        raise ValueError(f"{f'labels file {labels}' if labels else 'the metadata of ' + model.name} has "
                         f"{len(names)} labels but the model scores {num_classes} classes")
    if (classes is not None or max_results is not None) and not detector:
        raise ValueError("classes and max_results filter a detector's boxes: this model is not a detector")
    if max_results is not None and int(max_results) < 1:
        raise ValueError(f"max_results must be at least 1, got {max_results}")
    allowed = class_indices(classes, names) if classes is not None else None
    frames = open_source(source, camera_size=camera_size, camera_fps=camera_fps,
                         reconnect_seconds=reconnect_seconds)
    log(f"{model!r}, source {source}")
    live = window = None
    try:
        live = LivePage(*address).start() if address else None
        window = None if headless else Window(WINDOW_TITLE)
    except BaseException:
        frames.close()
        if live:
            live.close()
        raise
    if live:
        log(f"live page: {live.url}")

    latencies, predictions, fps, keep, stopped, sink = [], [], None, False, False, None

    def prepare(frame):
        return model.quantize(preprocess(frame, model.input_shape, input_range)[None])

    # files are read and preprocessed ahead on a thread; a live source's capture thread keeps the newest frame
    items = ((name, frame, prepare(frame)) for name, frame in frames) if frames.is_live else Prefetch(frames, prepare)
    start = last_frame = last_log = time.perf_counter()
    try:
        sink = BackgroundWriter(open_output(os.fspath(output), fps=frames.fps)) if output else None
        for name, frame, x in items:
            outputs = model.run_tensor(x)
            if detector:
                shown, picture = _detect(outputs, frame, names, min_score, allowed, max_results)
            elif segmenter:
                shown, picture = _segment(outputs[0], frame, names)
            else:
                shown, picture = _classify(outputs[0], int(top_k)), frame
            latencies.append(model.last_latency_ms)
            best = shown[0] if shown else (-1, 0.0)
            predictions.append((name, best[0], _label(names, best[0]), best[1]))
            now = time.perf_counter()
            rate = 1.0 / max(now - last_frame, 1e-9)
            fps, last_frame = rate if fps is None else 0.9 * fps + 0.1 * rate, now
            top = [(_label(names, i), v) for i, v in shown[:int(top_k)]]
            age = frames.frame_age_ms
            annotated = draw_overlay(picture, overlay_lines(top, fps, model.last_latency_ms, age))
            if sink:
                sink.write(annotated)
            if live:
                live.publish(annotated, {"frame": name, "fps": fps, "latency_ms": model.last_latency_ms,
                                         **({"frame_age_ms": age} if age is not None else {}),
                                         "results": [f"{label} {value:.2f}" for label, value in top]})
            if not frames.is_stream or now - last_log >= 1.0:
                log(f"{name}: {predictions[-1][2]} {predictions[-1][3]:.3f} ({latencies[-1]:.2f} ms)")
                last_log = now
            if window and window.show(annotated):
                break
            if max_frames is not None and len(predictions) >= int(max_frames):
                break
        keep = True
    except (KeyboardInterrupt, SourceLost):
        keep = stopped = True  # the frames so far are what the user wanted recorded
        raise
    finally:
        (frames if frames.is_live else items).close()
        if live:
            live.close()
        if sink:
            sink.close(keep)
            if stopped and sink.count:
                log(f"stopped after {len(predictions)} frames; {sink.count} written to {os.fspath(output)}")
        if window:
            window.close()

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
                        help="image file, folder of images, glob pattern ('photos/*.jpg'), video file, camera "
                             "index (e.g. 0) or /dev/videoN, picam[:N] (Raspberry Pi camera, needs picamera2), "
                             "or an rtsp:// or http(s):// stream")
    parser.add_argument("--labels", metavar="L.txt", help="text file with one class label per line (default: the "
                                                          "labels in the file's metadata, else class indices)")
    parser.add_argument("--output", metavar="OUT",
                        help="write annotated frames: a .mp4/.avi video, or else a folder of PNG frames")
    parser.add_argument("--headless", action="store_true", help="no window (needed without a display)")
    parser.add_argument("--serve", metavar="[HOST:]PORT",
                        help="serve a live page (annotated stream, FPS, latency, results) at http://HOST:PORT/; "
                             "HOST defaults to 127.0.0.1 (this machine only): --serve 0.0.0.0:8080 exposes it")
    parser.add_argument("--camera-size", metavar="WxH", help="cameras: capture size, e.g. 640x480")
    parser.add_argument("--camera-fps", type=float, metavar="FPS", help="cameras: capture frame rate")
    parser.add_argument("--reconnect-seconds", type=float, default=10.0, metavar="S",
                        help="cameras and streams: retry a lost source for S seconds, then stop (default 10)")
    parser.add_argument("--threads", type=int, metavar="N", help="interpreter threads (default: the runtime's)")
    parser.add_argument("--input-range", choices=list(INPUT_RANGES), metavar="RANGE",
                        help="pixel range the model expects: 0,255 (the kit's models), 0,1, or -1,1 (write "
                             "--input-range=-1,1); default: the file's metadata, else 0,255")
    parser.add_argument("--max-frames", type=int, metavar="N", help="stop after N frames")
    parser.add_argument("--top-k", type=int, default=1, metavar="K", help="classes shown per frame (default 1)")
    parser.add_argument("--min-score", type=float, default=MIN_SCORE, metavar="S",
                        help=f"detectors: draw boxes scoring at least S (default {MIN_SCORE})")
    parser.add_argument("--classes", metavar="C1,C2",
                        help="detectors: draw only these classes (label names or indices, comma-separated)")
    parser.add_argument("--max-results", type=int, metavar="N", help="detectors: draw at most the N best boxes")
    return parser


def run_from_args(args):
    """Run the demo with options parsed by a parser set up with ``add_arguments``."""
    return run_demo(args.model, args.source, labels=args.labels, output=args.output, headless=args.headless,
                    num_threads=args.threads, input_range=args.input_range, max_frames=args.max_frames,
                    top_k=args.top_k, min_score=args.min_score, serve=args.serve, camera_size=args.camera_size,
                    camera_fps=args.camera_fps, reconnect_seconds=args.reconnect_seconds, classes=args.classes,
                    max_results=args.max_results)
