"""Every architecture of the kit by name, with what the CLI, the jobs and the zoo need to know.

An ``Architecture`` entry is a builder plus metadata: the task it serves (``classify``,
``detect``, ``segment``), the builder arguments the entry fixes (``mobilenet_v2_wht`` is
``mobilenet_v2`` with ``pointwise="wht1d"``), the feature-tap roles its builder records while
building (the backbones a detection or segmentation head can read, ``models.backbones``),
whether the model takes pixels in [0, 255] itself (SSDLite) or behind
``models.train.with_preprocessing``, and the input preprocessing the network expects
(``models.pretrained.PREPROCESSING``: "tf" [-1, 1] for most, "caffe" for ResNet-50 and
"torch" for DenseNet-121, as their ``keras.applications`` ImageNet weights were trained).
Defaults are the builder's own signature defaults: each is stated once, in the builder.

``build_model(config)`` rebuilds the model of a run from its ``config`` (``arch``,
``image_size``, ``classes``, ``weights`` and any builder argument such as ``alpha`` or
``backbone``): the
training job, the export jobs, the tf_keras QAT process and the zoo all build through it, so
a run is rebuilt exactly as it was trained. Adding an architecture is its builder module plus
one ``register`` call.
"""
import inspect
from dataclasses import dataclass, field
from typing import Callable

from models.binary_nets import binary_resnet18, binary_resnet20, capsule_mobilenet_v2, capsule_resnet50
from models.deeplab import lr_aspp, mobile_deeplabv3
from models.densenet import densenet, hardnet, threshnet
from models.g_ghostnet import g_ghostnet
from models.ghostnet import ghostnet
from models.mgic_net import mgic_net
from models.mobilenet_v2 import mobilenet_v2
from models.mobilenet_v3 import mobilenet_v3_large, mobilenet_v3_small
from models.pide_nets import pide_classifier, pide_segmenter
from models.pretrained import restart_classifier
from models.repvgg import repvgg, rm_resnet
from models.resnet import resnet18, resnet20, resnet50, resnet56
from models.ssdlite import ssdlite
from models.taps import TAP_ROLES
from models.train import with_preprocessing

TASK_NAMES = ("classify", "detect", "segment")
# Builder arguments a run's config never carries: the input comes from ``image_size``, the rest
# are fixed by how the kit uses a model (a whole network with its classifier or head).
INPUT_ARGUMENTS = ("input_shape", "classes", "include_top", "weights", "backbone_weights", "pooling",
                   "classifier_activation", "name")
WEIGHTS_ARGUMENTS = ("weights", "backbone_weights")  # where a config's "weights" goes, the first a builder has


@dataclass(frozen=True)
class Architecture:
    """A registry entry: ``builder`` for ``task``, called with ``fixed`` arguments on top of the
    caller's; ``taps`` are the feature-tap roles the builder records (empty: not a backbone);
    ``takes_pixels``: the model scales pixels in [0, 255] itself (no ``with_preprocessing``);
    ``preprocessing``: the input mode of ``models.pretrained.PREPROCESSING`` the network expects."""

    builder: Callable
    task: str = "classify"
    fixed: dict = field(default_factory=dict)
    taps: tuple = ()
    takes_pixels: bool = False
    preprocessing: str = "tf"

    @property
    def arguments(self):
        """The builder arguments a config may set (``alpha``, ``backbone``, ...) and their defaults."""
        parameters = inspect.signature(self.builder).parameters
        return {name: p.default for name, p in parameters.items()
                if name not in INPUT_ARGUMENTS and name not in self.fixed and p.default is not p.empty}

    @property
    def default_classes(self):
        """The builder's default number of classes (1,000 for the ImageNet networks)."""
        return inspect.signature(self.builder).parameters["classes"].default

    def build(self, **kwargs):
        """The builder called with ``kwargs`` and the entry's fixed arguments."""
        return self.builder(**kwargs, **self.fixed)


ARCHITECTURES = {}


