"""``mobilekit``: the kit's command line. It parses arguments and dispatches to the job that owns
each command; the tasks (``mobilekit.tasks``) and the jobs' signatures give the help texts and
defaults, so each default is stated once. ``mobilekit demo`` (like ``python -m demo_app``)
never loads TensorFlow.

Bad input (an OSError, or a ValueError the kit raised: ``demo_app.errors``) prints one line and
exits 2; ``--debug`` shows the traceback instead, and a ValueError raised inside TensorFlow or
another library (a programming error) keeps it. Training stopped by SIGINT / SIGTERM prints one line
saying how to resume and exits 130 / 143.
"""
import argparse
import inspect
import json
import os
import sys

from demo_app import app as demo
from demo_app.errors import is_input_error
from demo_app.preprocess import INPUT_RANGES
from demo_app.runtime import one_line
from mobilekit.quiet_tensorflow import import_tensorflow_quietly


def _given(args, *names):
    """The options the user set; the job's own defaults apply to the rest."""
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def _default(function, name):
    """The default of ``function``'s argument ``name`` (the one place it is stated)."""
    return inspect.signature(function).parameters[name].default


def _is_given(value):
    """Whether a parsed option was set (0 is a value; unset flags are None, False or an empty list)."""
    return value is not None and value is not False and value != []


def _refuse(args, reason, *names):
    """A one-line error when any option of ``names`` was given, because of ``reason``."""
    given = [f"--{name.replace('_', '-')}" for name in names if _is_given(getattr(args, name, None))]
    if given:
        raise ValueError(f"{' '.join(given)} does not apply {reason}")


# Training options: the keys of the tasks' ``defaults`` (and of builder arguments), their types and help.
TRAINING_FLAGS = (
    ("arch", str, None),
    ("backbone", str, "detect / segment: the backbone under the head (an architecture with feature taps)"),
    ("data", str, None),
    ("image_size", int, "square input size in pixels"),
    ("alpha", float, "width multiplier of the architecture (or of the backbone)"),
    ("output_stride", int, "segment: backbone output stride (8, 16 or 32, as the head allows)"),
    ("epochs", int, "maximum epochs"),
    ("batch_size", int, "batch size"),
    ("learning_rate", float, "peak Adam learning rate (cosine decay)"),
    ("patience", int, "early-stopping patience in epochs"),
    ("seed", int, "seed of the split, initialization and shuffling"),
    ("train_images", int, "detect / segment on shapes: training images"),
    ("validation_images", int, "detect / segment on shapes: validation images"),
    ("test_images", int, "detect / segment on shapes: test images"),
    ("strict", bool, "classify on an image folder: stop at the first unreadable image instead of skipping it "
                     "(skipped files are named in the report)"),
    ("augment", str, None),
    ("weights", str, "pretrained weights: 'imagenet' or a weights file (classify fine-tunes them in two phases, "
                     "see --freeze-epochs)"),
    ("freeze_epochs", int, None),
    ("strategy", str, "classify: tf.distribute strategy: default (one device), mirrored (all local GPUs), "
                      "multiworker (the workers of TF_CONFIG; trains under tf_keras), tpu; --batch-size is per "
                      "replica, each step's global batch is batch size x replicas"),
)


def _task_defaults(key):
    """``"classify X, detect Y"``: each task's default for option ``key`` (tasks without it left out)."""
    from mobilekit.tasks import TASKS

    return ", ".join(f"{name} {task.defaults[key]}" for name, task in TASKS.items() if key in task.defaults)


