"""The seed papers' headline claims (``PAPERS.md`` of the kit's design) as tests on a measured
interval: the one place the experiment jobs (zoo, binary, qsfm, transfer) and ``mobilekit claims``
read what each claim says and which side of which threshold reproduces it.

Accuracy differences are fractions (0.01 = one point), method minus baseline, paired over seeds
and test images (``mobilekit.stats.paired_interval``); latency claims are ratios of medians,
method over baseline (``mobilekit.stats.ratio_interval``). A claim of a size ("+1.47 points",
"60% less time") is tested for its direction, or for non-inferiority within
``stats.NEGLIGIBLE_LOSS`` where the paper claims no loss; the table reports the measured size
beside the paper's.
"""
from typing import NamedTuple

from mobilekit.stats import NEGLIGIBLE_LOSS, Claim


class PaperClaim(NamedTuple):
    """A paper's headline claim and the test of it: ``measure`` names the measured quantity,
    ``claim`` the side of a threshold that reproduces it."""

    paper: str
    headline: str
    measure: str
    claim: Claim


ABOVE_ZERO, NOT_WORSE, FASTER = Claim("above", 0.0), Claim("above", -NEGLIGIBLE_LOSS), Claim("below", 1.0)

CLAIMS = {
    "wht": PaperClaim(
        "Block Walsh-Hadamard transform layers (Pan, Badawi, Cetin)",
        "far fewer trainable parameters at negligible accuracy loss (MobileNetV2 with 1D-WHT for 1x1 convolutions)",
        "top-1 change, MobileNetV2-WHT - MobileNetV2", NOT_WORSE),
    "threshnet_time": PaperClaim(
        "ThreshNet (Ju et al.)", "up to 60% less inference time than DenseNet",
        "TFLite fp32 latency, ThreshNet-79 / DenseNet-79", FASTER),
    "threshnet_error": PaperClaim(
        "ThreshNet (Ju et al.)", "20% lower error than HarDNet (CIFAR-10/100, SVHN)",
        "top-1 change, ThreshNet-79 - HarDNet-79", ABOVE_ZERO),
    "ghostnet": PaperClaim(
        "GhostNet (Han et al.)",
        "more accurate than MobileNetV3 at the same FLOPs (0.5x: 66.2% at 42M vs MobileNetV3-Small 0.75x: 65.4% at 44M)",
        "top-1 change, GhostNet - MobileNetV3", ABOVE_ZERO),
    "ffconv": PaperClaim(
        "FFConv (low-rank factorized convolution)",
        "a d x d convolution with fewer channels and a 1x1 convolution restoring them keeps accuracy at a fraction "
        "of the cost", "top-1 change, FFConv ResNet-20 (rank 0.5, fine-tuned) - ResNet-20", NOT_WORSE),
    "repconv": PaperClaim(
        "RepConv / RepTran (binary networks)", "Rep-ReCU-ResNet-20 88.97% on CIFAR-10, +1.47 points over its binary baseline",
        "top-1 change, Rep-XNOR (beta=2) - XNOR", ABOVE_ZERO),
    "qsfm": PaperClaim(
        "QSFM filter pruning",
        "CIFAR ResNet-56 pruned by 48.7% FLOPs / 57.9% params at -0.54% top-1 without fine-tuning",
        "top-1 change, QSFM-pruned - unpruned, no fine-tuning", NOT_WORSE),
    "fine_tuning": PaperClaim(
        "Transfer learning from pretrained weights (the kit's train --weights)",
        "fine-tuning pretrained weights beats training from scratch on a small data set",
        "top-1 change, fine-tuned - from scratch", ABOVE_ZERO),
}
