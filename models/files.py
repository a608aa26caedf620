"""Writing outputs without leaving anything half-written behind.

``atomic_output(path)`` yields a new hidden file beside ``path``, ``.NAME.XXXXXXXX.tmp`` plus NAME's
suffixes (writers that go by the extension accept it: Keras' ``.keras`` and ``.weights.h5``, OpenCV's
video containers), and renames it onto ``path`` only when the block succeeds, so a reader finds the
previous file or the complete new one. A process killed mid-write leaves its temporary file, which
no reader of the kit lists (hidden); the next successful write of the same ``path`` removes such
leftovers (two processes writing one path at once are not supported: the last rename would win
anyway). A failed write raises an ``OSError`` of the same type and errno with one line that names
``path`` and the cause, e.g. ``cannot write runs/r/model_fp32.tflite: No space left on device``.
"""
import contextlib
import glob
import os
import pathlib
import secrets

TOKEN_DIGITS = 8  # hex digits of a temporary file's random part


def _affixes(name):
    """A temporary file for ``name`` is named ``prefix + TOKEN_DIGITS hex digits + suffix``."""
    return f".{name}.", f".tmp{''.join(pathlib.PurePath(name).suffixes)}"


def _write_error(path, error):
    """``error`` (an OSError) as one of its type and errno whose message is ``cannot write PATH: CAUSE``."""
    wrapped = type(error)(f"cannot write {os.fspath(path)}: {error.strerror or error}")
    wrapped.errno = error.errno
    return wrapped


@contextlib.contextmanager
def atomic_output(path):
    """Yield a new temporary path beside ``path``; rename it onto ``path`` when the block succeeds.

    On an exception the temporary file is removed and ``path`` is left as it was; an OSError
    becomes the one-line error of the module docstring.
    """
    directory, name = os.path.split(os.path.abspath(path))
    prefix, suffix = _affixes(name)
    tmp = os.path.join(directory, prefix + secrets.token_hex(TOKEN_DIGITS // 2) + suffix)
    try:
        os.makedirs(directory, exist_ok=True)
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # the umask's mode, as open() gives
        yield tmp
        os.replace(tmp, path)
    except OSError as error:
        raise _write_error(path, error) from error
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    for leftover in glob.glob(os.path.join(glob.escape(directory), glob.escape(prefix) + "[0-9a-f]" * TOKEN_DIGITS
                                           + glob.escape(suffix))):
        with contextlib.suppress(OSError):  # a leftover another process removed first
            os.remove(leftover)


def write_bytes(path, data):
    """Write ``data`` to ``path`` atomically."""
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def write_text(path, text):
    """Write ``text`` to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"))
