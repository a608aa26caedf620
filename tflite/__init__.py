"""Host side: conversion to TFLite (PTQ), validation of a ``.tflite`` against its Keras model,
and benchmarking. ``tflite.convert`` and ``tflite.validate`` are the public entry points.
"""
from tflite.converter import QUANTIZATIONS, convert
from tflite.inspect import custom_operators, operator_names
from tflite.validation import validate

__all__ = ["convert", "validate", "operator_names", "custom_operators", "QUANTIZATIONS"]
