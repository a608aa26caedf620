"""Time a ``.tflite`` model on this device with the LiteRT runtime alone, and the demo loop around it.

Model benchmark (the figures of LiteRT's ``benchmark_model``), all in milliseconds:

* init: creating the interpreter from the file and allocating its tensors (``TFLiteModel(path)``;
  the runtime library is imported beforehand, so its import is not counted);
* first inference: the first ``invoke()``, often slower (lazy kernel preparation, cold caches);
* warm-up: the mean of the ``warmup`` invocations after the first; ``benchmark_model`` counts
  its first inference among its warm-up runs, here it is one invocation of its own, so a run
  always makes ``1 + warmup + runs`` invocations and ``--warmup 0`` still has a first inference;
* the ``runs`` timed invocations: mean ± std (population std, as ``benchmark_model``), min,
  p50 (``median_ms``), p90, p99 (NumPy's linearly interpolated percentiles) and max.

Each latency is the ``invoke()`` time alone (``TFLiteModel.last_latency_ms``) on one random
input in the model's input range, set before the clock starts. Memory is this process's peak
resident set (``peak_rss_mb``) and its growth from loading the model (``init_rss_mb``) and from
loading and running it (``model_rss_mb``), as ``benchmark_model``'s "memory footprint delta"
init/overall; this is why the host runs this module in a fresh process per model.

Loop benchmark (``--loop``): the real demo loop, ``demo_app.app.run_demo`` without a window,
writing an annotated ``.avi`` to a temporary folder, over ``--source`` or over a synthetic
moving-pattern video (``--frame-size``, ``--frames``) written there first. It reports the mean
invoke time per frame, the loop time per frame (``1000 / fps``, ``run_demo``'s frames over the
elapsed time of its whole loop: capture, preprocess, inference, overlay and output), their
difference (the loop's own work per frame), the loop FPS, the invoke-bound FPS
``1000 / invoke_ms`` and the ratio of the two. The loop reads and preprocesses files ahead and
writes its output behind, on threads (``demo_app.background``), so the invoke time is measured
while those threads share the cores: on a board with few cores it is higher than the model
benchmark's. Temporary files are removed afterwards.

    python -m demo_app.benchmark model.tflite --runs 50 --threads 2 --json
    python -m demo_app.benchmark model.tflite --threads 1 --loop --frame-size 640x480 --frames 200
"""
import argparse
import json
import os
import resource
import sys
import tempfile
import time

import numpy as np

from demo_app.files import AtomicFile
from demo_app.options import parse_size
from demo_app.runtime import TFLiteModel, interpreter_class, one_line


def _peak_rss_mb():
    """This process's peak resident memory in MB.

    Linux's ``VmHWM`` belongs to the address space, so it starts afresh at ``exec``; the
    ``ru_maxrss`` fallback (other systems) keeps the high-water mark of a forking parent.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024.0 if sys.platform != "darwin" else 1024.0 ** 2)


def _elapsed_ms(start):
    return (time.perf_counter() - start) * 1000.0


def random_input(model, seed=0):
    """Uniform random input in the model's real-valued range (pixels: [0, 255])."""
    rng = np.random.default_rng(seed)
    scale, zero_point = model.input_quantization
    if scale:  # quantized input: cover the representable range
        info = np.iinfo(model.input_dtype)
        return ((rng.integers(info.min, info.max + 1, model.input_shape) - zero_point) * scale).astype(np.float32)
    return rng.uniform(0.0, 255.0, model.input_shape).astype(np.float32)


def _invoke_times(model, x, count):
    """The invoke times in ms of ``count`` runs of ``model`` on ``x``."""
    times = []
    for _ in range(count):
        model.run(x)
        times.append(model.last_latency_ms)
    return times


