"""``mobilekit``: the kit's command line. It parses arguments and dispatches to the package
that owns each job; heavy imports happen inside the handlers, so ``mobilekit demo`` (like
``python -m demo_app``) never loads TensorFlow.

Bad input (a ValueError or OSError raised by a job) prints one line and exits 2;
``--debug`` shows the traceback instead.
"""
import argparse
import json
import os
import re
import sys

from demo_app import app as demo
from demo_app.native_log import forward, native_stderr

QUANTIZATIONS = ("fp32", "fp16", "dynamic", "int8")


def _given(args, *names):
    """The options the user set; the job's own defaults apply to the rest."""
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def _quickstart(args):
    from tflite.quickstart import quickstart

    quickstart(name=args.name, **_given(args, "epochs", "image_size", "alpha"))


def _train(args):
    from models.jobs import train

    train(name=args.name, **_given(args, "arch", "data", "image_size", "alpha", "epochs", "batch_size",
                                   "learning_rate", "patience", "seed"))


def _export(args):
    from tflite.jobs import export

    for row in export(args.name, args.quantization):
        print(f"{row['file']}: {row['size_bytes'] / 1e6:.2f} MB, accuracy {row['tflite_accuracy']:.4f} "
              f"(Keras {row['keras_accuracy']:.4f}), top-1 agreement {row['top1_agreement']:.4f}, "
              f"max |diff| {row['max_abs_diff']:.3g}")


def _bench(args):
    from tflite import jobs

    progress = (lambda message: print(message, file=sys.stderr)) if args.json else print
    timing = {"runs": args.runs, "warmup": args.warmup, "threads": args.threads, "rounds": args.rounds,
              "progress": progress}
    if args.suite:
        from tflite.layer_bench import run_suite

        rows = run_suite(args.suite, quantizations=args.quantization, **timing)
        if args.json:
            print(json.dumps({"suite": args.suite, "layers": rows}))
            return
        print(f"{'shape':12} {'layer':24} {'quant':6} {'params':>10} {'median ms':>10} {'speed-up':>9} {'params /':>9}")
        for row in rows:
            print(f"{row['shape']:12} {row['layer']:24} {row['quantization']:6} {row['params']:10,} "
                  f"{row['median_ms']:10.3f} {row['speedup']:9.2f} {row['param_reduction']:9.1f}")
        return
    if args.models:
        rows = jobs.bench_files(args.models, name=args.name, **timing)
    else:
        rows = jobs.bench_architecture(args.arch, alpha=args.alpha, image_size=args.image_size,
                                       quantizations=args.quantization, name=args.name, **timing)
    if args.json:
        print(json.dumps({"models": rows}))
        return
    print(f"{'model':48} {'median ms':>10} {'p90 ms':>8} {'ratio':>6} {'MB':>7} {'peak RSS MB':>12}")
    for row in rows:
        print(f"{row['model'][-48:]:48} {row['median_ms']:10.3f} {row['p90_ms']:8.3f} {row['latency_ratio']:6.2f} "
              f"{row['size_bytes'] / 1e6:7.2f} {row['peak_rss_mb']:12.1f}")


def _zoo(args):
    from tflite.zoo import ZOO, run_zoo

    entries = [e for e in ZOO if not args.only or e.label in args.only or e.arch in args.only]
    if not entries:
        raise ValueError(f"--only {' '.join(args.only)} matches no zoo entry: expected labels or architectures "
                         f"among {', '.join(e.label for e in ZOO)}")
    rows = run_zoo(name=args.name, entries=entries, **_given(args, "image_size", "epochs", "seed", "runs"))
    print(f"{'model':22} {'params':>10} {'MMACs':>8} {'fp32 ms':>8} {'int8 ms':>8} {'int8 KB':>8} {'int8 acc':>8}")
    for row in rows:
        print(f"{row['model']:22} {row['params']:10,} {row['macs'] / 1e6:8.2f} {row['fp32_ms']:8.3f} "
              f"{row['int8_ms']:8.3f} {row['int8_bytes'] / 1024:8.0f} {row['int8_accuracy']:8.4f}")
    print(f"wrote runs/{args.name}/report.md")


def _report(args):
    from tflite.report import render

    render(os.path.join("runs", args.name))
    print(f"wrote runs/{args.name}/report.md")


def _add_training_flags(parser):
    parser.add_argument("--image-size", type=int, help="square input size in pixels (default 48)")
    parser.add_argument("--alpha", type=float, help="width multiplier (default 0.35)")
    parser.add_argument("--epochs", type=int, help="maximum epochs (default 40)")


