"""Feature taps recorded by the builders as they build (``models.taps``, ``models.backbones``)."""
import pytest

from models.backbones import atrous, backbone_features, feature_tap_names
from models.taps import TAP_ROLES
from models.ghostnet import ghostnet
from models.mobilenet_v2 import mobilenet_v2
from models.mobilenet_v3 import mobilenet_v3_large, mobilenet_v3_small
from models.resnet import resnet20

# The independent reference: the hand-written table of the previous version of models/backbones.py,
# which named the taps by the keras.applications-style layer names of the three MobileNets.
HAND_WRITTEN_TAPS = {
    "mobilenet_v2": {"stride4": "block2_add", "stride8": "block5_add", "stride16": "block12_add",
                     "stride8_expanded": "block6_expand_relu6", "stride16_expanded": "block13_expand_relu6",
                     "final": "block16_project_bn", "last": "head_relu6"},
    "mobilenet_v3_large": {"stride4": "block2_add", "stride8": "block5_add", "stride16": "block11_add",
                           "stride8_expanded": "block6_expand_hswish", "stride16_expanded": "block12_expand_hswish",
                           "final": "block14_add", "last": "head_hswish"},
    "mobilenet_v3_small": {"stride4": "block0_project_bn", "stride8": "block2_add", "stride16": "block7_add",
                           "stride8_expanded": "block3_expand_hswish", "stride16_expanded": "block8_expand_hswish",
                           "final": "block10_add", "last": "head_hswish"},
}
BUILDERS = {"mobilenet_v2": mobilenet_v2, "mobilenet_v3_large": mobilenet_v3_large,
            "mobilenet_v3_small": mobilenet_v3_small}
ROLE_STRIDES = {"stride4": 4, "stride8": 8, "stride16": 16, "stride8_expanded": 8, "stride16_expanded": 16,
                "final": 32, "last": 32}
SIZE = 64


def spatial_stride(model, layer_name):
    return SIZE // model.get_layer(layer_name).output.shape[1]


@pytest.mark.parametrize("arch", sorted(BUILDERS))
@pytest.mark.parametrize("include_top", [False, True])
def test_recorded_taps_are_the_hand_written_layers_at_their_strides(arch, include_top):
    model = BUILDERS[arch](input_shape=(SIZE, SIZE, 3), alpha=0.5, include_top=include_top)
    taps = feature_tap_names(model)
    assert taps == HAND_WRITTEN_TAPS[arch]
    assert tuple(taps) == TAP_ROLES == tuple(ROLE_STRIDES)
    assert {role: spatial_stride(model, name) for role, name in taps.items()} == ROLE_STRIDES


def test_taps_follow_a_changed_table():
    """The minimalistic MobileNetV3 has ReLU layers where the taps sit; a two-stage MobileNetV2 table
    leaves only the roles its strides reach."""
    assert feature_tap_names(mobilenet_v3_small((SIZE, SIZE, 3), minimalistic=True))["last"] == "head_relu"
    from models.mobilenet_v2 import Stage
    model = mobilenet_v2((SIZE, SIZE, 3), stages=(Stage(1, 16, 1, 1), Stage(6, 24, 2, 2)), include_top=False)
    assert feature_tap_names(model) == {"stride4": "block2_add", "final": "block2_add", "last": "head_relu6"}


def test_ghostnet_records_its_block_output_taps():
    model = ghostnet(input_shape=(SIZE, SIZE, 3), alpha=0.5, include_top=False)
    taps = feature_tap_names(model)
    assert taps == {"stride4": "block2", "stride8": "block4", "stride16": "block10", "final": "block15",
                    "last": "head_relu"}
    assert {role: spatial_stride(model, name) for role, name in taps.items()} == \
        {role: ROLE_STRIDES[role] for role in taps}


def test_atrous_copy_keeps_the_taps_and_backbone_features_reads_them():
    plain = mobilenet_v2(input_shape=(SIZE, SIZE, 3), alpha=0.35, include_top=False)
    assert feature_tap_names(atrous(plain, 16)) == feature_tap_names(plain)
    features = backbone_features("mobilenet_v3_small", (SIZE, SIZE, 3), ["stride8", "last"], alpha=0.35,
                                 output_stride=16)
    assert [out.shape[1] for out in features.outputs] == [SIZE // 8, SIZE // 16]


def test_a_model_without_taps_gets_a_one_line_error():
    with pytest.raises(ValueError, match="model 'resnet20' has no feature taps") as error:
        feature_tap_names(resnet20())
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="architecture 'resnet20' has no feature taps") as error:
        backbone_features("resnet20", (SIZE, SIZE, 3), ["last"])
    assert "\n" not in str(error.value)
