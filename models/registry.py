"""Architectures by name, for the CLI and the jobs."""
from functools import partial

from models.densenet import densenet, hardnet, threshnet
from models.ghostnet import ghostnet
from models.mobilenet_v2 import mobilenet_v2
from models.mobilenet_v3 import mobilenet_v3_large, mobilenet_v3_small
from models.resnet import resnet18, resnet20, resnet50, resnet56

ARCHITECTURES = {
    "mobilenet_v2": mobilenet_v2,
    "mobilenet_v2_wht": partial(mobilenet_v2, pointwise="wht1d"),
    "mobilenet_v3_large": mobilenet_v3_large,
    "mobilenet_v3_small": mobilenet_v3_small,
    "ghostnet": ghostnet,
    "resnet20": resnet20,
    "resnet56": resnet56,
    "resnet18": resnet18,
    "resnet50": resnet50,
    "densenet121": densenet,
    "threshnet": threshnet,
    "hardnet": hardnet,
}


def build(arch, **kwargs):
    """Build architecture ``arch`` with builder keyword arguments."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}: expected one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[arch](**kwargs)
