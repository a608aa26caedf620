"""Architectures by name, for the CLI and the jobs."""
from models.mobilenet_v2 import mobilenet_v2

ARCHITECTURES = {"mobilenet_v2": mobilenet_v2}


def build(arch, **kwargs):
    """Build architecture ``arch`` with builder keyword arguments."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}: expected one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[arch](**kwargs)
