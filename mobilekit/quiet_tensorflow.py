"""Importing TensorFlow without the lines its C++ side logs on every machine."""
import os
import re

from demo_app.native_log import forward, native_stderr

# What TensorFlow's C++ side logs at import whatever TF_CPP_MIN_LOG_LEVEL says: absl's
# pre-initialization notice, info lines, CPU-feature advice and the missing-CUDA error.
TENSORFLOW_IMPORT_NOISE = re.compile(r"^(WARNING: All log messages before absl|I\d{4} |To enable the following|"
                                     r"E\d{4} .*(cuInit|cuda))")


def import_tensorflow_quietly():
    """Import TensorFlow once and list its devices (where a machine without CUDA logs its cuInit
    error), passing on only what that logs beyond the usual noise."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with native_stderr() as lines:
        import tensorflow

        tensorflow.config.list_physical_devices()
    forward(lines, is_noise=TENSORFLOW_IMPORT_NOISE.match)
