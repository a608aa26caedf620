"""The demo's outputs written atomically: ``models.files``' scheme, which demo_app cannot import
(``models`` loads TensorFlow, and the device has none).

``AtomicFile(path)`` creates a new hidden file beside ``path``, ``.NAME.XXXXXXXX.tmp`` plus NAME's
suffixes (OpenCV picks a video's container by the extension), for a writer to fill over any number of
calls; ``close()`` renames it onto ``path`` and ``close(keep=False)`` removes it. As a context manager
it keeps the file when the block succeeds. A failure is an ``OSError`` of the same type and errno whose
one line names ``path`` and the cause. A process killed mid-write leaves the hidden temporary file,
which the demo's sources skip; unlike ``models.files``, the next write does not look for such leftovers,
since a frame folder gets a file per frame and scanning it for each would grow with its length.
"""
import os
import pathlib
import secrets


def _write_error(path, error):
    """``error`` (an OSError) as one of its type and errno whose message is ``cannot write PATH: CAUSE``."""
    wrapped = type(error)(f"cannot write {os.fspath(path)}: {error.strerror or error}")
    wrapped.errno = error.errno
    return wrapped


class AtomicFile:
    """A temporary file ``tmp`` that becomes ``path`` on ``close()`` (see the module docstring)."""

    def __init__(self, path):
        self.path = os.fspath(path)
        folder, name = os.path.split(os.path.abspath(self.path))
        self.tmp = os.path.join(folder, f".{name}.{secrets.token_hex(4)}.tmp{''.join(pathlib.PurePath(name).suffixes)}")
        try:
            os.makedirs(folder, exist_ok=True)
            os.close(os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except OSError as error:
            raise _write_error(self.path, error) from error

    def close(self, keep=True):
        """Rename the temporary file onto ``path`` (``keep``) or remove it."""
        try:
            if keep:
                os.replace(self.tmp, self.path)
        except OSError as error:
            raise _write_error(self.path, error) from error
        finally:
            if os.path.exists(self.tmp):
                os.remove(self.tmp)

    def __enter__(self):
        return self.tmp

    def __exit__(self, kind, error, trace):
        self.close(keep=error is None)
        if isinstance(error, OSError):
            raise _write_error(self.path, error) from error
