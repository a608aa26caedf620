"""Virtual environments the end-to-end tests make for themselves and keep between runs: the device install
(``demo_app`` on a board) and MediaPipe (whose opencv-contrib-python clashes with the kit's OpenCV)."""
import fcntl
import os
import shutil
import subprocess

import pytest

INSTALL_TIMEOUT_S = 900
STAMP = ".installed"  # inside the venv: the package list, written once the install finished


def _install_step(args, what, packages):
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{what} took over {INSTALL_TIMEOUT_S} s (is the package index reachable?)")
    if done.returncode:
        pytest.fail(f"{what} failed with exit code {done.returncode} (offline? the test needs {' '.join(packages)} "
                    f"from the package index):\n{(done.stdout + done.stderr)[-3000:]}")


def cached_venv(folder, packages, base_python=None):
    """``folder/bin/python`` of a venv holding ``packages``, made from ``base_python`` (default: ``python3`` on
    PATH) unless its stamp lists exactly ``packages``; a lock keeps two test runs from building it at once."""
    python, stamp = os.path.join(folder, "bin", "python"), os.path.join(folder, STAMP)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.isfile(stamp) and os.access(python, os.X_OK):
            with open(stamp) as f:
                if f.read().split() == list(packages):
                    return python
            os.remove(stamp)
        base = base_python or shutil.which("python3")
        if base is None:
            pytest.fail(f"no python3 on PATH to make {folder} with")
        _install_step([base, "-m", "venv", folder], f"python3 -m venv {folder}", packages)
        _install_step([python, "-m", "pip", "install", "-q", *packages], f"pip install into {folder}", packages)
        with open(stamp, "w") as f:
            f.write("\n".join(packages) + "\n")
    return python
