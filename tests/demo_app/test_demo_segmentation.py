"""The demo on a segmenter: class maps, the translucent mask and the model-kind dispatch."""
import numpy as np
import pytest
from demo_helpers import read_rgb, write_rgb

from demo_app.app import run_demo
from demo_app.segmentation import (MASK_OPACITY, class_colors, class_fractions, class_map, draw_legend, draw_mask,
                                   is_segmenter)


def test_class_colors_are_distinct_with_black_background():
    colors = class_colors(5)
    assert colors.shape == (5, 3) and colors.dtype == np.uint8 and not colors[0].any()
    assert len({tuple(c) for c in colors}) == 5


def test_class_map_mask_and_fractions():
    scores = np.zeros((1, 2, 2, 3), np.float32)
    scores[0, 0, 1, 2] = scores[0, 1, 0, 1] = 1.0  # top right: class 2, bottom left: class 1
    classes = class_map(scores, 4, 6)
    expected = np.repeat(np.repeat(np.array([[0, 2], [1, 0]]), 2, axis=0), 3, axis=1)
    np.testing.assert_array_equal(classes, expected)
    frame = np.full((4, 6, 3), 100, np.uint8)
    colors = class_colors(3)
    drawn = draw_mask(frame, classes, colors)
    np.testing.assert_array_equal(drawn[classes == 0], frame[classes == 0])
    blended = np.round((1 - MASK_OPACITY) * 100 + MASK_OPACITY * colors[2].astype(np.float64))
    np.testing.assert_array_equal(drawn[0, 5], blended)  # inside the class-2 region
    np.testing.assert_array_equal(drawn[1, 5], colors[2])  # the region's outline is drawn in full colour
    assert class_fractions(classes, 3) == [(1, 0.25), (2, 0.25)]
    assert class_fractions(np.zeros((2, 2), np.uint8), 3) == []


def test_model_kind_from_output_shapes():
    assert is_segmenter([(1, 8, 8, 4)])
    assert not is_segmenter([(1, 10)]) and not is_segmenter([(1, 1, 1, 10)])
    assert not is_segmenter([(1, 10, 4), (1, 10), (1, 10), (1,)])


@pytest.fixture(scope="module")
def colour_segmenter(tmp_path_factory):
    """A .tflite that labels each pixel of a 16x16 input by its dominant colour: dark = 0, red = 1,
    green = 2, blue = 3 (fixed 1x1 convolution, then softmax)."""
    from keras_layers.keras_api import keras
    from tflite.converter import convert

    inputs = keras.Input((16, 16, 3))
    conv = keras.layers.Conv2D(4, 1)
    outputs = keras.layers.Softmax()(conv(inputs))
    model = keras.Model(inputs, outputs)
    kernel = np.zeros((1, 1, 3, 4), np.float32)
    kernel[0, 0, 0, 1] = kernel[0, 0, 1, 2] = kernel[0, 0, 2, 3] = 0.1
    conv.set_weights([kernel, np.array([10.0, 0, 0, 0], np.float32)])
    path = tmp_path_factory.mktemp("seg") / "colours.tflite"
    path.write_bytes(convert(model, "fp32"))
    return str(path)


def test_demo_draws_the_class_mask_of_a_segmenter(colour_segmenter, tmp_path):
    frame = np.zeros((256, 256, 3), np.uint8)
    frame[32:96, 32:160] = (250, 0, 0)
    frame[160:240, 120:200] = (0, 0, 250)
    labels = tmp_path / "labels.txt"
    labels.write_text("background\nred\ngreen\nblue\n")
    summary = run_demo(colour_segmenter, write_rgb(tmp_path / "frame.png", frame), labels=str(labels),
                       output=str(tmp_path / "out"), headless=True, quiet=True, top_k=2)
    name, index, label, fraction = summary["predictions"][0]
    assert (index, label) == (1, "red") and fraction == pytest.approx(8192 / 65536, abs=0.03)  # the largest class
    annotated = read_rgb(tmp_path / "out" / "frame_00000.png")
    colors = class_colors(4)
    expected = draw_mask(frame, np.where(frame[..., 0] > 0, 1, np.where(frame[..., 2] > 0, 3, 0)).astype(np.uint8),
                         colors)
    # away from region edges (the 16x16 map is scaled up) and the text box, the mask is exact
    for y, x in [(90, 150), (200, 160), (130, 230), (250, 10)]:
        np.testing.assert_allclose(annotated[y, x], expected[y, x], atol=8)
    legend = annotated[:60, 160:]  # top right: a swatch for each class found, none for green
    assert all((np.abs(legend.astype(int) - colors[c]) <= 8).all(axis=2).sum() > 20 for c in (1, 3))
    assert not (np.abs(legend.astype(int) - colors[2]) <= 8).all(axis=2).any()


def test_legend_names_the_classes_present_with_their_colours():
    frame = np.full((240, 320, 3), 128, np.uint8)
    colors = class_colors(4)
    out = draw_legend(frame, [3, 1], ["background", "red", "green", "blue"], colors)
    for c in (3, 1):
        assert (out == colors[c]).all(axis=2).sum() > 20  # a swatch of each class present
    assert not (out == colors[2]).all(axis=2).any()  # none of the class absent
    changed = np.nonzero((out != frame).any(axis=2))
    assert changed[1].max() == 319 and changed[1].min() > 160 and changed[0].max() < 80  # top right
    assert (frame == 128).all() and np.array_equal(draw_legend(frame, [], ["background"], colors), frame)
