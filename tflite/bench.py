"""Side-by-side latency, memory and size of ``.tflite`` files on this machine.

Each model is timed by ``demo_app.benchmark`` in a fresh process (so its peak memory is
its own and no TensorFlow is loaded), in ``rounds`` interleaved rounds: model A, B, A, B...
so that a noisy neighbour on a shared machine slows all models alike. Ratios are taken
against the first model.
"""
import json
import os
import subprocess
import sys

from demo_app.benchmark import summarize


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


def benchmark(paths, runs=50, warmup=5, threads=2, rounds=3, progress=print):
    """Time each ``.tflite`` in ``paths``; return one dict per model, in order.

    Each dict: ``model``, ``size_bytes``, ``median_ms``, ``p90_ms``, ``mean_ms``, ``min_ms``,
    ``runs``, ``threads``, ``peak_rss_mb``, ``model_rss_mb`` and ``latency_ratio`` (median
    over the first model's median).
    """
    for path in paths:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"model file not found: {path}")
    per_round = max(1, runs // rounds)
    latencies = {path: [] for path in paths}
    memory = {path: (0.0, 0.0) for path in paths}
    for round_index in range(rounds):
        for path in paths:
            progress(f"bench round {round_index + 1}/{rounds}: {os.path.basename(path)}")
            result = _time_once(path, per_round, warmup, threads)
            latencies[path] += result["latencies_ms"]
            memory[path] = max(memory[path], (result["peak_rss_mb"], result["model_rss_mb"]))
    rows = []
    for path in paths:
        row = {"model": path, "size_bytes": os.path.getsize(path), "threads": threads,
               **summarize(latencies[path]),
               "peak_rss_mb": round(memory[path][0], 1), "model_rss_mb": round(memory[path][1], 1)}
        row["latency_ratio"] = row["median_ms"] / rows[0]["median_ms"] if rows else 1.0
        rows.append(row)
    return rows