def _add_training_flags(parser):
    from mobilekit.tasks import TASKS

    parser.add_argument("--task", choices=list(TASKS), default="classify",
                        help="; ".join(f"{name}: {task.summary}" for name, task in TASKS.items()) +
                             " (default classify)")
    from models.input_pipeline import AUGMENTATIONS, DIGIT_AUGMENTATIONS, PHOTO_AUGMENTATIONS
    from models.train import FINE_TUNE_RATE, FREEZE_SHARE

    generated = {"arch": "architecture; " + "; ".join(f"{name}: {', '.join(task.architectures())}"
                                                       for name, task in TASKS.items()),
                 "data": "; ".join(f"{name}: {task.data_help}" for name, task in TASKS.items()),
                 "augment": "classify: on-the-fly augmentations, comma-separated, among "
                            f"{', '.join(AUGMENTATIONS)}, or none (default: {','.join(DIGIT_AUGMENTATIONS)} for the "
                            f"built-in data sets, {','.join(PHOTO_AUGMENTATIONS)} for image folders)",
                 "freeze_epochs": f"classify with --weights: phase 1 epochs, the pretrained layers frozen and the "
                                  f"head trained at --learning-rate; phase 2 trains every layer for the other "
                                  f"epochs at --learning-rate x {FINE_TUNE_RATE:g} (default with --weights: "
                                  f"--epochs x {FREEZE_SHARE:g}, at least 1; 0: one phase)"}
    for key, kind, text in TRAINING_FLAGS:
        text = text or generated[key]
        defaults = _task_defaults(key)
        kind = {"action": "store_true", "default": None} if kind is bool else {"type": kind}
        parser.add_argument(f"--{key.replace('_', '-')}", **kind,
                            help=f"{text} (default {defaults})" if defaults else text)


def _training_options(args):
    return _given(args, *(key for key, _, _ in TRAINING_FLAGS))


def _quickstart(args):
    from mobilekit.quickstart import quickstart

    quickstart(args.task, name=args.name, **_training_options(args))


def _train(args):
    from mobilekit.jobs import train

    train(args.task, name=args.name, resume=args.resume, **_training_options(args))


MODEL_EXPORT_FLAGS = ("task", "labels", "calibration_data", "validation_data", "train_data", "image_size",
                      "input_range")
INT8_DIAGNOSIS_FLAGS = ("int8_report", "float_layers", "float_worst")  # mobilekit.int8_diagnosis


def _export(args):
    if args.model:
        _refuse(args, "with --model (a model the kit did not train)", "prune", *INT8_DIAGNOSIS_FLAGS)
        _refuse(args, "with --model (TFMOT needs a network the kit's builders rebuild under tf_keras)", "qat_backend")
        if not args.qat:
            _refuse(args, "without --qat", "qat_epochs", "train_data")
        from mobilekit.model_export import export_model
        from mobilekit.optimize import QAT_EPOCHS

        options = {key: getattr(args, key) for key in MODEL_EXPORT_FLAGS if getattr(args, key) is not None}
        export_model(args.model, name=args.name, quantizations=args.quantization or ("fp32", "int8"),
                     qat_epochs=(args.qat_epochs or QAT_EPOCHS) if args.qat else 0, **options)
        return
    if not args.name:
        raise ValueError("export needs a run NAME (runs/NAME/model.keras) or --model PATH")
    _refuse(args, "to a run of the kit (it records them; they are for --model)", *MODEL_EXPORT_FLAGS)
    if any(_is_given(getattr(args, flag)) for flag in INT8_DIAGNOSIS_FLAGS):
        _refuse(args, "with --int8-report / --float-layers / --float-worst (they write files of their own)",
                "quantization", "qat", "qat_epochs", "qat_backend", "prune")
        from mobilekit.int8_diagnosis import diagnose

        diagnose(args.name, float_layers=args.float_layers or (), float_worst=args.float_worst or 0)
        return
    if args.qat or args.prune:
        _refuse(args, "with --qat / --prune (they write int8 files of their own)", "quantization")
        from mobilekit.optimize import QAT_EPOCHS, export_with_optimization

        export_with_optimization(args.name, qat_epochs=(args.qat_epochs or QAT_EPOCHS) if args.qat else 0,
                                 prune_sparsity=args.prune or 0.0, **_given(args, "qat_backend"))
        return
    _refuse(args, "without --qat", "qat_epochs", "qat_backend")
    from mobilekit.jobs import export

    export(args.name, args.quantization or _default(export, "quantizations"))


def _bench_suite(args, timing):
    from mobilekit.layer_bench import run_suite

    rows = run_suite(args.suite, quantizations=args.quantization or ("fp32", "int8"), **timing)
    if args.json:
        print(json.dumps({"suite": args.suite, "layers": rows}))
        return
    print(f"{'shape':12} {'layer':24} {'quant':6} {'params':>10} {'median ms':>10} {'speed-up':>9} {'params /':>9}")
    for row in rows:
        print(f"{row['shape']:12} {row['layer']:24} {row['quantization']:6} {row['params']:10,} "
              f"{row['median_ms']:10.3f} {row['speedup']:9.2f} {row['param_reduction']:9.1f}")


