"""Architectures (as block tables read by one builder per family), data sets, training
recipes and cost profiling."""
from models.densenet import densenet, hardnet, threshnet
from models.ghostnet import ghostnet
from models.mobilenet_v2 import mobilenet_v2
from models.mobilenet_v3 import mobilenet_v3_large, mobilenet_v3_small
from models.profile import profile
from models.registry import ARCHITECTURES, build
from models.resnet import resnet, resnet18, resnet20, resnet50, resnet56

__all__ = ["mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small", "ghostnet", "resnet", "resnet18",
           "resnet20", "resnet50", "resnet56", "densenet", "hardnet", "threshnet", "profile", "build",
           "ARCHITECTURES"]
