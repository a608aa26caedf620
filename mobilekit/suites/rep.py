"""Structural re-parameterization: RepVGG (Ding et al., CVPR 2021) and RMNet (Meng et al., 2021)
networks timed in their training (multi-branch) form against their deploy (folded) form.

``models.reparameterize`` folds each block exactly: a RepVGG block's 3x3, 1x1 and identity
branches become one 3x3 convolution (9/10 of the training form's multiply-adds, no ADD); an
RMNet block loses its residual ADD but its first convolution grows by C_in reserved channels,
so the deploy form does *more* multiply-adds. RMNet pairs it with channel pruning, which the
residual-free form allows on every convolution: ``rmnet_qsfm`` is the deploy form as plain
layers with half of every convolution's channels removed by QSFM (calibrated here on random
images: its latency, not its accuracy, which ``mobilekit zoo`` reports). The speed-up column compares every candidate
with ``repvgg_train``; the deploy-vs-train ratio of each network is the quotient of its two rows.
RepVGG-A0 (``models.repvgg.REPVGG_A0``) and the CIFAR ResNet-20 of ``models.repvgg.rm_resnet``,
10 classes, at a digits-size and an ImageNet-size input.
"""
import numpy as np

from models.reparameterize import plain_network, reparameterize
from models.repvgg import repvgg, rm_resnet
from tflite.qsfm import qsfm_prune

DESCRIPTION = "RepVGG-A0 and RMNet-20: training (multi-branch) form vs deploy (re-parameterized) form"
SHAPES = ((32, 32, 3), (224, 224, 3))
PRUNED = 0.5
CALIBRATION_IMAGES = 4


def pruned_rmnet(shape):
    images = np.random.default_rng(0).uniform(0, 1, (CALIBRATION_IMAGES, *shape)).astype(np.float32)
    return qsfm_prune(plain_network(rm_resnet(shape, classes=10)), images, PRUNED)[0]


def candidates(shape):
    networks = {"repvgg": lambda: repvgg(shape, classes=10), "rmnet": lambda: rm_resnet(shape, classes=10)}
    rows = []
    for label, build in networks.items():
        rows += [(f"{label}_train", build), (f"{label}_deploy", lambda build=build: reparameterize(build()))]
    return rows + [(f"rmnet_qsfm_{PRUNED}", lambda: pruned_rmnet(shape))]