def _bench_profile(args, timing):
    _refuse(args, "with --profile (it profiles the one file it names)", "suite", "arch", "alpha", "image_size",
            "quantization")
    if args.models:
        raise ValueError(f"--profile profiles one .tflite file: {' '.join(args.models)} given besides it")
    from mobilekit.op_profile_report import profile_file, profile_text

    profile, folder = profile_file(args.profile, name=args.name, **timing)
    print(json.dumps(profile) if args.json else f"{profile_text(profile)}\nwrote {os.path.join(folder, 'report.md')}")


def _bench(args):
    from mobilekit import jobs

    progress = (lambda message: print(message, file=sys.stderr)) if args.json else print
    timing = {"runs": args.runs, "warmup": args.warmup, "threads": args.threads, "rounds": args.rounds,
              "progress": progress}
    if args.profile:
        _bench_profile(args, timing)
        return
    if args.suite:
        _refuse(args, "with --suite", "models", "arch", "alpha", "image_size")
        _bench_suite(args, timing)
        return
    if args.models:
        _refuse(args, "to .tflite files (they are timed as they are)", "arch", "alpha", "image_size", "quantization")
        rows = jobs.bench_files(args.models, name=args.name, **timing)
    else:
        rows = jobs.bench_architecture(args.arch or _default(jobs.bench_architecture, "arch"),
                                       **_given(args, "image_size", "alpha"), name=args.name,
                                       quantizations=args.quantization or ("fp32", "int8"), **timing)
    if args.json:
        print(json.dumps({"models": rows}))
        return
    names = [os.path.basename(row["model"]) for row in rows]
    width = max(len("model"), *map(len, names))
    print(f"{'model':{width}} {'median ms':>10} {'p90 ms':>8} {'ratio':>6} {'MB':>7} {'peak RSS MB':>12}")
    for name, row in zip(names, rows):
        print(f"{name:{width}} {row['median_ms']:10.3f} {row['p90_ms']:8.3f} {row['latency_ratio']:6.2f} "
              f"{row['size_bytes'] / 1e6:7.2f} {row['peak_rss_mb']:12.1f}")


def _seeds(args):
    """The job's ``seeds`` from ``--seeds N`` (0, 1, ..., N-1); the job's default when not given."""
    return {} if args.seeds is None else {"seeds": tuple(range(args.seeds))}


def _add_seeds(parser, function):
    parser.add_argument("--seeds", type=_bounded(int),
                        help=f"number of training seeds, 0, 1, ...: every model trains once per seed, accuracies "
                             f"are mean +- std and differences get 95%% intervals over seeds and test images "
                             f"(default {len(_default(function, 'seeds'))})")


def _add_data(parser, function):
    parser.add_argument("--data", help=f"a built-in data set (e.g. digits, patterns) or an image folder, split once "
                                       f"(seed 0) for every training seed (default {_default(function, 'data')})")


def _print_comparisons(name):
    """The run's comparisons (and latency comparisons), one line each, as report.md has them."""
    from mobilekit.runs import load_report, run_path

    report = load_report(run_path(name))
    for row in report.get("comparisons", []):
        verdict = f"  {row['claim']}: {row['verdict']}" if "verdict" in row else ""
        print(f"{row['method']} - {row['baseline']}: {row['difference_points']:+.2f} points "
              f"[{row['low_points']:+.2f}, {row['high_points']:+.2f}]{verdict}")
    for row in report.get("latency_comparisons", []):
        verdict = f"  {row['claim']}: {row['verdict']}" if "verdict" in row else ""
        print(f"{row['method']} / {row['baseline']} latency: {row['ratio']:.2f}x [{row['low']:.2f}, "
              f"{row['high']:.2f}]{verdict}")


