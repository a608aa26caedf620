"""Atomic outputs, ``models.files`` and the demo's copy ``demo_app.files``: a failed write leaves the previous
file and no temporary file and says in one line which file failed and why; a killed writer's leftover is
hidden, skipped by the demo's sources and removed by the next write of its file."""
import errno
import os

import faults
import numpy as np
import pytest
from PIL import Image

from demo_app.files import AtomicFile
from demo_app.sources import open_folder
from models.files import atomic_output, write_bytes


@pytest.fixture(params=["models.files", "demo_app.files"])
def helper(request):
    return {"models.files": atomic_output, "demo_app.files": AtomicFile}[request.param]


def write_with(helper, path, data):
    with helper(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def test_a_full_disk_keeps_the_previous_file(tmp_path, helper):
    target = tmp_path / "model.tflite"
    write_with(helper, target, b"previous")
    with faults.full_disk(tmp_path, "model.tflite", room=3), pytest.raises(OSError) as failed:
        write_with(helper, target, b"new, longer than the room left")
    assert failed.value.errno == errno.ENOSPC
    assert str(failed.value) == f"cannot write {target}: No space left on device"
    assert target.read_bytes() == b"previous" and os.listdir(tmp_path) == ["model.tflite"]


def test_a_read_only_folder_is_one_line_naming_the_file(tmp_path, helper):
    target = tmp_path / "run" / "report.json"
    target.parent.mkdir()
    target.write_bytes(b"previous")
    with faults.read_only(target.parent), pytest.raises(PermissionError) as failed:
        write_with(helper, target, b"new")
    assert failed.value.errno == errno.EACCES and str(failed.value) == f"cannot write {target}: Permission denied"
    assert target.read_bytes() == b"previous" and os.listdir(target.parent) == ["report.json"]


def test_temporary_files_are_hidden_keep_the_suffixes_and_get_the_umask_mode(tmp_path, helper):
    with helper(tmp_path / "a.weights.h5") as tmp:  # Keras saves weights only to names ending .weights.h5
        name = os.path.basename(tmp)
        assert name.startswith(".a.weights.h5.") and name.endswith(".tmp.weights.h5")
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(tmp_path / "a.weights.h5").st_mode & 0o777 == 0o666 & ~umask


def test_the_next_write_removes_a_killed_writers_leftovers_of_that_file_only(tmp_path):
    leftovers = [".model.tflite.0123abcd.tmp.tflite", ".model.tflite.ffffffff.tmp.tflite"]
    others = [".model.tflite.0123abcd.tmp.tflite.keep", ".model_int8.tflite.0123abcd.tmp.tflite", "notes.txt"]
    for name in leftovers + others:
        (tmp_path / name).write_bytes(b"half")
    write_bytes(str(tmp_path / "model.tflite"), b"new")
    assert sorted(os.listdir(tmp_path)) == sorted(["model.tflite", *others])


def test_the_demo_reads_no_hidden_leftover_as_a_frame(tmp_path):
    for name in ("frame_00000.png", ".frame_00001.png.0123abcd.tmp.png"):
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / name)
    assert [name for name, _ in open_folder(str(tmp_path))] == ["frame_00000.png"]
