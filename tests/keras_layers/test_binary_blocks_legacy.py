"""PokeConv, RepConv, XnODR / XnIDR and the binary ResNets under tf_keras (Keras 2)."""
import numpy as np
import pytest

from keras_layers.keras_api import LEGACY_KERAS, keras

pytestmark = [pytest.mark.legacy_keras,
              pytest.mark.skipif(not LEGACY_KERAS, reason="run with TF_USE_LEGACY_KERAS=1")]


def test_binary_blocks_round_trip_and_convert(tmp_path):
    import layer_contract
    from keras_layers.capsules import XNIDR, XNODR, CapsuleLength
    from keras_layers.poke import PokeConv
    from keras_layers.repbnn import RepConv

    assert keras.__version__.startswith("2.")
    keras.utils.set_random_seed(1)
    for layer, shape in ((PokeConv(10, 3, strides=2, name="poke"), (6, 6, 8)),
                         (RepConv(8, 3, input_replicas=2, output_replicas=2, input_quantizer="ste_sign",
                                  scale="xnor", name="rep"), (6, 6, 8)),
                         (XNIDR(3, 4, routings=2, name="xnidr"), (5, 3))):
        layer_contract.wrap(layer, shape)
        layer_contract.randomize_batch_norm(layer)
        layer_contract.assert_serialization_round_trip(layer, shape, tmp_path, atol=1e-5)
    inputs = keras.Input((6, 6, 8))
    outputs = RepConv(16, 3, output_replicas=4, input_quantizer="ste_sign", scale="xnor")(
        PokeConv(8, 3, zero_gamma=True)([inputs, inputs]))
    # a float convolution between RepConv and XnODR: a binary layer's integer sums can be exactly 0,
    # and the next sign of such a 0 depends on the rounding order, which TFLite does not keep
    outputs = keras.layers.Reshape((-1, 8))(keras.layers.Conv2D(8, 1)(outputs))
    model = keras.Model(inputs, CapsuleLength()(XNODR(3, 4)(outputs)))
    layer_contract.randomize_batch_norm(model)
    from demo_app.runtime import TFLiteModel
    from tflite import convert, custom_operators

    data = layer_contract.random_inputs((6, 6, 8), count=8)
    model_bytes = convert(model, "fp32")
    assert custom_operators(model_bytes) == []
    actual = np.stack([TFLiteModel.from_bytes(model_bytes).run(x)[0][0] for x in data])
    np.testing.assert_allclose(actual, model.predict(data, verbose=0), atol=1e-5)


def test_binary_resnet_costs_are_the_same_as_under_keras_3():
    """The ACE of the Rep network equals the XNOR one's plus its wider float classifier."""
    from models import profile
    from models.binary_nets import RESNET_8, binary_resnet

    xnor, rep = (profile(binary_resnet((32, 32, 3), stages=RESNET_8, variant=v)) for v in ("xnor", "rep_xnor"))
    # Binary: the two 3x3 convolutions of each block (the float stem and classifier are not):
    # 32x32 maps 16 -> 16 twice, then 16x16 maps 16 -> 32 and 32 -> 32, then 8x8 maps 32 -> 64 and 64 -> 64.
    binary = 32 * 32 * 9 * (16 * 16 * 2) + 16 * 16 * 9 * (16 * 32 + 32 * 32) + 8 * 8 * 9 * (32 * 64 + 64 * 64)
    assert xnor["binary_macs"] == rep["binary_macs"] == binary
    assert rep["ace"] - xnor["ace"] == 1024 * 64 * 10
