"""Shared test set-up: quiet TensorFlow, and small Keras models built once per session."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