def _zoo(args):
    from mobilekit.zoo import LARGE_ZOO, ZOO, run_zoo

    pool = ZOO + LARGE_ZOO if args.all or args.only else ZOO
    entries = [e for e in pool if not args.only or e.label in args.only or e.arch in args.only]
    if not entries:
        raise ValueError(f"--only {' '.join(args.only)} matches no zoo entry: expected labels or architectures "
                         f"among {', '.join(e.label for e in pool)}")
    rows = run_zoo(name=args.name, entries=entries, **_given(args, "data", "image_size", "epochs", "runs"),
                   **_seeds(args))
    print(f"{'model':22} {'params':>10} {'MMACs':>8} {'fp32 ms':>8} {'int8 ms':>8} {'int8 KB':>8} {'int8 acc':>8} "
          f"{'Keras accuracy':>17}")
    for row in rows:
        print(f"{row['model']:22} {row['params']:10,} {row['macs'] / 1e6:8.2f} {row['fp32_ms']:8.3f} "
              f"{row['int8_ms']:8.3f} {row['int8_bytes'] / 1024:8.0f} {row['int8_accuracy']:8.4f} "
              f"{row['accuracy_mean']:9.4f}+-{row['accuracy_std']:.4f}")
    _print_comparisons(args.name)
    _wrote(args.name)


def _number(value, width):
    """``value`` to 4 decimals in ``width`` columns; a dash for None (a file the runtime refused)."""
    return f"{'-':>{width}}" if value is None else f"{value:{width}.4f}"


def _binary(args):
    from mobilekit.binary_table import ROWS, run_binary_table

    rows = [row for row in ROWS if not args.only or row.variant in args.only]
    if not rows:
        raise ValueError(f"--only {' '.join(args.only)} matches no variant: expected some of "
                         f"{', '.join(row.variant for row in ROWS)}")
    table = run_binary_table(name=args.name, rows=rows, **_given(args, "data", "epochs"), **_seeds(args))
    print(f"{'model':20} {'accuracy':>15} {'params':>8} {'binary MACs':>12} {'ACE':>14} {'weight KB':>9} "
          f"{'binary agree':>12} {'binary KB':>9} {'int8 agree':>10}")
    for row in table:
        print(f"{row['model']:20} {row['accuracy_mean']:8.4f}+-{row['accuracy_std']:.4f} {row['params']:8,} "
              f"{row['binary_macs']:12,} {row['ace']:14,} {row['weight_bits'] / 8192:9.1f} "
              f"{_number(row['binary_agreement'], 12)} {row['binary_bytes'] / 1024:9.1f} "
              f"{_number(row['int8_agreement'], 10)}")
    _print_comparisons(args.name)
    _wrote(args.name)


def _transfer(args):
    from mobilekit.transfer import run_transfer

    names = ("name", "arch", "alpha", "source", "source_classes", "target", "target_classes", "fraction", "image_size",
             "pretrain_epochs", "epochs", "freeze_epochs", "batch_size")
    rows = run_transfer(**{name: getattr(args, name) for name in names}, **_seeds(args))
    print(f"{'start':12} {'train images':>12} {'epochs':>6} {'test accuracy':>20}")
    for row in rows:
        print(f"{row['start']:12} {row['train_images']:12} {row['epochs']:6} "
              f"{row['accuracy_mean']:13.4f} +- {row['accuracy_std']:.4f}")
    _print_comparisons(args.name)
    _wrote(args.name)


def _inspect(args):
    from tflite.inspect import inspect_model, inspect_text

    if not os.path.isfile(args.model):
        raise FileNotFoundError(f"model file not found: {args.model} (expected a .tflite file)")
    report = inspect_model(args.model)
    print(json.dumps(report) if args.json else inspect_text(report))


def _report(args):
    from mobilekit.report import render
    from mobilekit.runs import run_path

    render(run_path(args.name))
    _wrote(args.name)


def _optimize(args):
    from mobilekit.optimize import optimize_report

    optimize_report(**_given(args, "name", "archs", "data", "image_size", "epochs", "finetune_epochs", "sparsity",
                             "qsfm_ratio", "runs"), **_seeds(args))
    _print_comparisons(args.name)
    _wrote(args.name)


def _qsfm(args):
    from mobilekit.optimize import run_in_tf_keras

    run_in_tf_keras("qsfm", **_given(args, "name", "arch", "data", "epochs", "ratio", "runs"), **_seeds(args),
                    reuse=args.reuse)
    _print_comparisons(args.name)
    _wrote(args.name)


def _wrote(name):
    from mobilekit.runs import run_path

    print(f"wrote {os.path.join(run_path(name), 'report.md')}")


# Numeric options that may be 0 (besides those whose default is 0 or a list of indices), and shares (at most 1).
ZERO_ALLOWED = ("warmup", "freeze_epochs")
SHARES = ("fraction", "sparsity", "qsfm_ratio", "ratio")


