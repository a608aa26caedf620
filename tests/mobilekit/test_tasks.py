"""The tasks: defaults stated once and read by the CLI, flags that do not apply are errors."""
import pytest

from mobilekit.cli import build_parser, main
from mobilekit.tasks import TASKS
from mobilekit.tasks.classify import CLASSIFY
from mobilekit.tasks.detect import DETECT
from mobilekit.tasks.segment import SEGMENT
from models.registry import TASK_NAMES
from tflite import QUANTIZATIONS


def _subparser(command):
    return build_parser()._subparsers._group_actions[0].choices[command]


def _option(command, flag):
    return next(action for action in _subparser(command)._actions if flag in action.option_strings)


def test_the_tasks_are_the_registry_tasks():
    assert tuple(TASKS) == TASK_NAMES


def test_export_offers_every_quantization_the_converter_has():
    """``export --quantization`` had its own copy of the list, without ``binary``."""
    choices = _option("export", "--quantization").choices
    assert tuple(choices) == QUANTIZATIONS and "binary" in choices
    assert set(CLASSIFY.quantizations) == set(QUANTIZATIONS)


@pytest.mark.parametrize("command", ["train", "quickstart"])
@pytest.mark.parametrize("key", ["epochs", "image_size", "alpha", "batch_size", "learning_rate", "patience"])
def test_training_help_states_each_task_default(command, key):
    """The help said 48 px / alpha 0.35 / 40 epochs / batch 64 / lr 3e-3 for every task."""
    text = _option(command, f"--{key.replace('_', '-')}").help
    for name, task in TASKS.items():
        if key in task.defaults:
            assert f"{name} {task.defaults[key]}" in text, (key, name, text)
        else:
            assert f"{name} " not in text.split("(default")[-1], (key, name, text)


def test_task_defaults_differ_where_the_recipes_differ():
    assert (CLASSIFY.defaults["image_size"], DETECT.defaults["image_size"], SEGMENT.defaults["image_size"]) == \
        (48, 96, 96)


def test_defaults_for_builder_arguments_apply_only_where_the_builder_takes_them():
    assert CLASSIFY.config({"arch": "resnet20"}).get("alpha") is None
    assert CLASSIFY.config({})["alpha"] == 0.35
    assert SEGMENT.config({"arch": "pide_segmenter"}).get("output_stride") is None
    assert SEGMENT.config({})["output_stride"] == 16


@pytest.mark.parametrize("task, options, message", [
    (CLASSIFY, {"arch": "resnet20", "alpha": 0.5}, "--alpha does not apply to classify with --arch resnet20"),
    (CLASSIFY, {"output_stride": 8}, "--output-stride does not apply to classify"),
    (CLASSIFY, {"train_images": 8}, "--train-images does not apply to classify"),
    (DETECT, {"patience": 3}, "--patience does not apply to detect"),
    (SEGMENT, {"arch": "pide_segmenter", "backbone": "mobilenet_v2"}, "--backbone does not apply to segment"),
    (SEGMENT, {"backbone": "resnet20"}, "--backbone resnet20 is not a backbone with feature taps"),
    (SEGMENT, {"arch": "mobilenet_v2"}, "unknown segment architecture 'mobilenet_v2'"),
    (DETECT, {"arch": "lr_aspp"}, "unknown detect architecture 'lr_aspp'"),
])
def test_flags_that_do_not_apply_are_errors(task, options, message):
    with pytest.raises(ValueError) as error:
        task.config(options)
    assert message in str(error.value)


@pytest.mark.parametrize("argv, message", [
    (["train", "--task", "detect", "--patience", "3"], "--patience does not apply to detect"),
    (["train", "--arch", "resnet20", "--alpha", "0.5"], "--alpha does not apply to classify with --arch resnet20"),
    (["bench", "x.tflite", "--image-size", "96"], "--image-size does not apply to .tflite files"),
    (["bench", "--suite", "wht1d", "--arch", "resnet20"], "--arch does not apply with --suite"),
    (["export", "r", "--qat", "--quantization", "fp32"], "--quantization does not apply with --qat"),
    (["export", "r", "--qat-epochs", "2"], "--qat-epochs does not apply without --qat"),
])
def test_cli_refuses_flags_that_would_be_ignored(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
