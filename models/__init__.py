"""Architectures (as block tables read by one builder per family), data sets, training
recipes and cost profiling."""
from models.mobilenet_v2 import mobilenet_v2
from models.profile import profile
from models.registry import ARCHITECTURES, build

__all__ = ["mobilenet_v2", "profile", "build", "ARCHITECTURES"]