def _claims(args):
    from mobilekit.claims import run_claims

    run_claims(name=args.name, budget=args.budget, seed=args.seed, only=args.only)
    _print_comparisons(args.name)
    _wrote(args.name)


def _bounded(kind, zero_allowed=False, share=False):
    """An argparse type: a ``kind`` number above 0 (at least 0 when ``zero_allowed``; at most 1 when a ``share``)."""
    def parse(text):
        value = kind(text)
        if not (value >= 0 if zero_allowed else value > 0) or (share and value > 1):
            bound = (">= 0" if zero_allowed else "> 0") + (" and <= 1" if share else "")
            raise argparse.ArgumentTypeError(f"{text} is out of range: expected a number {bound}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in "invalid int value"
    return parse


def _options(parser, function, flags):
    """Options of ``function``'s arguments: ``flags`` maps an argument to ``(type, help)``; the help
    ends with the function's default, and the option defaults to it. Numbers out of range (``_bounded``)
    are usage errors."""
    for name, (kind, text) in flags.items():
        default = _default(function, name)
        listed = isinstance(default, (tuple, list))
        shown = " ".join(map(str, default)) if listed else default
        extra = {"nargs": "+"} if listed else {}
        if kind in (int, float):
            kind = _bounded(kind, zero_allowed=listed or default == 0 or name in ZERO_ALLOWED, share=name in SHARES)
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, default=default, **extra,
                            help=f"{text} (default {shown})")


