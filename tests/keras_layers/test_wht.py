import numpy as np
import pytest
from scipy.linalg import hadamard
from tensorflow.lite.python import schema_py_generated as schema

import layer_contract
import wht_reference as ref
from keras_layers.hadamard import fwht
from keras_layers.keras_api import keras
from keras_layers.wht import WHT1D, WHT2D, SmoothThreshold, WHTGlobalPooling2D
from models import profile
from tflite import convert
from tflite.inspect import operator_names
from mobilekit.suites import load_suite


@pytest.fixture(autouse=True)
def seeded():
    keras.utils.set_random_seed(1)


def random_weights(layer, seed=0):
    """Scales in [0.5, 1.5] and thresholds of both signs (the layers use |T|)."""
    rng = np.random.default_rng(seed)
    weights = [rng.uniform(0.5, 1.5, w.shape) if "scale" in w.name else rng.uniform(-0.3, 0.3, w.shape)
               for w in layer.weights]
    layer.set_weights([w.astype(np.float32) for w in weights])
    return {w.name.split("/")[-1].split(":")[0]: np.asarray(w) for w in layer.weights}


@pytest.mark.parametrize("shape, axis, block_size", [
    ((3, 64), -1, None),         # power of two, one matrix
    ((2, 300, 3), 1, None),      # padded to 512 = 16 x 32, middle axis
    ((2, 300, 3), 1, 128),       # three blocks of 128 = 8 x 16
    ((5, 7, 2), 0, None),        # odd length, first axis
    ((2, 4096), -1, None),       # the largest block, 64 x 64
    ((2, 3, 24), 2, 8),          # blocks without padding
])
def test_fast_transform_is_the_dense_hadamard_product(shape, axis, block_size):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    n = shape[axis]
    block = block_size or ref.next_power_of_two(n)
    length = -(-n // block) * block
    padded = np.moveaxis(x, axis, -1)
    padded = np.pad(padded, [(0, 0)] * (padded.ndim - 1) + [(0, length - n)])
    expected = np.moveaxis(padded @ np.kron(np.eye(length // block), hadamard(block)), -1, axis)
    actual = np.asarray(fwht(x, axis, block_size, normalize=False))
    np.testing.assert_allclose(actual, expected, atol=1e-4 * np.sqrt(block))
    twice = np.asarray(fwht(actual, axis, block_size, normalize=False))  # H H = block * I
    np.testing.assert_allclose(np.take(twice, range(n), axis=axis), block * x, atol=1e-3 * block)
    orthonormal = fwht(fwht(x, axis, block_size), axis, block_size)  # W W = I
    np.testing.assert_allclose(np.asarray(orthonormal), np.moveaxis(padded, -1, axis), atol=1e-5)


@pytest.mark.parametrize("block_size", [3, 0, 8192])
def test_bad_block_sizes_get_one_line_errors(block_size):
    with pytest.raises(ValueError, match="power of two") as error:
        WHT1D(8, block_size=block_size)
    assert "\n" not in str(error.value)


def test_a_too_large_map_asks_for_tiles():
    with pytest.raises(ValueError, match="block_size"):
        layer_contract.wrap(WHT2D(), (65, 65, 1))
    assert layer_contract.wrap(WHT2D(block_size=8), (65, 65, 1)).output.shape[1:] == (65, 65, 1)


def test_smooth_threshold_is_tanh_times_the_soft_threshold():
    layer = SmoothThreshold()
    x = layer_contract.random_inputs((4, 6), count=3)
    layer(x)
    weights = random_weights(layer)
    np.testing.assert_allclose(np.asarray(layer(x)), ref.smooth_threshold(x, weights["threshold"]), atol=1e-6)
    x = np.array([-2.0, -0.5, -0.1, 0.0, 0.1, 0.5, 2.0], np.float32)
    np.testing.assert_allclose(np.asarray(SmoothThreshold()(x[None]))[0],
                               np.tanh(x) * np.maximum(np.abs(x) - 0.05, 0), atol=1e-7)


@pytest.mark.parametrize("filters, channels, block_size, use_scale", [
    (144, 24, None, False),      # expansion: 24 tiled to 256 = 16 x 16, the first 144 kept
    (24, 144, None, True),       # projection: 144 tiled to 256, means of 24 groups of 6
    (16, 16, None, False),       # same width, one 16-point matrix
    (576, 96, 256, True),        # three blocks of 256, input repeated
    (3, 5, None, False),         # tiny, one 8-point matrix, groups of 1: the first 3
    (10, 96, 32, False),         # three blocks, means of 10 groups of 9 (the last 6 channels unused)
])
def test_wht1d_matches_the_dense_reference(filters, channels, block_size, use_scale):
    layer = WHT1D(filters, block_size=block_size, use_scale=use_scale)
    x = layer_contract.random_inputs((3, 2, channels), count=2)
    layer(x)
    weights = random_weights(layer)
    expected = ref.wht1d(x, filters, weights["threshold"], weights.get("scale", 1.0), block_size)
    np.testing.assert_allclose(np.asarray(layer(x)), expected, atol=2e-6)
    assert len(layer.trainable_weights) == 1 + use_scale and layer.threshold.shape == (layer.length,)


@pytest.mark.parametrize("shape, block_size, use_scale", [
    ((7, 5, 3), None, True),     # 8 x 8 map, padded and cropped
    ((12, 9, 2), None, False),   # 16 x 16 = 256 coefficients: two 16-point factors
    ((12, 8, 2), 4, True),       # 4 x 4 tiles
    ((9, 9, 2), 4, False),       # tiles over a padded map
    ((20, 17, 2), 16, True),     # 2 x 2 tiles of 16 x 16 (one matmul per axis) over a padded map
])
def test_wht2d_matches_the_dense_reference(shape, block_size, use_scale):
    layer = WHT2D(block_size=block_size, use_scale=use_scale)
    x = layer_contract.random_inputs(shape, count=2)
    layer(x)
    weights = random_weights(layer)
    expected = ref.wht2d(x, weights["threshold"], weights.get("scale", 1.0), block_size)
    np.testing.assert_allclose(np.asarray(layer(x)), expected, atol=2e-6)


def test_pooling_matches_the_dense_reference():
    layer = WHTGlobalPooling2D()
    x = layer_contract.random_inputs((7, 6, 3), count=2)
    layer(x)
    weights = random_weights(layer)
    np.testing.assert_allclose(np.asarray(layer(x)), ref.wht_pooling(x, weights["threshold"], weights["scale"]),
                               atol=1e-6)


CONTRACT = {  # name: (layer class, arguments, input shape)
    "smooth_threshold": (SmoothThreshold, {}, (3, 3, 4)),
    "wht1d_factored": (WHT1D, {"filters": 96}, (2, 2, 80)),
    "wht1d_blocks_scaled": (WHT1D, {"filters": 6, "block_size": 4, "use_scale": True}, (3, 3, 10)),
    "wht2d_factored": (WHT2D, {}, (9, 12, 3)),
    "wht2d_tiles_scaled": (WHT2D, {"block_size": 4, "use_scale": True}, (8, 8, 3)),
    "pooling": (WHTGlobalPooling2D, {}, (5, 5, 4)),
}


@pytest.mark.parametrize("name", CONTRACT)
def test_contract(name, tmp_path):
    layer_class, arguments, shape = CONTRACT[name]
    make = lambda **kwargs: layer_class(**arguments, **kwargs)  # noqa: E731
    # a small step keeps the finite differences off the kinks of S_T at |z| = |T|
    layer_contract.assert_gradients_match_finite_differences(lambda dtype: make(dtype=dtype), shape, delta=1e-5)
    layer_contract.assert_serialization_round_trip(make(name=name), shape, tmp_path)
    inputs = keras.Input(shape=shape)
    model = keras.Model(inputs, make()(keras.layers.Conv2D(shape[-1], 1)(inputs)))
    layer_contract.assert_tflite_matches_keras(model, shape, samples=16)


def test_tflite_runs_the_transform_as_a_few_large_kernels():
    model = layer_contract.wrap(WHT1D(256), (4, 4, 256))
    model_bytes = convert(model, "fp32")
    assert set(operator_names(model_bytes)) <= {"FULLY_CONNECTED", "TRANSPOSE", "RESHAPE", "SUB", "ADD", "MUL",
                                                 "TANH", "GATHER"}
    # 16 x 16 factors: 4 matmuls, 2 transposes, 5 for S_T, reshapes; a butterfly would take 8 stages each way
    assert schema.Model.GetRootAsModel(model_bytes, 0).Subgraphs(0).OperatorsLength() <= 16
    # a whole 28 x 28 map, 32 x 32 coefficients: one matmul per axis each way, padding folded into the matrices
    model_bytes = convert(layer_contract.wrap(WHT2D(), (28, 28, 8)), "fp32")
    assert set(operator_names(model_bytes)) <= {"FULLY_CONNECTED", "TRANSPOSE", "RESHAPE", "SUB", "ADD", "MUL", "TANH"}
    flatbuffer = schema.Model.GetRootAsModel(model_bytes, 0)
    graph = flatbuffer.Subgraphs(0)
    codes = [flatbuffer.OperatorCodes(graph.Operators(i).OpcodeIndex()) for i in range(graph.OperatorsLength())]
    codes = [max(code.BuiltinCode(), code.DeprecatedBuiltinCode()) for code in codes]
    assert codes.count(schema.BuiltinOperator.TRANSPOSE) == 4 and len(codes) <= 21


def test_profile_counts_scalings_and_parameters():
    scaled = profile(layer_contract.wrap(WHT1D(96, use_scale=True), (5, 5, 80)))
    assert scaled["macs"] == 5 * 5 * 128 and scaled["params"] == 2 * 128
    plain = profile(layer_contract.wrap(WHT1D(96), (5, 5, 80)))
    assert (plain["params"], plain["trainable_params"], plain["macs"]) == (128, 128, 0)
    spatial = profile(layer_contract.wrap(WHT2D(block_size=4, use_scale=True), (6, 8, 3)))
    assert spatial["macs"] == 8 * 8 * 3 and spatial["params"] == 2 * 16
    pooling = profile(layer_contract.wrap(WHTGlobalPooling2D(), (7, 7, 5)))
    assert pooling["macs"] == 8 * 8 * 5 and pooling["params"] == 2 * 8 * 8 * 5


@pytest.mark.parametrize("suite, baseline", [("wht1d", "conv1x1"), ("wht2d", "conv3x3")])
def test_benchmark_suites_put_the_convolution_first(suite, baseline):
    module = load_suite(suite)
    shape = (8, 8, 16)
    entries = [(label, build()) for label, build in module.candidates(shape)]
    assert entries[0][0] == baseline and len(entries) >= 2
    for _, model in entries:
        assert tuple(model.output.shape) == (None, *shape)
    conv, wht = (entry[1].count_params() for entry in entries[:2])
    assert wht * 8 < conv
