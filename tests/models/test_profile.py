import pytest

from keras_layers.keras_api import keras
from models import mobilenet_v2, profile
from models.train import with_preprocessing

layers = keras.layers


def small_model():
    inputs = keras.Input((8, 8, 3))
    x = layers.Conv2D(4, 3, padding="same")(inputs)                  # 8*8 * 3*3*3 * 4   = 6912
    x = layers.BatchNormalization()(x)                                # not counted
    x = layers.DepthwiseConv2D(3, strides=2, padding="same")(x)       # 4*4 * 3*3 * 4     = 576
    x = layers.Conv2D(8, 1, use_bias=False)(x)                        # 4*4 * 4 * 8       = 512
    x = layers.Conv2D(8, 3, padding="valid", groups=2)(x)             # 2*2 * 3*3*4 * 8   = 1152
    x = layers.GlobalAveragePooling2D()(x)                            # not counted
    outputs = layers.Dense(5)(x)                                      # 8 * 5             = 40
    return keras.Model(inputs, outputs)


def test_macs_and_params_of_a_small_model_match_hand_counts():
    result = profile(small_model())
    assert result["macs"] == 6912 + 576 + 512 + 1152 + 40
    conv, bn, dw, pw, grouped, dense = 3 * 3 * 3 * 4 + 4, 4 * 4, 3 * 3 * 4 + 4, 4 * 8, 3 * 3 * 4 * 8 + 8, 8 * 5 + 5
    assert result["params"] == conv + bn + dw + pw + grouped + dense
    assert result["trainable_params"] == result["params"] - 2 * 4  # moving mean and variance
    assert sorted(result["layers"].values()) == sorted([6912, 576, 512, 1152, 40])


def test_nested_models_are_counted_through():
    model = small_model()
    assert profile(with_preprocessing(model))["macs"] == profile(model)["macs"]


def test_mobilenet_v2_macs_match_the_paper():
    # Sandler et al. 2018, Table 4: MobileNetV2 (1.0, 224) has 300M multiply-adds and 3.4M parameters.
    result = profile(mobilenet_v2(input_shape=(224, 224, 3)))
    assert result["macs"] == pytest.approx(300e6, rel=0.03)
    assert result["params"] == pytest.approx(3.4e6, rel=0.05)


def test_macs_scale_with_resolution():
    small = profile(mobilenet_v2(input_shape=(96, 96, 3), include_top=False))["macs"]
    large = profile(mobilenet_v2(input_shape=(192, 192, 3), include_top=False))["macs"]
    assert large == pytest.approx(4 * small, rel=0.02)