def time_model(path, runs=50, warmup=5, num_threads=None):
    """Load and time ``path``; return a dict of raw figures (see the module docstring).

    Keys: ``init_ms``, ``first_inference_ms``, ``warmup_ms`` (the ``warmup`` latencies),
    ``latencies_ms`` (the ``runs`` timed latencies), ``peak_rss_mb``, ``init_rss_mb``,
    ``model_rss_mb`` and ``size_bytes``.
    """
    if runs < 1 or warmup < 0:
        raise ValueError(f"runs must be >= 1 and warmup >= 0, got runs={runs}, warmup={warmup}")
    interpreter_class()  # import the runtime now: its import is neither init time nor the model's memory
    baseline = _peak_rss_mb()
    start = time.perf_counter()
    model = TFLiteModel(path, num_threads=num_threads)
    init_ms = _elapsed_ms(start)
    loaded = _peak_rss_mb()
    x = random_input(model)
    first_ms = _invoke_times(model, x, 1)[0]
    warmup_ms = _invoke_times(model, x, warmup)
    latencies = _invoke_times(model, x, runs)
    peak = _peak_rss_mb()
    return {"init_ms": init_ms, "first_inference_ms": first_ms, "warmup_ms": warmup_ms, "latencies_ms": latencies,
            "peak_rss_mb": peak, "init_rss_mb": loaded - baseline, "model_rss_mb": peak - baseline,
            "size_bytes": model.size_bytes}


def summarize(latencies_ms):
    """Mean, population std, min, median (p50), p90, p99 and max of latencies in ms, and their count."""
    values = np.asarray(latencies_ms, np.float64)
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return {"mean_ms": float(values.mean()), "std_ms": float(values.std()), "min_ms": float(values.min()),
            "median_ms": float(p50), "p90_ms": float(p90), "p99_ms": float(p99), "max_ms": float(values.max()),
            "runs": int(values.size)}


def model_report(path, runs=50, warmup=5, num_threads=None):
    """``time_model``'s figures with the warm-up mean (None without warm-up) and ``summarize``'s statistics."""
    result = time_model(path, runs, warmup, num_threads)
    warmup_mean = float(np.mean(result["warmup_ms"])) if result["warmup_ms"] else None
    return {"model": os.fspath(path), "threads": num_threads, **result, "warmup_mean_ms": warmup_mean,
            **summarize(result["latencies_ms"])}


