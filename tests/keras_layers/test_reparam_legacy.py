"""Re-parameterizable blocks, FFConv and MGIC under tf_keras (Keras 2): contract and exact folding."""
import numpy as np
import pytest

from keras_layers.keras_api import LEGACY_KERAS, keras

pytestmark = [pytest.mark.legacy_keras,
              pytest.mark.skipif(not LEGACY_KERAS, reason="run with TF_USE_LEGACY_KERAS=1")]


def test_rep_blocks_gradients_round_trip_and_convert(tmp_path):
    import layer_contract
    from keras_layers.reparam import RepVGGBlock, RMResBlock

    assert keras.__version__.startswith("2.")
    keras.utils.set_random_seed(1)
    make = lambda dtype=None: RMResBlock(8, strides=2, dtype=dtype, name="rm")  # noqa: E731
    layer_contract.assert_gradients_match_finite_differences(make, (4, 5, 6), delta=1e-6, atol=1e-4)
    for layer in (RepVGGBlock(6, name="repvgg"), make(), RepVGGBlock(6, deploy=True, name="repvgg_deploy")):
        layer_contract.wrap(layer, (7, 8, 6))
        layer_contract.randomize_batch_norm(layer)
        layer_contract.assert_serialization_round_trip(layer, (7, 8, 6), tmp_path, atol=1e-5)
    inputs = keras.Input(shape=(7, 8, 6))
    model = keras.Model(inputs, make()(keras.layers.ReLU()(inputs)))
    layer_contract.randomize_batch_norm(model)
    layer_contract.assert_tflite_matches_keras(model, (7, 8, 6), samples=16)


@pytest.mark.parametrize("builder", ["repvgg", "rm_resnet"])
def test_reparameterize_is_exact_under_tf_keras(builder):
    import layer_contract
    from models.blocks import Stage
    from models.registry import build
    from models.reparameterize import reparameterize

    keras.utils.set_random_seed(1)
    stages = (Stage(8, 2, 1), Stage(16, 2, 2))
    model = build(builder, input_shape=(32, 33, 3), stages=stages, classes=5, classifier_activation=None)
    layer_contract.randomize_batch_norm(model)
    deployed = reparameterize(model)
    x = layer_contract.random_inputs((32, 33, 3), count=4)
    expected, actual = model(x, training=False).numpy(), deployed(x, training=False).numpy()
    assert np.abs(actual - expected).max() <= 1e-4 * np.abs(expected).max()
    assert deployed.count_params() != model.count_params()
