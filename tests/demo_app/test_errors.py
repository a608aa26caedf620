"""The error policy (``demo_app.errors``): OS errors and the kit's own ValueErrors are bad input,
one line; a ValueError raised inside a library is a programming error that keeps its traceback."""
import numpy as np
import pytest

from demo_app.__main__ import main as demo_main
from demo_app.errors import is_input_error, raised_by_kit
from demo_app.preprocess import parse_input_range


def raised(function, *args):
    with pytest.raises(Exception) as caught:
        function(*args)
    return caught.value


def test_the_kits_value_errors_and_os_errors_are_input_errors_a_librarys_value_error_is_not(tmp_path):
    kit = raised(parse_input_range, "bogus")
    assert raised_by_kit(kit) and is_input_error(kit)
    library = raised(np.stack, [])  # a ValueError from inside numpy
    assert isinstance(library, ValueError) and not raised_by_kit(library) and not is_input_error(library)
    missing = raised(open, tmp_path / "nothing")
    assert isinstance(missing, OSError) and is_input_error(missing)
    assert not is_input_error(ValueError("never raised"))  # no traceback: nothing says who raised it
    assert not is_input_error(raised(lambda: {}["key"]))  # a KeyError is never bad input


def test_the_demo_prints_its_own_errors_in_one_line_and_lets_a_librarys_through(tmp_path, monkeypatch, capsys):
    args = ["--model", str(tmp_path / "m.tflite"), "--source", "x.png", "--headless"]
    assert demo_main(args) == 2
    assert capsys.readouterr().err.startswith("demo_app: error: model file not found")
    monkeypatch.setattr("demo_app.__main__.run_from_args", lambda parsed: np.stack([]))
    with pytest.raises(ValueError, match="need at least one array"):
        demo_main(args)
