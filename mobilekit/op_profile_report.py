"""``mobilekit bench --profile``: a ``.tflite`` file's operator profile (``tflite.op_profile``) as a
run of its own: ``runs/<name>/op_profile.png`` (time per op type, XNNPACK vs built-in kernels),
``report.json`` / ``report.md``, and the text table the CLI prints.
"""
import os

from mobilekit.plots import new_figure, save_figure
from mobilekit.runs import run_dir, update_report
from tflite.op_profile import profile_ops

FIGURE = "op_profile.png"
SLOWEST = 15  # individual operators listed in the table and the report


def _tensors(tensors):
    """``1x56x56x24 int8, 24 int32 const``: shapes and dtypes of a row's tensors on one line."""
    return ", ".join("x".join(map(str, t["shape"])) + f" {t['dtype']}" + (" const" if t.get("constant") else "")
                     for t in tensors)


def _flat(row):
    """An operator row with its tensors as text, as the report's tables want it."""
    return {**row, "inputs": _tensors(row["inputs"]), "outputs": _tensors(row["outputs"])}


def slowest_ops(profile, count=SLOWEST):
    """The ``count`` slowest timed operators of ``profile``, slowest first."""
    return sorted((row for row in profile["ops"] if row["ms"] is not None), key=lambda row: -row["ms"])[:count]


def plot_op_types(profile, path):
    """Horizontal bars of the time per op type, split into XNNPACK's operators and the fallback's."""
    types = [entry["op"] for entry in profile["op_types"]][::-1]  # slowest on top
    split = {op: [0.0, 0.0] for op in types}
    for row in profile["ops"]:
        split[row["op"]][0 if row["xnnpack"] else 1] += row["ms"] or 0.0
    figure, axis = new_figure(figsize=(7, 1.5 + 0.3 * len(types)))
    on, off = [split[op][0] for op in types], [split[op][1] for op in types]
    axis.barh(types, on, color="tab:blue", label="XNNPACK")
    axis.barh(types, off, left=on, color="tab:red", label="TFLite built-in kernels (fallback)")
    for y, entry in enumerate(profile["op_types"][::-1]):
        axis.text(entry["ms"], y, f" x{entry['count']}", va="center", fontsize=8)
    axis.set_xlabel("ms per inference (sum of the type's operators, each timed alone)")
    axis.set_title(f"{os.path.basename(profile['model'])}: sum of ops {profile['sum_of_ops_ms']:.2f} ms, "
                   f"whole model {profile['whole_model_ms']:.2f} ms, {profile['threads']} threads", fontsize=9)
    axis.grid(axis="x", alpha=0.3)
    axis.legend(loc="lower right")
    save_figure(figure, path)


def profile_file(path, name=None, threads=2, runs=50, warmup=5, rounds=3, progress=print):
    """Profile ``path`` and write the figure and report into ``runs/<name>/`` (default
    ``profile_<file stem>``); return ``(profile, run folder)``."""
    profile = profile_ops(path, threads=threads, runs=runs, warmup=warmup, rounds=rounds, progress=progress)
    folder = run_dir(name or "profile_" + os.path.splitext(os.path.basename(path))[0])
    plot_op_types(profile, os.path.join(folder, FIGURE))
    summary = {key: value for key, value in profile.items() if not isinstance(value, list)}
    update_report(folder, op_profile=summary, op_types=profile["op_types"],
                  slowest_ops=[_flat(row) for row in slowest_ops(profile)], segments=profile["segments"],
                  ops=[_flat(row) for row in profile["ops"]], figures=[FIGURE])
    return profile, folder


def profile_text(profile):
    """The profile as a person reads it: op types, the slowest operators, segments, the sum vs the whole."""
    lines = [f"{'op type':28} {'count':>5} {'XNNPACK':>8} {'ms':>8} {'share':>6}"]
    for entry in profile["op_types"]:
        untimed = f"  ({entry['untimed']} not separately timeable)" if entry["untimed"] else ""
        lines.append(f"{entry['op']:28} {entry['count']:5} {entry['xnnpack']:4}/{entry['count']:<3} "
                     f"{entry['ms']:8.3f} {entry['share']:6.1%}{untimed}")
    lines += ["", "slowest operators:", f"{'#':>4} {'op':28} {'XNNPACK':>7} {'ms':>8}  output"]
    for row in slowest_ops(profile):
        lines.append(f"{row['index']:4} {row['op']:28} {'yes' if row['xnnpack'] else 'no':>7} {row['ms']:8.3f}  "
                     f"{_tensors(row['outputs'])}")
    lines += [f"untimed: #{row['index']} {row['op']}: {row['note']}" for row in profile["ops"] if row["ms"] is None]
    lines.append("")
    for on, kind in ((True, "XNNPACK"), (False, "built-in kernels")):
        segments = [s for s in profile["segments"] if s["xnnpack"] == on]
        lines.append(f"segments on {kind}: {len(segments)}, {sum(s['ops'] for s in segments)} ops, "
                     f"{sum(s['ms'] for s in segments):.3f} ms")
    lines.append(f"XNNPACK partitions the interpreter makes (node fusion on): {profile['xnnpack_partitions']}")
    lines.append(f"sum of ops {profile['sum_of_ops_ms']:.3f} ms vs whole model {profile['whole_model_ms']:.3f} ms "
                 f"({profile['sum_over_whole']:.2f}x); per-invoke overhead {profile['overhead_ms'] * 1e3:.2f} us "
                 f"subtracted from each op; {profile['threads']} threads, median of {profile['runs']} runs in "
                 f"{profile['rounds']} interleaved rounds")
    return "\n".join(lines)
