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

QUANTIZATIONS = ("fp32", "fp16", "dynamic", "int8", "binary")


def _given(args, *names):
    """The options the user set; the job's own defaults apply to the rest."""
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def _quickstart(args):
    if args.task == "segment":
        from tflite.segment_job import segment_quickstart

        segment_quickstart(name=args.name or "quickstart_segment", **_given(args, "epochs", "image_size", "alpha"))
        return
    if args.task == "detect":
        from tflite.detect_job import detect_quickstart

        detect_quickstart(name=args.name or "quickstart_detect", **_given(args, "epochs", "image_size", "alpha"))
        return
    from tflite.quickstart import quickstart

    quickstart(name=args.name or "quickstart", **_given(args, "epochs", "image_size", "alpha"))


def _train(args):
    if args.task == "segment":
        from tflite.segment_job import train_segmentation

        train_segmentation(name=args.name, backbone=args.arch or "mobilenet_v3_large",
                           **_given(args, "head", "output_stride", "data", "image_size", "alpha", "epochs",
                                    "batch_size", "learning_rate", "patience", "seed"))
        return
    if args.task == "detect":
        from models.detection_train import train_detection

        train_detection(name=args.name, **_given(args, "arch", "data", "image_size", "alpha", "epochs", "batch_size",
                                                 "learning_rate", "seed"))
        return
    from models.jobs import train

    train(name=args.name, **_given(args, "arch", "data", "image_size", "alpha", "epochs", "batch_size",
                                   "learning_rate", "patience", "seed"))


def _export(args):
    if args.qat or args.prune:
        from tflite.optimize_report import export_with_optimization

        export_with_optimization(args.name, qat_epochs=args.qat_epochs if args.qat else 0,
                                 prune_sparsity=args.prune or 0.0)
        return
    from models.runs import load_report

    task = load_report(os.path.join("runs", args.name)).get("config", {}).get("task")
    if task == "detect":
        from tflite.detect_job import export_detector

        for row in export_detector(args.name, args.quantization)[1:]:
            print(f"{row['file']}: {row['size_bytes'] / 1e6:.2f} MB, mAP@0.5 {row['map50']:.4f}, "
                  f"mAP@[.5:.95] {row['map']:.4f}")
        return
    if task == "segment":
        from tflite.segment_job import export_segmentation

        for row in export_segmentation(args.name, args.quantization):
            print(f"{row['file']}: {row['size_bytes'] / 1e6:.2f} MB, mIoU {row['tflite_miou']:.4f} "
                  f"(Keras {row['keras_miou']:.4f}), pixel agreement {row['pixel_agreement']:.4f}")
        return
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
    names = [os.path.basename(row["model"]) for row in rows]
    width = max(len("model"), *map(len, names))
    print(f"{'model':{width}} {'median ms':>10} {'p90 ms':>8} {'ratio':>6} {'MB':>7} {'peak RSS MB':>12}")
    for name, row in zip(names, rows):
        print(f"{name:{width}} {row['median_ms']:10.3f} {row['p90_ms']:8.3f} {row['latency_ratio']:6.2f} "
              f"{row['size_bytes'] / 1e6:7.2f} {row['peak_rss_mb']:12.1f}")


def _zoo(args):
    from tflite.zoo import LARGE_ZOO, ZOO, run_zoo

    pool = ZOO + LARGE_ZOO if args.all or args.only else ZOO
    entries = [e for e in pool if not args.only or e.label in args.only or e.arch in args.only]
    if not entries:
        raise ValueError(f"--only {' '.join(args.only)} matches no zoo entry: expected labels or architectures "
                         f"among {', '.join(e.label for e in pool)}")
    rows = run_zoo(name=args.name, entries=entries, **_given(args, "image_size", "epochs", "seed", "runs"))
    print(f"{'model':22} {'params':>10} {'MMACs':>8} {'fp32 ms':>8} {'int8 ms':>8} {'int8 KB':>8} {'int8 acc':>8}")
    for row in rows:
        print(f"{row['model']:22} {row['params']:10,} {row['macs'] / 1e6:8.2f} {row['fp32_ms']:8.3f} "
              f"{row['int8_ms']:8.3f} {row['int8_bytes'] / 1024:8.0f} {row['int8_accuracy']:8.4f}")
    print(f"wrote runs/{args.name}/report.md")


def _number(value, width):
    """``value`` to 4 decimals in ``width`` columns; a dash for None (a file the runtime refused)."""
    return f"{'-':>{width}}" if value is None else f"{value:{width}.4f}"


