"""Architectures by name, for the CLI and the jobs."""
import inspect
from functools import partial

from models.binary_nets import binary_resnet18, binary_resnet20, capsule_mobilenet_v2, capsule_resnet50
from models.densenet import densenet, hardnet, threshnet
from models.g_ghostnet import g_ghostnet
from models.ghostnet import ghostnet
from models.mgic_net import mgic_net
from models.mobilenet_v2 import mobilenet_v2
from models.mobilenet_v3 import mobilenet_v3_large, mobilenet_v3_small
from models.pide_nets import pide_classifier, pide_segmenter
from models.repvgg import repvgg, rm_resnet
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
    "repvgg": repvgg,
    "rm_resnet": rm_resnet,
    "mgic_net": mgic_net,
    "g_ghostnet": g_ghostnet,
    "pide_classifier": pide_classifier,
    "pide_segmenter": pide_segmenter,
    "binary_resnet20": binary_resnet20,
    "binary_resnet18": binary_resnet18,
    "capsule_mobilenet_v2": capsule_mobilenet_v2,
    "capsule_resnet50": capsule_resnet50,
}


def build(arch, **kwargs):
    """Build architecture ``arch`` with builder keyword arguments."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}: expected one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[arch](**kwargs)


def width_arguments(arch, alpha):
    """``{"alpha": alpha}`` for builders with a width multiplier ``alpha`` (the MobileNets), else
    ``{}``: the CLI's ``--alpha`` applies where it means something."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}: expected one of {', '.join(ARCHITECTURES)}")
    return {"alpha": alpha} if "alpha" in inspect.signature(ARCHITECTURES[arch]).parameters else {}
