"""On-device demo: runs an exported .tflite with the LiteRT runtime alone (no TensorFlow).

Only numpy, OpenCV and a TFLite runtime (``ai-edge-litert`` or ``tflite-runtime``) are
imported, so the package runs on a Raspberry Pi without TensorFlow::

    python -m demo_app --model model.tflite --source 0 --labels labels.txt

Importing the package loads none of its modules: the names below are loaded on first use, so
the host side can use ``demo_app.runtime`` without OpenCV.
"""
import importlib

_EXPORTS = {"TFLiteModel": "demo_app.runtime", "open_source": "demo_app.sources", "run_demo": "demo_app.app",
            "add_arguments": "demo_app.app", "run_from_args": "demo_app.app"}
__all__ = list(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'demo_app' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
