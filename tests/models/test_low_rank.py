"""models.low_rank: a trained network with its d x d convolutions as truncated-SVD FFConvs."""
import numpy as np
import pytest

import layer_contract
from keras_layers.ffconv import FFConv
from models import profile, resnet20
from models.low_rank import factorize

SHAPE = (32, 32, 3)


def test_full_rank_is_exact_and_lower_rank_trades_error_for_multiply_adds():
    model = resnet20(SHAPE, classes=4)
    x = layer_contract.random_inputs(SHAPE, count=2)
    full, errors = factorize(model, 1.0)
    convs = [layer.name for layer in model.layers if type(layer).__name__ == "Conv2D" and layer.kernel_size == (3, 3)]
    assert sorted(errors) == sorted(convs) and max(errors.values()) < 1e-6
    assert all(isinstance(full.get_layer(name), FFConv) for name in convs)
    np.testing.assert_allclose(full(x), model(x), atol=1e-5)
    half, half_errors = factorize(model, 0.5)
    assert profile(half)["macs"] < 0.6 * profile(model)["macs"]
    for name in convs:
        # Eckart-Young: the rank-r truncation leaves the singular values beyond r of the kernel matrix
        kernel = np.asarray(model.get_layer(name).kernel, np.float64)
        singular = np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)
        rank = half.get_layer(name).rank
        assert rank == -(-kernel.shape[-1] // 2)  # ceil(0.5 * filters)
        expected = np.sqrt(np.sum(singular[rank:] ** 2) / np.sum(singular ** 2))
        assert half_errors[name] == pytest.approx(expected, rel=1e-5)


def test_rank_fraction_out_of_range_is_one_line_error():
    with pytest.raises(ValueError, match="rank_fraction") as error:
        factorize(resnet20(SHAPE, classes=4), 0.0)
    assert "\n" not in str(error.value)