def _binary(args):
    from tflite.binary_report import ROWS, run_binary_table

    rows = [row for row in ROWS if not args.only or row.variant in args.only]
    if not rows:
        raise ValueError(f"--only {' '.join(args.only)} matches no variant: expected some of "
                         f"{', '.join(row.variant for row in ROWS)}")
    seeds = {} if args.seeds is None else {"seeds": tuple(range(args.seeds))}
    table = run_binary_table(name=args.name, rows=rows, **_given(args, "epochs"), **seeds)
    print(f"{'model':20} {'accuracy':>15} {'params':>8} {'binary MACs':>12} {'ACE':>14} {'weight KB':>9} "
          f"{'binary agree':>12} {'binary KB':>9} {'int8 agree':>10}")
    for row in table:
        print(f"{row['model']:20} {row['accuracy_mean']:8.4f}+-{row['accuracy_std']:.4f} {row['params']:8,} "
              f"{row['binary_macs']:12,} {row['ace']:14,} {row['weight_bits'] / 8192:9.1f} "
              f"{_number(row['binary_agreement'], 12)} {row['binary_bytes'] / 1024:9.1f} "
              f"{_number(row['int8_agreement'], 10)}")
    print(f"wrote runs/{args.name}/report.md")


def _report(args):
    from tflite.report import render

    render(os.path.join("runs", args.name))
    print(f"wrote runs/{args.name}/report.md")


def _optimize(args):
    from tflite.optimize_report import run_in_tf_keras

    run_in_tf_keras("compare", ["--name", args.name, "--archs", *args.archs, "--image-size", args.image_size,
                                "--epochs", args.epochs, "--finetune-epochs", args.finetune_epochs,
                                "--sparsity", args.sparsity, "--qsfm-ratio", args.qsfm_ratio, "--runs", args.runs])
    print(f"wrote runs/{args.name}/report.md")


def _qsfm(args):
    from tflite.optimize_report import qsfm_experiment

    _, summary = qsfm_experiment(args.name, args.arch, epochs=args.epochs, ratio=args.ratio, runs=args.runs,
                                 reuse=args.reuse)
    print(f"QSFM: {summary['macs_reduction']:.1%} fewer MACs, {summary['params_reduction']:.1%} fewer parameters, "
          f"accuracy {summary['accuracy_change_points']:+.2f} points, fp32 latency x{summary['latency_ratio']:.2f}")
    print(f"wrote runs/{args.name}/report.md")


def _add_training_flags(parser):
    parser.add_argument("--image-size", type=int, help="square input size in pixels (default 48)")
    parser.add_argument("--alpha", type=float, help="width multiplier (default 0.35)")
    parser.add_argument("--epochs", type=int, help="maximum epochs (default 40)")


def _add_task_flag(parser):
    parser.add_argument("--task", choices=("classify", "detect", "segment"), default="classify",
                        help="classify (default), detect or segment")


