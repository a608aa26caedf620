"""On-device demo: runs an exported .tflite with the LiteRT runtime alone (no TensorFlow).

Only numpy, OpenCV and a TFLite runtime (``ai-edge-litert`` or ``tflite-runtime``) are
imported, so the package runs on a Raspberry Pi without TensorFlow::

    python -m demo_app --model model.tflite --source 0 --labels labels.txt
"""
from demo_app.app import add_arguments, run_demo, run_from_args
from demo_app.runtime import TFLiteModel
from demo_app.sources import open_source

__all__ = ["TFLiteModel", "open_source", "run_demo", "add_arguments", "run_from_args"]
