"""Architectures (as block tables read by one builder per family), data sets, training
recipes and cost profiling."""
from models.binary_nets import binary_resnet, binary_resnet18, binary_resnet20, capsule_mobilenet_v2, capsule_resnet50
from models.deeplab import lr_aspp, mobile_deeplabv3
from models.densenet import densenet, hardnet, threshnet
from models.g_ghostnet import g_ghostnet
from models.ghostnet import ghostnet
from models.mgic_net import mgic_net
from models.mobilenet_v2 import mobilenet_v2
from models.mobilenet_v3 import mobilenet_v3_large, mobilenet_v3_small
from models.pide_nets import pide_classifier, pide_segmenter
from models.profile import profile
from models.registry import ARCHITECTURES, architecture, build, build_model, register
from models.reparameterize import reparameterize
from models.repvgg import repvgg, rm_resnet
from models.resnet import resnet, resnet18, resnet20, resnet50, resnet56
from models.ssdlite import ssdlite

__all__ = ["mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small", "ghostnet", "resnet", "resnet18",
           "resnet20", "resnet50", "resnet56", "densenet", "hardnet", "threshnet", "profile", "build", "build_model",
           "register", "architecture", "ARCHITECTURES", "reparameterize", "repvgg", "rm_resnet", "mgic_net",
           "g_ghostnet", "pide_classifier", "pide_segmenter", "mobile_deeplabv3", "lr_aspp", "binary_resnet",
           "binary_resnet20", "binary_resnet18", "capsule_mobilenet_v2", "capsule_resnet50", "ssdlite"]
