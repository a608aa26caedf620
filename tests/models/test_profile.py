from keras_layers.binary import QuantConv2D, bwn_dense, xnor_conv2d
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


def test_mobilenet_v2_macs_match_the_paper_and_keras_applications():
    # Sandler et al. 2018, Table 4: MobileNetV2 (1.0, 224) has 300M multiply-adds (to the two digits
    # printed). Its 3.4M parameters are 3.54M in the reference implementation, which
    # keras.applications follows layer for layer: both counts must equal keras.applications'.
    result = profile(mobilenet_v2(input_shape=(224, 224, 3)))
    assert f"{result['macs']:.2g}" == "3e+08"
    reference = keras.applications.MobileNetV2(input_shape=(224, 224, 3), weights=None)
    assert result["params"] == reference.count_params()
    assert result["macs"] == profile(reference)["macs"]


def test_macs_scale_with_resolution():
    """96 and 192 halve to 48, 24, 12, 6, 3 and 96, 48, 24, 12, 6: every map has exactly 4 times the
    positions at 192, so every layer exactly 4 times the MACs."""
    small = profile(mobilenet_v2(input_shape=(96, 96, 3), include_top=False))["macs"]
    large = profile(mobilenet_v2(input_shape=(192, 192, 3), include_top=False))["macs"]
    assert large == 4 * small


def binary_model():
    inputs = keras.Input((8, 8, 3))
    x = layers.Conv2D(4, 3, padding="same", use_bias=False)(inputs)             # 6912 float MACs
    x = xnor_conv2d(8, 3, strides=2)(x)                                          # 4*4 * 3*3*4 * 8 = 4608
    x = QuantConv2D(8, 1, input_quantizer="uniform_2bit", kernel_quantizer="dorefa_2bit")(x)  # 16 * 64 = 1024
    x = layers.GlobalAveragePooling2D()(x)
    outputs = bwn_dense(5, use_bias=True)(x)                                     # 40, float inputs
    return keras.Model(inputs, outputs)


def test_binary_macs_ace_and_weight_bits_of_a_mixed_model():
    result = profile(binary_model())
    assert result["macs"] == 6912 + 4608 + 1024 + 40
    assert result["binary_macs"] == 4608
    assert result["ace"] == 32 * 32 * 6912 + 1 * 4608 + 2 * 2 * 1024 + 32 * 1 * 40
    float_conv, xnor, low_bit, dense = 32 * 108, 288 + 32 * 8, 2 * 64, 40 + 32 * 5 + 32 * 5
    assert result["weight_bits"] == float_conv + xnor + low_bit + dense


def test_float_models_cost_32_by_32_bits_per_mac_and_32_bits_per_weight():
    result = profile(small_model())
    assert result["binary_macs"] == 0 and result["ace"] == 1024 * result["macs"]
    assert result["weight_bits"] == 32 * result["params"]
