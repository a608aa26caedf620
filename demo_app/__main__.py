"""``python -m demo_app --model M.tflite --source SRC``: the demo on the board, TensorFlow-free.

Errors in the inputs (bad model, source, labels, output) print one line
``demo_app: error: <message>`` and exit with status 2; ``--debug`` shows the traceback instead,
as does an error the demo did not raise (``demo_app.errors``).
"""
import argparse
import sys

from demo_app.app import add_arguments, run_from_args
from demo_app.errors import is_input_error
from demo_app.runtime import one_line


def main(argv=None):
    parser = argparse.ArgumentParser(prog="demo_app", description="Classify camera, video or image frames "
                                     "with a .tflite model using the LiteRT runtime.")
    add_arguments(parser)
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    args = parser.parse_args(argv)
    try:
        run_from_args(args)
    except KeyboardInterrupt:
        return 130
    except (ValueError, OSError, ImportError) as exc:
        if args.debug or not is_input_error(exc):
            raise
        print(f"{parser.prog}: error: {one_line(exc)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
