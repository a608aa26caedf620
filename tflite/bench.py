"""Side-by-side latency, memory and size of ``.tflite`` files on this machine.

Each model is timed by ``demo_app.benchmark`` in a fresh process (so its peak memory is
its own and no TensorFlow is loaded), in ``rounds`` interleaved rounds: model A, B, A, B...
so that a noisy neighbour on a shared machine slows all models alike. The ``runs`` timed
invocations of each model are split over the rounds as evenly as they go (7 over 3 rounds:
3 + 2 + 2; fewer runs than rounds: one per round for as many rounds as there are runs), so each
model is timed exactly ``runs`` times. Ratios are taken against the first model.
"""
import json
import os
import subprocess
import sys

from demo_app.benchmark import summarize


def runs_per_round(runs, rounds):
    """How many of ``runs`` timed invocations each of ``rounds`` rounds makes: as even as
    possible, the larger shares first, rounds without runs left out; sums to ``runs``."""
    if runs < 1 or rounds < 1:
        raise ValueError(f"runs and rounds must be >= 1, got runs={runs}, rounds={rounds}")
    share, extra = divmod(runs, rounds)
    return [share + (i < extra) for i in range(min(runs, rounds))]


def _time_once(path, runs, warmup, threads):
    command = [sys.executable, "-m", "demo_app.benchmark", path, "--runs", str(runs),
               "--warmup", str(warmup), "--json"]
    if threads:
        command += ["--threads", str(threads)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        message = (done.stderr.strip().splitlines() or ["benchmark process failed"])[-1]
        raise ValueError(message.removeprefix("demo_app.benchmark: error: "))
    return json.loads(done.stdout.strip().splitlines()[-1])


def benchmark(paths, runs=50, warmup=5, threads=2, rounds=3, progress=print, keep_latencies=False):
    """Time each ``.tflite`` in ``paths``; return one dict per model, in order.

    Each dict: ``model``, ``size_bytes``, ``median_ms``, ``p90_ms``, ``mean_ms``, ``min_ms``,
    ``runs`` (timed invocations of that model: exactly ``runs``), ``threads``, ``peak_rss_mb``,
    ``model_rss_mb`` and ``latency_ratio`` (median over the first model's median); with
    ``keep_latencies``, also ``latencies_ms``: every timed run, in the order timed (for intervals,
    e.g. ``mobilekit.stats.ratio_interval``).
    """
    for path in paths:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"model file not found: {path}")
    shares = runs_per_round(runs, rounds)
    latencies = {path: [] for path in paths}
    memory = {path: (0.0, 0.0) for path in paths}
    for round_index, share in enumerate(shares):
        for path in paths:
            progress(f"bench round {round_index + 1}/{len(shares)}: {os.path.basename(path)}")
            result = _time_once(path, share, warmup, threads)
            if len(result["latencies_ms"]) != share:
                raise ValueError(f"benchmark of {path} timed {len(result['latencies_ms'])} runs, expected {share}")
            latencies[path] += result["latencies_ms"]
            memory[path] = max(memory[path], (result["peak_rss_mb"], result["model_rss_mb"]))
    rows = []
    for path in paths:
        row = {"model": path, "size_bytes": os.path.getsize(path), "threads": threads,
               **summarize(latencies[path]),
               "peak_rss_mb": round(memory[path][0], 1), "model_rss_mb": round(memory[path][1], 1)}
        row["latency_ratio"] = row["median_ms"] / rows[0]["median_ms"] if rows else 1.0
        if keep_latencies:
            row["latencies_ms"] = list(latencies[path])
        rows.append(row)
    return rows
