"""Time a ``.tflite`` model on this device with the LiteRT runtime alone.

Latency is the interpreter's invoke time (``TFLiteModel.last_latency_ms``) over ``runs``
invocations after ``warmup`` ones, on random input in the model's input range. Memory is
this process's peak resident set and its growth from loading and running
the model, which is why the host runs this module in a fresh process per model.

    python -m demo_app.benchmark model.tflite --runs 50 --threads 2 --json
"""
import argparse
import json
import os
import resource
import sys

import numpy as np

from demo_app.runtime import TFLiteModel


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


def random_input(model, seed=0):
    """Uniform random input in the model's real-valued range (pixels: [0, 255])."""
    rng = np.random.default_rng(seed)
    scale, zero_point = model.input_quantization
    if scale:  # quantized input: cover the representable range
        info = np.iinfo(model.input_dtype)
        return ((rng.integers(info.min, info.max + 1, model.input_shape) - zero_point) * scale).astype(np.float32)
    return rng.uniform(0.0, 255.0, model.input_shape).astype(np.float32)


def time_model(path, runs=50, warmup=5, num_threads=None):
    """Return ``{"latencies_ms": [...], "peak_rss_mb", "model_rss_mb", "size_bytes"}``."""
    if runs < 1 or warmup < 0:
        raise ValueError(f"runs must be >= 1 and warmup >= 0, got runs={runs}, warmup={warmup}")
    baseline = _peak_rss_mb()
    model = TFLiteModel(path, num_threads=num_threads)
    x = random_input(model)
    latencies = []
    for i in range(warmup + runs):
        model.run(x)
        if i >= warmup:
            latencies.append(model.last_latency_ms)
    peak = _peak_rss_mb()
    return {"latencies_ms": latencies, "peak_rss_mb": peak, "model_rss_mb": peak - baseline,
            "size_bytes": os.path.getsize(path)}


def summarize(latencies_ms):
    """Median, p90, mean and min of a list of latencies in milliseconds."""
    values = np.asarray(latencies_ms, np.float64)
    return {"median_ms": float(np.median(values)), "p90_ms": float(np.percentile(values, 90)),
            "mean_ms": float(values.mean()), "min_ms": float(values.min()), "runs": int(values.size)}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m demo_app.benchmark", description=__doc__.split("\n")[0])
    parser.add_argument("model", help="path of the .tflite file to time")
    parser.add_argument("--runs", type=int, default=50, help="timed invocations (default 50)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed invocations first (default 5)")
    parser.add_argument("--threads", type=int, default=None, help="interpreter threads (default: runtime's)")
    parser.add_argument("--json", action="store_true", help="print one JSON object with the raw latencies")
    args = parser.parse_args(argv)
    try:
        result = time_model(args.model, args.runs, args.warmup, args.threads)
    except (ValueError, OSError) as error:
        print(f"demo_app.benchmark: error: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result))
    else:
        stats = summarize(result["latencies_ms"])
        print(f"{args.model}: median {stats['median_ms']:.2f} ms, p90 {stats['p90_ms']:.2f} ms, "
              f"peak RSS {result['peak_rss_mb']:.0f} MB, {result['size_bytes'] / 1e6:.2f} MB file")
    return 0


if __name__ == "__main__":
    sys.exit(main())
