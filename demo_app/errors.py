"""Which exceptions are the user's bad input (one line, exit 2) and which are programming errors
(a traceback), for both command lines (``mobilekit``, ``python -m demo_app``).

- An ``OSError`` is the user's environment (a missing file, no permission, a full disk): one line.
- A ``ValueError`` (or an ``ImportError``: a missing optional dependency) is bad input when the
  kit raised it: the innermost frame of its traceback lies in one of the kit's packages. One
  raised inside TensorFlow, Keras, NumPy or any other library that the kit did not catch is a
  programming error and keeps its traceback. Where a library refuses a user's file (Pillow on a
  corrupt image, a JSON or XML parser, the interpreter on a non-model), the kit's reader catches
  that and raises its own ValueError naming the file.
"""
import os

KIT_PACKAGES = ("keras_layers", "models", "tflite", "mobilekit", "demo_app")
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_KIT_FOLDERS = tuple(os.path.join(_ROOT, name) + os.sep for name in KIT_PACKAGES)


def raised_by_kit(error):
    """Whether the innermost frame of ``error``'s traceback is in one of the kit's packages."""
    trace = error.__traceback__
    if trace is None:
        return False
    while trace.tb_next is not None:
        trace = trace.tb_next
    return os.path.abspath(trace.tb_frame.f_code.co_filename).startswith(_KIT_FOLDERS)


def is_input_error(error):
    """Whether ``error`` reports bad input, shown as one line (see the module docstring)."""
    return isinstance(error, OSError) or (isinstance(error, (ValueError, ImportError)) and raised_by_kit(error))
