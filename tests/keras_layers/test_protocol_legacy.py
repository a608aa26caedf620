"""The layer protocol under tf_keras (Keras 2): the same hooks, the same checks (test_protocol.py)."""
import pytest

from keras_layers.keras_api import LEGACY_KERAS, keras

pytestmark = [pytest.mark.legacy_keras,
              pytest.mark.skipif(not LEGACY_KERAS, reason="run with TF_USE_LEGACY_KERAS=1")]


def test_every_method_named_like_a_hook_is_declared_under_tf_keras():
    from test_protocol import kit_layer_classes, undeclared_hooks

    assert keras.__version__.startswith("2.")
    classes = kit_layer_classes()
    assert len(classes) >= 30 and undeclared_hooks(classes) == []


def _examples():
    from test_protocol import EXAMPLES, VARIANTS

    return {**EXAMPLES, **VARIANTS}


@pytest.mark.parametrize("name", ["GhostBottleneck", "PokeConv", "QuantConv2D", "RMResBlock", "RepVGGBlock_deploy",
                                  "ConformalLayers", "XNODR", "FractionalLaplacian"])
def test_hooks_agree_with_independent_computations_under_tf_keras(name):
    import layer_contract

    keras.utils.set_random_seed(2)
    example = _examples()[name]
    assert layer_contract.assert_protocol(example.make(), example.shape, **example.options) == example.hooks