def build_parser():
    parser = argparse.ArgumentParser(prog="mobilekit", description="Efficient on-device vision with Keras and TFLite.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    quick = commands.add_parser("quickstart", help="train, export, validate, time and demo a digits classifier",
                                description="The whole path on digits, written to runs/<name>/.")
    quick.add_argument("--name", help="run folder under runs/ (default quickstart, quickstart_segment, "
                                      "quickstart_detect)")
    _add_task_flag(quick)
    _add_training_flags(quick)
    quick.set_defaults(handler=_quickstart)

    train = commands.add_parser("train", help="train a classifier into runs/<name>/",
                                description="Train a classifier; writes model.keras, labels.txt, "
                                            "training_curves.png and report.json/report.md.")
    train.add_argument("--name", default="train", help="run folder under runs/ (default train)")
    _add_task_flag(train)
    train.add_argument("--arch", help="architecture, the backbone for segment and detect (default mobilenet_v2; "
                                      "segment: mobilenet_v3_large)")
    train.add_argument("--data",
                       help="'digits' or a folder with one sub-folder of images per class (default digits); "
                            "segment: 'shapes' or a folder with images/ and masks/ (default shapes); "
                            "detect: 'shapes', a Pascal VOC folder or a COCO .json file (default shapes)")
    train.add_argument("--head", choices=("lr_aspp", "mobile_deeplabv3"),
                       help="segment: segmentation head (default lr_aspp)")
    train.add_argument("--output-stride", type=int, choices=(8, 16, 32),
                       help="segment: backbone output stride (default 16)")
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
    export.add_argument("--qat", action="store_true",
                        help="quantization-aware fine-tuning (TFMOT, in a tf_keras process), then model_qat_int8.tflite")
    export.add_argument("--qat-epochs", type=int, default=3, help="QAT fine-tuning epochs (default 3)")
    export.add_argument("--prune", type=float, metavar="SPARSITY",
                        help="magnitude-prune to this sparsity (e.g. 0.5) while fine-tuning, then "
                             "model_pruned_int8.tflite")
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
    zoo.add_argument("--only", nargs="+", help="zoo labels or architecture names to include, the large ones too "
                                               "(default every network but the large ones)")
    zoo.add_argument("--all", action="store_true",
                     help="add the ImageNet-size networks (ResNet-18/50, DenseNet-121, RegNetX/G-GhostNet-3.2GF): "
                          "about 10 more minutes")
    zoo.add_argument("--image-size", type=int, help="square input size (default 32)")
    zoo.add_argument("--epochs", type=int, help="epochs per network (default 4)")
    zoo.add_argument("--seed", type=int, help="seed of split, initialization and shuffling (default 0)")
    zoo.add_argument("--runs", type=int, help="timed invocations per model (default 30)")
    zoo.set_defaults(handler=_zoo)

    binary = commands.add_parser("binary", help="float vs binary vs low-bit ResNets on digits, over seeds",
                                 description="Train float, BWN, XNOR, QNN (W1A2), PokeBNN-style and Rep-XNOR "
                                             "ResNets on digits from several seeds; one table of accuracy "
                                             "(mean +- std), binary MACs, ACE and weight bits, and a plot.")
    binary.add_argument("--name", default="binary", help="run folder under runs/ (default binary)")
    binary.add_argument("--only", nargs="+", help="variants to include (default all)")
    binary.add_argument("--epochs", type=int, help="epochs per training run (default 8)")
    binary.add_argument("--seeds", type=int, help="number of seeds, 0, 1, ... (default 3)")
    binary.set_defaults(handler=_binary)

    optimize = commands.add_parser("optimize", help="compare fp32, PTQ, QAT, pruned and QSFM-pruned models",
                                   description="Train each architecture on digits, then export fp32, PTQ int8, "
                                               "QAT int8, magnitude-pruned int8 and QSFM-pruned int8 and time them "
                                               "side by side (runs in a tf_keras process).")
    optimize.add_argument("--name", default="optimize", help="run folder under runs/ (default optimize)")
    optimize.add_argument("--archs", nargs="+", default=["mobilenet_v2", "mobilenet_v3_small"],
                          help="architectures (default mobilenet_v2 mobilenet_v3_small)")
    optimize.add_argument("--image-size", type=int, default=32, help="square input size (default 32)")
    optimize.add_argument("--epochs", type=int, default=10, help="training epochs (default 10)")
    optimize.add_argument("--finetune-epochs", type=int, default=3,
                          help="QAT / pruning / QSFM fine-tuning epochs (default 3)")
    optimize.add_argument("--sparsity", type=float, default=0.5, help="magnitude-pruning sparsity (default 0.5)")
    optimize.add_argument("--qsfm-ratio", type=float, default=0.3,
                          help="share of each prunable group's filters QSFM removes (default 0.3)")
    optimize.add_argument("--runs", type=int, default=30, help="timed invocations per model (default 30)")
    optimize.set_defaults(handler=_optimize)

    qsfm = commands.add_parser("qsfm", help="QSFM filter pruning of a trained CIFAR-style ResNet, no fine-tuning",
                               description="Train --arch on digits, remove --ratio of the filters of every "
                                           "prunable group by QSFM, compare MACs, accuracy and TFLite latency.")
    qsfm.add_argument("--name", default="qsfm_resnet56", help="run folder under runs/ (default qsfm_resnet56)")
    qsfm.add_argument("--arch", default="resnet56", help="architecture (default resnet56)")
    qsfm.add_argument("--epochs", type=int, default=15, help="training epochs (default 15)")
    qsfm.add_argument("--ratio", type=float, default=0.45, help="share of filters removed per group (default 0.45)")
    qsfm.add_argument("--runs", type=int, default=30, help="timed invocations per model (default 30)")
    qsfm.add_argument("--reuse", action="store_true", help="prune the run's trained model.keras instead of training")
    qsfm.set_defaults(handler=_qsfm)

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