def build_parser():
    """The ``mobilekit`` parser, every subcommand with help for every flag."""
    from mobilekit import binary_table, claims, jobs, model_export, optimize, transfer, zoo
    from mobilekit.tasks import TASKS
    from tflite.converter import QUANTIZATIONS

    parser = argparse.ArgumentParser(prog="mobilekit", description="Efficient on-device vision with Keras and TFLite.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    quick = commands.add_parser("quickstart", help="train, export, validate, time and demo a model of one task",
                                description="The whole path for one task on its built-in data, written to "
                                            "runs/<name>/.")
    quick.add_argument("--name", help="run folder under runs/ (default " +
                                      ", ".join(f"{n}: {t.quickstart_name}" for n, t in TASKS.items()) + ")")
    _add_training_flags(quick)
    quick.set_defaults(handler=_quickstart)

    train = commands.add_parser("train", help="train a classifier, detector or segmenter into runs/<name>/",
                                description="Train a model; writes model.keras, labels.txt, training_curves.png "
                                            "and report.json/report.md. An option that does not apply to the "
                                            "task or the architecture is an error.")
    train.add_argument("--name", default="train", help="run folder under runs/ (default train)")
    train.add_argument("--resume", action="store_true",
                       help="continue run --name from its last epoch's checkpoint (runs/<name>/checkpoint/) with "
                            "its saved config; training options given must agree with it")
    _add_training_flags(train)
    train.set_defaults(handler=_train)

    export = commands.add_parser("export", help="convert a trained run, or any Keras model, to .tflite and validate it",
                                 description="Convert runs/<name>/model.keras and validate each file against it "
                                             "on the test split; or, with --model, a .keras/.h5 file or SavedModel "
                                             "folder the kit did not build, validated on --validation-data.")
    export.add_argument("name", nargs="?", help="run folder under runs/ holding model.keras; with --model, the run "
                                                "folder to write (default: the model file's name)")
    export.add_argument("--model", metavar="PATH", help="a Keras model to export: .keras or .h5 file, or SavedModel "
                                                        "folder")
    export.add_argument("--task", choices=model_export.TASKS,
                        help="--model: what it does (default classify); a detector needs the kit's SSDLite head")
    export.add_argument("--labels", metavar="FILE", help="--model: class names, one per line in class order "
                                                         "(default: the class indices)")
    export.add_argument("--calibration-data", metavar="FOLDER",
                        help="--model: images to calibrate int8 on (any layout, up to "
                             f"{model_export.CALIBRATION_IMAGES} used)")
    export.add_argument("--validation-data", metavar="FOLDER",
                        help="--model: images to check the files on; classifiers: one sub-folder per class, named "
                             "after the labels (accuracy, top-1 agreement)")
    export.add_argument("--train-data", metavar="FOLDER",
                        help="--model --qat: images to fine-tune on, one sub-folder per class named after the labels")
    export.add_argument("--image-size", type=_bounded(int),
                        help="--model: side of the static input, when the model's height and width are free (e.g. "
                             "keras.applications without input_shape)")
    export.add_argument("--input-range", choices=list(INPUT_RANGES),
                        help="--model: pixel range the model expects: 0,255 (default), 0,1 or -1,1 "
                             "(write --input-range=-1,1; keras.applications MobileNetV2 takes -1,1)")
    export.add_argument("--quantization", nargs="+", choices=QUANTIZATIONS,
                        help="one or more of " + "; ".join(f"{n}: {', '.join(t.quantizations)}"
                                                           for n, t in TASKS.items()) +
                             f" (default {' '.join(_default(jobs.export, 'quantizations'))})")
    export.add_argument("--qat", action="store_true",
                        help="classify: quantization-aware fine-tuning of the Keras 3 model, then "
                             "model_qat_int8.tflite (integer-only int8)")
    export.add_argument("--qat-epochs", type=int, help=f"QAT fine-tuning epochs (default {optimize.QAT_EPOCHS})")
    export.add_argument("--qat-backend", choices=optimize.QAT_BACKENDS,
                        help="native: the kit's fake quantization in this process (default); tfmot: TFMOT in a "
                             "tf_keras process, writing model_qat_tfmot_int8.tflite")
    export.add_argument("--prune", type=float, metavar="SPARSITY",
                        help="classify: magnitude-prune to this sparsity (e.g. 0.5) while fine-tuning, then "
                             "model_pruned_int8.tflite")
    export.add_argument("--int8-report", action="store_true",
                        help="classify / segment: the int8 error of each layer (TensorFlow's quantization debugger "
                             "on the calibration images; rmse/scale near 0.29 is rounding alone, above 0.7 suspect): "
                             "int8_report.json, int8_report.png and the worst layers in report.md")
    export.add_argument("--float-layers", nargs="+", metavar="TENSOR",
                        help="write model_int8_selective.tflite with these layers kept float (their output tensor "
                             "names, the 'tensor' of int8_report.json), the rest int8, and validate and time it "
                             "against model_fp32/model_int8.tflite; writes the int8 report too")
    export.add_argument("--float-worst", type=int, metavar="K",
                        help="like --float-layers, keeping float the K layers of highest rmse/scale (with "
                             "--float-layers: those and these)")
    export.set_defaults(handler=_export)

    bench = commands.add_parser("bench", help="time .tflite files side by side",
                                description="Time .tflite files (or an architecture converted on the "
                                            "spot) in interleaved rounds, one fresh process per model.")
    bench.add_argument("models", nargs="*", help=".tflite files; none: build --arch and convert it")
    bench.add_argument("--suite", help="time a layer suite instead (a layer vs the layers it replaces, "
                                       "see mobilekit/suites)")
    bench.add_argument("--arch", help=f"architecture when no files are given "
                                      f"(default {_default(jobs.bench_architecture, 'arch')})")
    bench.add_argument("--alpha", type=_bounded(float), help="width multiplier of --arch (default: the builder's)")
    bench.add_argument("--image-size", type=_bounded(int), help=f"input size of --arch "
                                                      f"(default {_default(jobs.bench_architecture, 'image_size')})")
    bench.add_argument("--quantization", nargs="+", choices=QUANTIZATIONS,
                       help="conversions of --arch or --suite to time (default fp32 int8)")
    _options(bench, jobs.bench_files, {"runs": (int, "timed invocations per model"),
                                       "warmup": (int, "untimed invocations per process"),
                                       "threads": (int, "interpreter threads"),
                                       "rounds": (int, "interleaved rounds the runs are split into")})
    bench.add_argument("--profile", metavar="MODEL",
                       help="profile one .tflite file operator by operator instead: time per op type and per "
                            "operator, which run on XNNPACK, the XNNPACK / fallback segments, the sum of the "
                            "operators vs the whole model; writes op_profile.png and the report into runs/<name>/")
    bench.add_argument("--name", help="also write the figures into runs/<name>/report.json (--profile: default "
                                      "profile_<file stem>)")
    bench.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    bench.set_defaults(handler=_bench)

    demo_parser = commands.add_parser("demo", help="run a .tflite classifier on images, video or a camera",
                                      description="The device demo (LiteRT runtime only; no TensorFlow).")
    demo.add_arguments(demo_parser)
    demo_parser.set_defaults(handler=demo.run_from_args)

    zoo_parser = commands.add_parser("zoo", help="train, export and time every architecture side by side",
                                     description="Train each zoo network briefly on digits at one input size "
                                                 "from each seed, export fp32 and int8 of the first seed's, "
                                                 "validate and time them; one table (accuracy mean +- std over "
                                                 "seeds), the paired differences the papers claim with 95% "
                                                 "intervals and verdicts, and a scatter plot.")
    zoo_parser.add_argument("--only", nargs="+", help="zoo labels or architecture names to include, the large ones "
                                                      "too (default every network but the large ones)")
    zoo_parser.add_argument("--all", action="store_true",
                            help="add the ImageNet-size networks (ResNet-18/50, DenseNet-121, RegNetX/G-GhostNet-"
                                 "3.2GF): about 10 more minutes")
    _options(zoo_parser, zoo.run_zoo, {"name": (str, "run folder under runs/"), "image_size": (int, "square input size"),
                                       "epochs": (int, "epochs per network"),
                                       "runs": (int, "timed invocations per model")})
    _add_data(zoo_parser, zoo.run_zoo)
    _add_seeds(zoo_parser, zoo.run_zoo)
    zoo_parser.set_defaults(handler=_zoo)

    binary = commands.add_parser("binary", help="float vs binary vs low-bit ResNets on digits, over seeds",
                                 description="Train float, BWN, XNOR, QNN (W1A2), PokeBNN-style and Rep-XNOR "
                                             "ResNets on digits from several seeds; one table of accuracy "
                                             "(mean +- std), binary MACs, ACE and weight bits, each variant's "
                                             "paired difference from Float and Rep-XNOR's from XNOR with 95% "
                                             "intervals, and a plot.")
    binary.add_argument("--only", nargs="+", help="variants to include (default all)")
    _options(binary, binary_table.run_binary_table, {"name": (str, "run folder under runs/"),
                                                     "epochs": (int, "epochs per training run")})
    _add_data(binary, binary_table.run_binary_table)
    _add_seeds(binary, binary_table.run_binary_table)
    binary.set_defaults(handler=_binary)

    transfer_parser = commands.add_parser(
        "transfer", help="fine-tuning from pretrained weights vs training from scratch on a small data set",
        description="Pretrain --arch on --source (--source-classes of it), then train it on --fraction of "
                    "--target's training images (of --target-classes) from scratch and fine-tuned from the pretrained weights (the mechanism of train --weights), the "
                    "same epochs for both, for each seed; one table of test accuracy and the paired "
                    "difference fine-tuned - scratch with its 95% interval and verdict.")
    _options(transfer_parser, transfer.run_transfer, {
        "name": (str, "run folder under runs/"), "arch": (str, "architecture"), "alpha": (float, "width multiplier"),
        "source": (str, "data set to pretrain on"), "target": (str, "data set to fine-tune on"),
        "source_classes": (int, "the source's classes used (indices; list every class to use all)"),
        "target_classes": (int, "the target's classes used (indices; list every class to use all)"),
        "fraction": (float, "share of the target's training images used"), "image_size": (int, "square input size"),
        "pretrain_epochs": (int, "epochs on the source"), "epochs": (int, "epochs on the target, both starts"),
        "freeze_epochs": (int, "fine-tuning's epochs with the pretrained layers frozen"),
        "batch_size": (int, "batch size")})
    _add_seeds(transfer_parser, transfer.run_transfer)
    transfer_parser.set_defaults(handler=_transfer)

    optimize_parser = commands.add_parser("optimize", help="compare fp32, PTQ, QAT, pruned and QSFM-pruned models",
                                          description="Train each architecture on digits, then export fp32, PTQ "
                                                      "int8, QAT int8, magnitude-pruned int8 and QSFM-pruned int8 "
                                                      "from each seed and time the first seed's side by side "
                                                      "(TFMOT's in a tf_keras process); each variant's paired "
                                                      "difference from fp32 with its 95% interval.")
    _options(optimize_parser, optimize.optimize_report, {
        "name": (str, "run folder under runs/"), "archs": (str, "architectures"),
        "image_size": (int, "square input size"), "epochs": (int, "training epochs"),
        "finetune_epochs": (int, "QAT / pruning / QSFM fine-tuning epochs"),
        "sparsity": (float, "magnitude-pruning sparsity"),
        "qsfm_ratio": (float, "share of each prunable group's filters QSFM removes"),
        "runs": (int, "timed invocations per model")})
    _add_data(optimize_parser, optimize.optimize_report)
    _add_seeds(optimize_parser, optimize.optimize_report)
    optimize_parser.set_defaults(handler=_optimize)

    qsfm = commands.add_parser("qsfm", help="QSFM filter pruning of a trained CIFAR-style ResNet, no fine-tuning",
                               description="Train --arch on digits from each seed, remove --ratio of the filters "
                                           "of every prunable group by QSFM, compare MACs, TFLite latency and "
                                           "accuracy (paired over seeds and test images, 95% interval, the QSFM "
                                           "claim's verdict).")
    _options(qsfm, optimize.qsfm_experiment, {"name": (str, "run folder under runs/"), "arch": (str, "architecture"),
                                              "epochs": (int, "training epochs"),
                                              "ratio": (float, "share of filters removed per group"),
                                              "runs": (int, "timed invocations per model")})
    _add_data(qsfm, optimize.qsfm_experiment)
    _add_seeds(qsfm, optimize.qsfm_experiment)
    qsfm.add_argument("--reuse", action="store_true",
                      help="prune each seed's trained model.keras of the run (seed<N>/) instead of training")
    qsfm.set_defaults(handler=_qsfm)

    inspect = commands.add_parser("inspect", help="what a .tflite file holds: ops, tensors, quantization, metadata, "
                                                  "where its bytes go",
                                  description="Read a .tflite file's flatbuffer (no interpreter): operators with "
                                              "counts and weight bytes, inputs and outputs with shapes, dtypes and "
                                              "quantization, metadata and appended files, and the file size split "
                                              "into weights, metadata and graph.")
    inspect.add_argument("model", help="the .tflite file")
    inspect.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    inspect.set_defaults(handler=_inspect)

    claims_parser = commands.add_parser(
        "claims", help="the seed papers' headline claims measured, with intervals and verdicts",
        description="Train each claim's method and baseline from several seeds on the procedural patterns set "
                    "(5,000 held-out images), give each difference a 95% interval over seeds and images and mark the "
                    "claim reproduced, not reproduced or inconclusive; one table (runs/<name>/claims.md).")
    claims_parser.add_argument("--budget", choices=tuple(claims.BUDGETS), default=_default(claims.run_claims, "budget"),
                               help="quick: about 15 minutes on 2 cores; full: about an hour (default %(default)s)")
    claims_parser.add_argument("--only", nargs="+", help="claims to run (default all)")
    _options(claims_parser, claims.run_claims, {"name": (str, "run folder under runs/"),
                                                "seed": (int, "first of the budget's seeds (seed, seed + 1, ...)")})
    claims_parser.set_defaults(handler=_claims)

    report = commands.add_parser("report", help="re-render a run's report.md and figures",
                                 description="Re-render runs/<name>/report.md and tradeoffs.png from report.json.")
    report.add_argument("name", help="run folder under runs/")
    report.set_defaults(handler=_report)
    return parser


def _demo_parser():
    """The parser of ``mobilekit demo`` alone: it imports nothing of TensorFlow."""
    parser = argparse.ArgumentParser(prog="mobilekit demo", description="The device demo (LiteRT runtime only).")
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    demo.add_arguments(parser)
    parser.set_defaults(handler=demo.run_from_args)
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if [arg for arg in argv if arg != "--debug"][:1] == ["demo"]:
        argv.remove("demo")
        args = _demo_parser().parse_args(argv)
    else:
        import_tensorflow_quietly()
        args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except KeyboardInterrupt as stop:  # models.interrupt.TrainingInterrupted is one, with its exit code
        if hasattr(stop, "exit_code"):
            print(f"mobilekit: {stop}; resume with `mobilekit train --name {args.name} --resume`", file=sys.stderr)
        return getattr(stop, "exit_code", 130)
    except (ValueError, OSError, ImportError) as error:
        if args.debug or not is_input_error(error):
            raise
        print(f"mobilekit: error: {one_line(error)}", file=sys.stderr)
        return 2
    return 0
