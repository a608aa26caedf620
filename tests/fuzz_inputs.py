"""Fuzz every input kind of the kit through its entry points, each case in its own process.

    .venv/bin/python tests/fuzz_inputs.py --cases 2000 --seed 0 [--kinds image voc ...] [--jobs 2]

Base inputs are written from the seed into a temporary folder (the Keras and ``.tflite`` ones in a
child process), then each case copies and mutates some (``fuzz.kinds``) and runs its entry point in
a process forked from this one (``fuzz.runner``), with a timeout. Prints a table of the cases per
input kind and outcome and exits 1 when any case ended in a traceback, a crash, a hang, an error
line that names none of the case's inputs, or a non-zero exit without an error line. Case ``i`` of
a seed is the same whatever ``--cases``, so a failure reruns alone with ``--first i --cases 1``.
"""
import argparse
import collections
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np

# Run as a script, this folder is on sys.path, and its sub-folders named after the kit's packages
# (tests/models, tests/tflite, ...) would shadow them: the repository root stands in for it.
sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from tests.fuzz import runner  # noqa: E402 (after the sys.path line)
from tests.fuzz.bases import write_inputs, write_models
from tests.fuzz.kinds import CAN_DENY, KINDS


def make_cases(kinds, first, count, seed, base, root):
    """The cases ``first`` .. ``first + count - 1``: case ``i`` is of kind ``kinds[i % len(kinds)]``,
    drawn from a generator seeded with ``(seed, i)``; each made when the runner asks for it."""
    for index in range(first, first + count):
        kind = kinds[index % len(kinds)]
        folder = os.path.join(root, f"case{index:05d}")
        os.makedirs(folder)
        mutation, entry, names = KINDS[kind](np.random.default_rng([seed, index]), base, folder)
        yield runner.Case(index, kind, mutation, entry, names, folder)


def table(results, key):
    """Rows of counts: ``key(result)`` by outcome, with totals."""
    counts = collections.defaultdict(collections.Counter)
    for result in results:
        counts[key(result)][result.outcome] += 1
    width = max([len("total")] + [len(name) for name in counts])
    lines = [f"{'':{width}} " + " ".join(f"{o:>9}" for o in (*runner.OUTCOMES, "total"))]
    for name in [*sorted(counts), "total"]:
        row = counts[name] if name != "total" else sum(counts.values(), collections.Counter())
        lines.append(f"{name:{width}} " + " ".join(f"{row[o]:9}" for o in runner.OUTCOMES) + f" {row.total():9}")
    return "\n".join(lines), {name: dict(row) for name, row in counts.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=300, help="number of cases (default 300)")
    parser.add_argument("--first", type=int, default=0, help="index of the first case (default 0)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the inputs and mutations (default 0)")
    parser.add_argument("--kinds", nargs="+", choices=list(KINDS), default=list(KINDS),
                        help="input kinds (default all)")
    parser.add_argument("--jobs", type=int, default=2, help="cases run at once (default 2)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds before a case is a hang (default 120)")
    parser.add_argument("--report", metavar="FILE",
                        help="also write the counts and each case (its outcome and output) as JSON")
    parser.add_argument("--keep", action="store_true", help="keep every case's folder (default: failures only)")
    args = parser.parse_args(argv)
    start = time.monotonic()
    runner.preload()
    root = tempfile.mkdtemp(prefix="fuzz_inputs_")
    base = os.path.join(root, "base")
    write_inputs(base, args.seed)
    runner.in_child(write_models, os.path.join(root, "models.log"), base, args.seed)
    print(f"base inputs in {base} ({time.monotonic() - start:.0f} s)" +
          ("" if CAN_DENY else "; permission cases left out: running as root, chmod does not stop reads"),
          flush=True)

    def progress(result):
        if result.outcome in runner.FAILURES:
            case = result.case
            print(f"case {case.index} {case.kind} {case.mutation} ({case.entry_name}): {result.outcome} in "
                  f"{result.seconds:.0f} s, kept in {case.folder}\n  entry {case.entry}\n  " +
                  "\n  ".join(result.output.strip().splitlines()[-12:]), flush=True)

    results = runner.run(make_cases(args.kinds, args.first, args.cases, args.seed, base, root), jobs=args.jobs,
                         timeout=args.timeout, progress=progress, keep=args.keep)
    kinds, counts = table(results, lambda r: r.case.kind)
    entries, _ = table(results, lambda r: r.case.entry_name)
    failures = [r for r in results if r.outcome in runner.FAILURES]
    seconds = time.monotonic() - start
    print(f"\n{len(results)} cases, seed {args.seed}, {seconds:.0f} s\n\nby input kind\n{kinds}\n\nby entry point\n"
          f"{entries}")
    if args.report:
        with open(args.report, "w") as f:
            json.dump({"seconds": seconds, "counts": counts, "cases": [
                {"index": r.case.index, "kind": r.case.kind, "mutation": r.case.mutation, "outcome": r.outcome,
                 "entry": r.case.entry, "seconds": round(r.seconds, 1),
                 "output": r.output[-2000:] if r.outcome in runner.FAILURES else r.output.strip()[-300:]}
                for r in sorted(results, key=lambda r: r.case.index)]}, f, indent=1)
    if not failures and not args.keep:
        shutil.rmtree(root)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
