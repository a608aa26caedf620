"""ThreshNet (Ju et al., IEEE Access 2022) against the DenseNet and HarDNet of the same depth.

All three are ``models.densenet.threshnet`` on the ThreshNet-79 table: every block dense
(``threshold=5``, DenseNet-79, the baseline), the paper's threshold 3 (ThreshNet-79), and
every block harmonic (``threshold=0``, HarDNet-79). The paper claims up to 60% less inference
time than DenseNet. 10 classes, at CIFAR size and ImageNet size.
"""
from models.densenet import THRESHNET_79, THRESHNET_79_THRESHOLD, threshnet

DESCRIPTION = "ThreshNet-79 and HarDNet-79 vs DenseNet-79 (same table, threshold 3 / 0 vs 5)"
SHAPES = ((32, 32, 3), (224, 224, 3))


def candidates(shape):
    thresholds = (("densenet79", len(THRESHNET_79)), ("threshnet79", THRESHNET_79_THRESHOLD), ("hardnet79", 0))
    return [(label, lambda threshold=threshold: threshnet(shape, classes=10, threshold=threshold))
            for label, threshold in thresholds]