def build_parser():
    parser = argparse.ArgumentParser(prog="mobilekit", description="Efficient on-device vision with Keras and TFLite.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    quick = commands.add_parser("quickstart", help="train, export, validate, time and demo a digits classifier",
                                description="The whole path on digits, written to runs/<name>/.")
    quick.add_argument("--name", default="quickstart", help="run folder under runs/ (default quickstart)")
    _add_training_flags(quick)
    quick.set_defaults(handler=_quickstart)

    train = commands.add_parser("train", help="train a classifier into runs/<name>/",
                                description="Train a classifier; writes model.keras, labels.txt, "
                                            "training_curves.png and report.json/report.md.")
    train.add_argument("--name", default="train", help="run folder under runs/ (default train)")
    train.add_argument("--arch", help="architecture (default mobilenet_v2)")
    train.add_argument("--data",
                       help="'digits' or a folder with one sub-folder of images per class (default digits)")
    _add_training_flags(train)
    train.add_argument("--batch-size", type=int, help="batch size (default 64)")
    train.add_argument("--learning-rate", type=float, help="peak Adam learning rate (default 3e-3)")
    train.add_argument("--patience", type=int, help="early-stopping patience in epochs (default 10)")
    train.add_argument("--seed", type=int, help="seed of the split, initialization and shuffling (default 0)")
    train.set_defaults(handler=_train)

    export = commands.add_parser("export", help="convert a trained run to .tflite and validate it",
                                 description="Convert runs/<name>/model.keras and validate each file "
                                             "against it on the test split.")
    export.add_argument("name", help="run folder under runs/ holding model.keras")
    export.add_argument("--quantization", nargs="+", choices=QUANTIZATIONS, default=["fp32", "int8"],
                        help="one or more of fp32, fp16, dynamic, int8 (default fp32 int8)")
    export.set_defaults(handler=_export)

    bench = commands.add_parser("bench", help="time .tflite files side by side",
                                description="Time .tflite files (or an architecture converted on the "
                                            "spot) in interleaved rounds, one fresh process per model.")
    bench.add_argument("models", nargs="*", help=".tflite files; none: build --arch and convert it")
    bench.add_argument("--suite", default=None,
                       help="time a layer suite instead (a layer vs the layers it replaces, see tflite/suites)")
    bench.add_argument("--arch", default="mobilenet_v2", help="architecture when no files are given")
    bench.add_argument("--alpha", type=float, default=1.0, help="width multiplier of --arch (default 1.0)")
    bench.add_argument("--image-size", type=int, default=224, help="input size of --arch (default 224)")
    bench.add_argument("--quantization", nargs="+", choices=QUANTIZATIONS, default=["fp32", "int8"],
                       help="conversions of --arch or --suite to time (default fp32 int8)")
    bench.add_argument("--runs", type=int, default=50, help="timed invocations per model (default 50)")
    bench.add_argument("--warmup", type=int, default=5, help="untimed invocations per process (default 5)")
    bench.add_argument("--threads", type=int, default=2, help="interpreter threads (default 2)")
    bench.add_argument("--rounds", type=int, default=3, help="interleaved rounds the runs are split into (default 3)")
    bench.add_argument("--name", default=None, help="also write the figures into runs/<name>/report.json")
    bench.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    bench.set_defaults(handler=_bench)

    demo_parser = commands.add_parser("demo", help="run a .tflite classifier on images, video or a camera",
                                      description="The device demo (LiteRT runtime only; no TensorFlow).")
    demo.add_arguments(demo_parser)
    demo_parser.set_defaults(handler=demo.run_from_args)

    zoo = commands.add_parser("zoo", help="train, export and time every architecture side by side",
                              description="Train each zoo network briefly on digits at one input size, export "
                                          "fp32 and int8, validate and time them; one table and a scatter plot.")
    zoo.add_argument("--name", default="zoo", help="run folder under runs/ (default zoo)")
    zoo.add_argument("--only", nargs="+", help="zoo labels or architecture names to include (default all)")
    zoo.add_argument("--image-size", type=int, help="square input size (default 32)")
    zoo.add_argument("--epochs", type=int, help="epochs per network (default 8)")
    zoo.add_argument("--seed", type=int, help="seed of split, initialization and shuffling (default 0)")
    zoo.add_argument("--runs", type=int, help="timed invocations per model (default 30)")
    zoo.set_defaults(handler=_zoo)

    report = commands.add_parser("report", help="re-render a run's report.md and figures",
                                 description="Re-render runs/<name>/report.md and tradeoffs.png from report.json.")
    report.add_argument("name", help="run folder under runs/")
    report.set_defaults(handler=_report)
    return parser


# What TensorFlow's C++ side logs at import whatever TF_CPP_MIN_LOG_LEVEL says: absl's
# pre-initialization notice, info lines, CPU-feature advice and the missing-CUDA error.
TENSORFLOW_IMPORT_NOISE = re.compile(r"^(WARNING: All log messages before absl|I\d{4} |To enable the following|"
                                     r"E\d{4} .*(cuInit|cuda))")


def import_tensorflow_quietly():
    """Import TensorFlow once, passing on only what its import logs beyond the usual noise."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with native_stderr() as lines:
        import tensorflow  # noqa: F401
    forward(lines, is_noise=TENSORFLOW_IMPORT_NOISE.match)


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        if args.handler is not demo.run_from_args:
            import_tensorflow_quietly()
        args.handler(args)
    except KeyboardInterrupt:
        return 130
    except (ValueError, OSError) as error:
        if args.debug:
            raise
        message = " ".join(str(error).split()) or type(error).__name__
        print(f"mobilekit: error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
