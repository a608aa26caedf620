"""The PIDE layers under tf_keras (Keras 2): NumPy references, residual step, contract."""
import numpy as np
import pytest

from keras_layers.keras_api import LEGACY_KERAS, keras

pytestmark = [pytest.mark.legacy_keras,
              pytest.mark.skipif(not LEGACY_KERAS, reason="run with TF_USE_LEGACY_KERAS=1")]

EXPONENTS = np.array([0.2, 0.6, 0.95])
WIDTHS = np.array([1.0, 3.0, 8.0])
RATES = np.array([0.1, 0.5, 0.9])


def logit(p):
    return np.log(p / (1 - p))


@pytest.mark.parametrize("boundary", ["neumann", "periodic"])
def test_layers_match_the_numpy_references(boundary):
    import layer_contract
    import pide_reference as ref
    from keras_layers.pide import FractionalLaplacian, GlobalWeightedLaplacian, InverseFractionalLaplacian

    assert keras.__version__.startswith("2.")
    x = layer_contract.random_inputs((6, 7, 3), count=2)
    operators = {
        FractionalLaplacian: lambda u: ref.fractional(u, EXPONENTS, boundary),
        InverseFractionalLaplacian: lambda u: ref.fractional(u, EXPONENTS, boundary, inverse=True),
        GlobalWeightedLaplacian: lambda u: ref.weighted(u, WIDTHS, boundary),
    }
    for cls, operator in operators.items():
        for residual in (False, True):
            layer = cls(boundary=boundary, residual=residual)
            layer_contract.wrap(layer, (6, 7, 3))
            if cls is GlobalWeightedLaplacian:
                layer.log_width.assign(np.log(WIDTHS))
            else:
                layer.exponent_logit.assign(logit(EXPONENTS))  # the default range is (0, 1)
            expected = operator(x)
            if residual:
                layer.rate_logit.assign(logit(RATES))
                expected = ref.residual_step(x, operator, RATES)
            np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=1e-4, atol=1e-4, err_msg=layer.name)


def test_contract_under_tf_keras(tmp_path):
    import layer_contract
    from keras_layers.pide import FractionalLaplacian, GlobalWeightedLaplacian, InverseFractionalLaplacian

    make = lambda dtype=None: FractionalLaplacian(exponent=0.3, dtype=dtype, name="fractional")  # noqa: E731
    layer_contract.assert_gradients_match_finite_differences(make, (4, 5, 2), delta=1e-6, atol=1e-6)
    for layer in (make(), InverseFractionalLaplacian(boundary="periodic", name="inverse"),
                  GlobalWeightedLaplacian(width=2.0, residual=False, name="weighted")):
        layer_contract.wrap(layer, (6, 7, 3))
        layer.set_weights([w + 0.3 for w in layer.get_weights()])
        layer_contract.assert_serialization_round_trip(layer, (6, 7, 3), tmp_path, atol=1e-5)
    inputs = keras.Input(shape=(8, 8, 4))
    x = InverseFractionalLaplacian()(GlobalWeightedLaplacian()(keras.layers.Conv2D(8, 1)(inputs)))
    layer_contract.assert_tflite_matches_keras(keras.Model(inputs, FractionalLaplacian()(x)), (8, 8, 4), samples=16)
