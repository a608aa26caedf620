"""RepVGG and RMNet re-parameterizable blocks: exact folding, cost, and the layer contract."""
import numpy as np
import pytest
import tensorflow as tf

import layer_contract
from keras_layers.keras_api import keras
from keras_layers.reparam import RepVGGBlock, RMResBlock, dirac, fold_batch_norm
from models import profile

SHAPE = (7, 8, 6)  # odd height: stride 2 with 'same' padding would sample other pixels than the 1x1 branch


@pytest.fixture(autouse=True)
def seeded():
    keras.utils.set_random_seed(1)




def folded_pair(block_class, filters, strides, x):
    """A training-form block with random batch norms and its deploy form loaded with ``fold()``,
    checked by the layer contract to compute the same outputs (``layer_contract.check_fold``)."""
    block = block_class(filters, strides=strides)
    block(x)
    layer_contract.randomize_batch_norm(block)
    deployed = layer_contract.check_fold(block, tuple(x.shape[1:]), x)
    assert deployed.deploy and type(deployed) is block_class
    return block, deployed


def test_fold_batch_norm_is_the_inference_batch_norm_of_the_convolution():
    bn = keras.layers.BatchNormalization(epsilon=1e-3)
    x = layer_contract.random_inputs((5, 5, 4), count=2)
    bn.build((None, 5, 5, 4))
    layer_contract.randomize_batch_norm(bn)
    kernel, bias = fold_batch_norm(dirac(4), bn)
    folded = tf.nn.conv2d(x, kernel.astype(np.float32), 1, "SAME") + bias.astype(np.float32)
    np.testing.assert_allclose(folded, bn(x, training=False), atol=1e-5)


@pytest.mark.parametrize("filters, strides, identity", [(6, 1, True), (6, 2, False), (10, 1, False)])
def test_repvgg_block_folds_into_one_3x3_convolution_exactly(filters, strides, identity):
    x = tf.constant(layer_contract.random_inputs(SHAPE, count=3))
    block, deployed = folded_pair(RepVGGBlock, filters, strides, x)
    assert (block.identity is not None) == identity
    assert [tuple(w.shape) for w in deployed.weights] == [(3, 3, 6, filters), (filters,)]
    block.bn1.gamma.assign(block.bn1.gamma * 2)  # the fold reads every branch
    assert not np.allclose(block.fold()[0], deployed.get_weights()[0])


@pytest.mark.parametrize("filters, strides, projection", [(6, 1, False), (6, 2, True), (10, 1, True)])
def test_rm_block_reserves_and_merges_into_conv_relu_conv_exactly(filters, strides, projection):
    x = tf.nn.relu(layer_contract.random_inputs(SHAPE, count=3))  # a block input is a ReLU output
    block, deployed = folded_pair(RMResBlock, filters, strides, x)
    assert (block.projection is not None) == projection
    assert [tuple(w.shape) for w in deployed.weights] == [(3, 3, 6, filters + 6), (filters + 6,),
                                                          (3, 3, filters + 6, filters), (filters,)]
    kernel1 = deployed.get_weights()[0]
    np.testing.assert_array_equal(kernel1[..., filters:], dirac(6))  # reserved input channels


@pytest.mark.parametrize("block_class, train_per_pixel, deploy_per_pixel", [
    (RepVGGBlock, 10 * 6 * 8, 9 * 6 * 8),
    (RMResBlock, 9 * 6 * 8 + 9 * 8 * 8 + 6 * 8, 9 * 6 * 14 + 9 * 14 * 8)])
def test_count_macs_matches_profile(block_class, train_per_pixel, deploy_per_pixel):
    for deploy, per_pixel in ((False, train_per_pixel), (True, deploy_per_pixel)):
        block = block_class(8, strides=2, deploy=deploy)
        model = layer_contract.wrap(block, SHAPE)
        assert tuple(model.output.shape) == (None, 4, 4, 8)
        assert profile(model)["macs"] == block.count_macs() == 16 * per_pixel


MAKERS = {
    "repvgg": lambda dtype=None: RepVGGBlock(6, dtype=dtype, name="repvgg"),
    "repvgg_deploy": lambda dtype=None: RepVGGBlock(8, strides=2, deploy=True, dtype=dtype, name="repvgg_deploy"),
    "rm_s2": lambda dtype=None: RMResBlock(8, strides=2, dtype=dtype, name="rm_s2"),
    "rm_deploy": lambda dtype=None: RMResBlock(6, deploy=True, dtype=dtype, name="rm_deploy"),
}


@pytest.mark.parametrize("kind", MAKERS)
def test_gradients_match_finite_differences(kind):
    layer_contract.assert_gradients_match_finite_differences(MAKERS[kind], (4, 5, 6), delta=1e-6, atol=1e-4)


@pytest.mark.parametrize("kind", MAKERS)
def test_serialization_round_trip(kind, tmp_path):
    layer = MAKERS[kind]()
    layer_contract.wrap(layer, SHAPE)
    layer_contract.randomize_batch_norm(layer)
    layer_contract.assert_serialization_round_trip(layer, SHAPE, tmp_path, atol=1e-5)


@pytest.mark.parametrize("kind", ["repvgg", "rm_s2"])
def test_tflite_fp32_and_int8_match_keras(kind):
    inputs = keras.Input(shape=SHAPE)
    layer = MAKERS[kind]()
    model = keras.Model(inputs, layer(keras.layers.ReLU()(inputs)))
    layer_contract.randomize_batch_norm(layer)
    layer_contract.assert_tflite_matches_keras(model, SHAPE, samples=16)


@pytest.mark.parametrize("block_class", [RepVGGBlock, RMResBlock])
def test_bad_strides_get_a_one_line_error(block_class):
    with pytest.raises(ValueError, match="strides must be 1 or 2") as error:
        block_class(8, strides=3)
    assert "\n" not in str(error.value)