def write_synthetic_video(path, frames, frame_size, fps=30.0):
    """Write an MJPG ``.avi`` of ``frames`` frames sized ``(width, height)`` whose content moves:
    a scrolling colour gradient with a bouncing square. Returns ``path``."""
    import cv2  # imported here: the model benchmark runs without OpenCV, and its memory figures stay the model's

    width, height = frame_size
    x, y = np.meshgrid(np.arange(width), np.arange(height))
    side = max(1, min(width, height) // 4)
    with AtomicFile(path) as tmp:
        writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
        try:
            if not writer.isOpened():
                raise ValueError(f"cannot write the synthetic video {path}: OpenCV's VideoWriter did not open "
                                 f"with MJPG")
            for i in range(frames):
                frame = np.stack([(x + 4 * i) % 256, (y + 2 * i) % 256, (x + y + 8 * i) % 256],
                                 axis=-1).astype(np.uint8)
                left = (7 * i) % max(1, width - side)
                top = (5 * i) % max(1, height - side)
                frame[top:top + side, left:left + side] = (255, 255, 255)
                writer.write(frame)
        finally:
            writer.release()
    return path


def loop_figures(summary):
    """Per-frame loop figures from ``run_demo``'s summary (see the module docstring)."""
    if not summary["frames"]:
        raise ValueError("the source gave no frames")
    invoke_ms, loop_fps = summary["mean_latency_ms"], summary["fps"]
    loop_ms = 1000.0 / loop_fps
    invoke_bound_fps = 1000.0 / invoke_ms
    return {"frames": summary["frames"], "invoke_ms": invoke_ms, "loop_ms": loop_ms, "overhead_ms": loop_ms - invoke_ms,
            "loop_fps": loop_fps, "invoke_bound_fps": invoke_bound_fps, "fps_ratio": loop_fps / invoke_bound_fps}


def time_loop(path, source=None, frames=200, frame_size=(640, 480), num_threads=None):
    """Run the demo loop on ``frames`` frames of ``source`` (default: a synthetic video of ``frame_size``)
    with ``path``, writing an annotated video; return ``loop_figures`` with what was run."""
    from demo_app.app import run_demo  # imports OpenCV: see write_synthetic_video

    if frames < 1:
        raise ValueError(f"--frames must be >= 1, got {frames}")
    with tempfile.TemporaryDirectory(prefix="demo_benchmark_") as folder:
        video = source or write_synthetic_video(os.path.join(folder, "synthetic.avi"), frames, frame_size)
        summary = run_demo(path, video, headless=True, output=os.path.join(folder, "loop.avi"), quiet=True,
                           num_threads=num_threads, max_frames=frames)
    return {"model": os.fspath(path), "source": source, "frame_size": None if source else list(frame_size),
            "threads": num_threads, **loop_figures(summary)}


def _threads(threads):
    return "default threads" if threads is None else f"{threads} thread{'s' if threads != 1 else ''}"


def _size(size_bytes):
    return f"{size_bytes / 1e6:.2f} MB" if size_bytes >= 1e5 else f"{size_bytes / 1e3:.1f} kB"


def model_text(report):
    """A few readable lines of ``model_report``'s figures."""
    warmup = (f"warm-up {report['warmup_mean_ms']:.3f} ms mean of {len(report['warmup_ms'])}"
              if report["warmup_ms"] else "no warm-up")
    return "\n".join([
        f"{report['model']}: {_size(report['size_bytes'])} file, {_threads(report['threads'])}",
        f"init {report['init_ms']:.3f} ms, first inference {report['first_inference_ms']:.3f} ms, {warmup}",
        f"{report['runs']} runs: mean {report['mean_ms']:.3f} ± {report['std_ms']:.3f} ms, "
        f"min {report['min_ms']:.3f}, p50 {report['median_ms']:.3f}, p90 {report['p90_ms']:.3f}, "
        f"p99 {report['p99_ms']:.3f}, max {report['max_ms']:.3f} ms",
        f"memory: peak RSS {report['peak_rss_mb']:.1f} MB, +{report['init_rss_mb']:.1f} MB loading, "
        f"+{report['model_rss_mb']:.1f} MB loading and running"])


def loop_text(report):
    """A few readable lines of ``time_loop``'s figures."""
    source = report["source"] or "synthetic {}x{} video".format(*report["frame_size"])
    return "\n".join([
        f"{report['model']} in the demo loop on {source}, {report['frames']} frames, {_threads(report['threads'])}",
        f"per frame: invoke {report['invoke_ms']:.2f} ms, loop {report['loop_ms']:.2f} ms, "
        f"loop overhead {report['overhead_ms']:.2f} ms (capture, preprocess, overlay, output)",
        f"loop {report['loop_fps']:.1f} FPS, invoke-bound {report['invoke_bound_fps']:.1f} FPS, "
        f"ratio {report['fps_ratio']:.3f}"])


def _parser():
    parser = argparse.ArgumentParser(prog="python -m demo_app.benchmark", description=__doc__.split("\n")[0])
    parser.add_argument("model", help="path of the .tflite file to time")
    parser.add_argument("--runs", type=int, default=50, help="timed invocations (default 50)")
    parser.add_argument("--warmup", type=int, default=5,
                        help="untimed invocations after the first inference (default 5)")
    parser.add_argument("--threads", type=int, default=None, help="interpreter threads (default: runtime's)")
    parser.add_argument("--json", action="store_true", help="print one JSON object with the raw latencies")
    parser.add_argument("--loop", action="store_true", help="time the demo loop instead of the model alone")
    parser.add_argument("--source", metavar="SRC", help="--loop: frame source (default: a synthetic video)")
    parser.add_argument("--frames", type=int, default=200, help="--loop: frames to run (default 200)")
    parser.add_argument("--frame-size", default="640x480", metavar="WxH",
                        help="--loop: the synthetic video's frame size (default 640x480)")
    return parser


def main(argv=None):
    args = _parser().parse_args(argv)
    try:
        if args.loop:
            size = parse_size(args.frame_size, "--frame-size")
            report = time_loop(args.model, args.source, args.frames, size, args.threads)
        else:
            report = model_report(args.model, args.runs, args.warmup, args.threads)
    except (ValueError, OSError, ImportError) as error:
        print(f"demo_app.benchmark: error: {one_line(error)}", file=sys.stderr)
        return 2
    print(json.dumps(report) if args.json else loop_text(report) if args.loop else model_text(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
