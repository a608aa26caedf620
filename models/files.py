"""Writing outputs without leaving anything half-written behind."""
import contextlib
import os
import tempfile


@contextlib.contextmanager
def atomic_output(path):
    """Yield a temporary path beside ``path`` (same suffix); rename it to ``path`` on success.

    On an exception the temporary file is removed and ``path`` is left as it was.
    """
    directory, name = os.path.split(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    suffix = os.path.splitext(name)[1]
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=f".tmp{suffix}", dir=directory)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_bytes(path, data):
    """Write ``data`` to ``path`` atomically."""
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def write_text(path, text):
    """Write ``text`` to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"))
