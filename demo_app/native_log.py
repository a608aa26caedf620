"""Capture what native code (LiteRT, TensorFlow) writes straight to file descriptor 2.

Python's ``sys.stderr`` redirection cannot catch C++ logging, so the descriptor itself is
pointed at a temporary file for the duration, then restored; the caller decides which of
the captured lines to pass on.
"""
import contextlib
import os
import sys
import tempfile


@contextlib.contextmanager
def native_stderr():
    """Yield a list that receives, on exit, the lines written to descriptor 2 meanwhile."""
    lines = []
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to capture
        yield lines
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield lines
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines.extend(captured.read().decode(errors="replace").splitlines())


def forward(lines, is_noise):
    """Print the captured ``lines`` that ``is_noise`` rejects to ``sys.stderr``."""
    for line in lines:
        if line.strip() and not is_noise(line):
            print(line, file=sys.stderr)