def register(name, builder, task="classify", **metadata):
    """Add architecture ``name`` (see ``Architecture`` for ``metadata``); returns its entry."""
    if task not in TASK_NAMES:
        raise ValueError(f"architecture {name!r}: task {task!r} is not one of {', '.join(TASK_NAMES)}")
    ARCHITECTURES[name] = Architecture(builder, task, **metadata)
    return ARCHITECTURES[name]


for _name, _builder in (("mobilenet_v2", mobilenet_v2), ("mobilenet_v3_large", mobilenet_v3_large),
                        ("mobilenet_v3_small", mobilenet_v3_small)):
    register(_name, _builder, taps=TAP_ROLES)
register("mobilenet_v2_wht", mobilenet_v2, fixed={"pointwise": "wht1d"})
for _name, _builder in (("ghostnet", ghostnet), ("resnet20", resnet20), ("resnet56", resnet56),
                        ("resnet18", resnet18), ("threshnet", threshnet), ("hardnet", hardnet), ("repvgg", repvgg),
                        ("rm_resnet", rm_resnet), ("mgic_net", mgic_net), ("g_ghostnet", g_ghostnet),
                        ("pide_classifier", pide_classifier), ("binary_resnet20", binary_resnet20),
                        ("binary_resnet18", binary_resnet18), ("capsule_mobilenet_v2", capsule_mobilenet_v2)):
    register(_name, _builder)
register("resnet50", resnet50, preprocessing="caffe")
register("capsule_resnet50", capsule_resnet50, preprocessing="caffe")
register("densenet121", densenet, preprocessing="torch")
register("ssdlite", ssdlite, task="detect", takes_pixels=True)
for _name, _builder in (("lr_aspp", lr_aspp), ("mobile_deeplabv3", mobile_deeplabv3),
                        ("pide_segmenter", pide_segmenter)):
    register(_name, _builder, task="segment")


def names(task=None):
    """The registered architecture names (of ``task`` only, when given)."""
    return [name for name, entry in ARCHITECTURES.items() if task in (None, entry.task)]


def architecture(arch, task=None):
    """The entry of ``arch``; with ``task``, it must serve that task."""
    if arch not in names(task):
        kind = f"{task} architecture" if task else "architecture"
        raise ValueError(f"unknown {kind} {arch!r}: expected one of {', '.join(names(task))}")
    return ARCHITECTURES[arch]


def backbones():
    """The names of the architectures that record feature taps (usable under a head)."""
    return [name for name, entry in ARCHITECTURES.items() if entry.taps]


def build(arch, **kwargs):
    """Build architecture ``arch`` with builder keyword arguments."""
    entry = architecture(arch)
    accepted = set(inspect.signature(entry.builder).parameters) - set(entry.fixed)
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise ValueError(f"{arch} takes no argument {', '.join(unknown)}: expected some of {', '.join(sorted(accepted))}")
    return entry.build(**kwargs)


def build_model(config):
    """The model of a run ``config``: ``arch`` at ``image_size`` squared with ``classes``, built with
    the config's builder arguments and taking pixels in [0, 255].

    ``config["weights"]`` (None, ``"imagenet"`` or a path; ``models.pretrained``) goes to the
    builder's ``weights``, or ``backbone_weights`` for a head; the model returned carries the
    builder's ``pretrained`` report. A run's weights are a starting point: its classifier layer
    starts anew (``models.pretrained.restart_classifier``).
    """
    entry = architecture(config["arch"])
    size = config["image_size"]
    arguments = entry.arguments
    kwargs = {key: value for key, value in config.items() if key in arguments}
    if config.get("weights") is not None:
        parameters = inspect.signature(entry.builder).parameters
        target = next((name for name in WEIGHTS_ARGUMENTS if name in parameters), None)
        if target is None:
            raise ValueError(f"{config['arch']} takes no weights: expected weights=None")
        kwargs[target] = config["weights"]
    model = restart_classifier(entry.build(input_shape=(size, size, 3), classes=config["classes"], **kwargs))
    return model if entry.takes_pixels else with_preprocessing(model, entry.preprocessing)
