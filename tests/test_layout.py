"""The package layout of DESIGN.md: imports flow ``keras_layers <- models <- tflite <- mobilekit``,
``demo_app`` imports none of them, and importing a package has no side effects."""
import ast
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
# What each package may import of the kit's packages.
ALLOWED = {
    "keras_layers": {"keras_layers"},
    "models": {"keras_layers", "models"},
    "tflite": {"keras_layers", "models", "tflite", "demo_app"},
    "mobilekit": {"keras_layers", "models", "tflite", "mobilekit", "demo_app"},
    "demo_app": {"demo_app"},
}


def imported_packages(path):
    """The top-level names ``path`` imports (at any depth of the module, lazy imports included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_flow_one_way(package):
    kit = set(ALLOWED)
    wrong = {str(path.relative_to(ROOT)): sorted((imported_packages(path) & kit) - ALLOWED[package])
             for path in (ROOT / package).rglob("*.py")}
    assert not {path: names for path, names in wrong.items() if names}


def test_no_module_lives_outside_the_packages():
    assert not [path.name for path in ROOT.glob("*.py")]


def test_importing_the_host_packages_loads_no_opencv_and_switches_no_backend():
    script = """
import sys
import matplotlib
backend = matplotlib.rcParams._get_backend_or_none()
import keras_layers, models, tflite
# Keras 3 itself imports OpenCV when it is installed (keras.src.visualization), so the check is
# that the kit's own OpenCV users (the demo's app, sources, overlays) stay unloaded.
kit_cv2 = [m for m in sys.modules if m.startswith("demo_app.") and m not in ("demo_app.runtime",
                                                                             "demo_app.native_log",
                                                                             "demo_app.metadata")]
assert not kit_cv2, f"import tflite loaded {kit_cv2}"
import mobilekit.jobs, mobilekit.report
assert matplotlib.rcParams._get_backend_or_none() == backend, "a module switched matplotlib's backend"
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
