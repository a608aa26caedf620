"""Simulated write failures inside one folder of a test: a full disk and a folder without write permission.

Test files import it as ``import faults`` (pytest puts tests/ on sys.path).

- ``full_disk(folder, name)``: files opened for writing under ``folder`` whose name is ``name`` or one of
  its hidden temporary files (``.NAME.*``) take ``room`` bytes in all, then their writes fail with
  ENOSPC, as on a full file system. It wraps ``builtins.open``, which Python writers call (the kit's
  ``write_bytes``, Pillow under matplotlib's ``savefig``; not ``io.open``, not native code).
- ``read_only(folder)``: ``folder`` gets mode 0o555. Where that does not stop writes (root ignores
  permission bits) creating or opening a file for writing there fails with EACCES instead, through
  ``os.open`` and ``builtins.open``.
"""
import builtins
import contextlib
import errno
import os
import types
from unittest import mock

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT


def _in(path, folder):
    """Whether ``path`` (a path, not a descriptor or a file object) lies in ``folder``."""
    return isinstance(path, (str, bytes, os.PathLike)) and \
        os.path.dirname(os.path.abspath(os.fsdecode(path))) == os.path.abspath(folder)


def _refuse(code, path=None):
    raise OSError(code, os.strerror(code), *([os.fsdecode(path)] if path is not None else []))


class _FillingFile:
    """A file object whose writes spend ``disk.room``; the write that does not fit writes what fits, then fails."""

    def __init__(self, file, disk):
        self._file, self._disk = file, disk

    def write(self, data):
        data = data if isinstance(data, str) else memoryview(data).cast("B")
        if len(data) > self._disk.room:
            fits, self._disk.room = self._disk.room, 0
            self._file.write(data[:fits])
            _refuse(errno.ENOSPC)
        self._disk.room -= len(data)
        return self._file.write(data)

    def __getattr__(self, name):
        return getattr(self._file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exception):
        self._file.close()


@contextlib.contextmanager
def full_disk(folder, name, room=100):
    """While active, writes to ``folder/name`` (or its temporary files) fail with ENOSPC after ``room`` bytes."""
    disk, real_open = types.SimpleNamespace(room=room), builtins.open

    def filling_open(file, mode="r", *args, **kwargs):
        opened = real_open(file, mode, *args, **kwargs)
        if _in(file, folder) and set(mode) & set("wax+"):
            base = os.path.basename(os.fsdecode(file))
            if base == name or base.startswith(f".{name}."):
                return _FillingFile(opened, disk)
        return opened

    with mock.patch.object(builtins, "open", filling_open):
        yield


@contextlib.contextmanager
def read_only(folder):
    """While active, ``folder`` refuses new files and writes (see the module docstring)."""
    os.chmod(folder, 0o555)
    try:
        if not os.access(folder, os.W_OK):
            yield
            return
        real_open, real_os_open = builtins.open, os.open

        def refusing_open(file, mode="r", *args, **kwargs):
            if _in(file, folder) and set(mode) & set("wax+"):
                _refuse(errno.EACCES, file)
            return real_open(file, mode, *args, **kwargs)

        def refusing_os_open(path, flags, *args, **kwargs):
            if _in(path, folder) and flags & WRITE_FLAGS:
                _refuse(errno.EACCES, path)
            return real_os_open(path, flags, *args, **kwargs)

        with mock.patch.object(builtins, "open", refusing_open), mock.patch.object(os, "open", refusing_os_open):
            yield
    finally:
        os.chmod(folder, 0o755)
