"""Frame -> model input conversion, and the text overlay."""
import cv2
import numpy as np
import pytest

from demo_app.overlay import draw_overlay, font_scale, overlay_lines
from demo_app.preprocess import image_size, parse_input_range, preprocess

RNG = np.random.default_rng(0)
FRAME = RNG.integers(0, 256, (48, 64, 3), dtype=np.uint8)


def test_resize_interpolation_and_dtype():
    shrunk = preprocess(FRAME, (1, 12, 16, 3))
    assert shrunk.shape == (12, 16, 3) and shrunk.dtype == np.float32
    np.testing.assert_array_equal(shrunk, cv2.resize(FRAME, (16, 12), interpolation=cv2.INTER_AREA))
    enlarged = preprocess(FRAME, (1, 96, 128, 3))
    np.testing.assert_array_equal(enlarged, cv2.resize(FRAME, (128, 96), interpolation=cv2.INTER_LINEAR))
    np.testing.assert_array_equal(preprocess(FRAME, (1, 48, 64, 3)), FRAME)


def test_grayscale_model_input():
    frame = np.zeros((8, 8, 3), np.uint8)
    frame[..., 0] = 200  # pure red -> luma 0.299 * 200
    x = preprocess(frame, (1, 8, 8, 1))
    assert x.shape == (8, 8, 1)
    np.testing.assert_allclose(x, 0.299 * 200, atol=1)


@pytest.mark.parametrize("input_range, low, high", [("0,255", 0, 255), ("0,1", 0, 1), ("-1,1", -1, 1)])
def test_input_ranges(input_range, low, high):
    frame = np.zeros((4, 4, 3), np.uint8)
    frame[0, 0] = 255
    frame[0, 1] = 51
    x = preprocess(frame, (1, 4, 4, 3), input_range)
    assert x.min() == low and x.max() == high
    np.testing.assert_allclose(x[0, 1], low + 0.2 * (high - low), rtol=1e-6)


def test_not_an_image_and_bad_range():
    with pytest.raises(ValueError) as info:
        image_size((1, 10))
    assert str(info.value) == "model input shape (1, 10) is not an image: expected (1, height, width, 1 or 3)"
    with pytest.raises(ValueError, match=r"\(1, 8, 8, 4\) is not an image"):
        preprocess(FRAME, np.array([1, 8, 8, 4], np.int32))
    with pytest.raises(ValueError, match="input range '0,2' is not supported: expected one of 0,255, 0,1, -1,1"):
        parse_input_range("0,2")


def test_overlay_lines():
    assert overlay_lines([("cat", 0.9312), ("dog", 0.05)], fps=12.345, latency_ms=3.21) == [
        "cat 0.93", "dog 0.05", "12.3 FPS  3.2 ms"]
    assert overlay_lines([("cat", 0.5)]) == ["cat 0.50"]


@pytest.mark.parametrize("shape", [(160, 160, 3), (480, 640, 3)])
def test_overlay_draws_top_left_on_a_copy(shape):
    frame = np.full(shape, 200, np.uint8)
    out = draw_overlay(frame, ["cat 0.93", "12.3 FPS  3.2 ms"])
    assert (frame == 200).all()  # the input is untouched
    assert out.shape == frame.shape and out.dtype == np.uint8
    changed = (out != frame).any(axis=2)
    ys, xs = np.nonzero(changed)
    assert ys.max() < shape[0] // 2 and xs.max() < shape[1]  # a box at the top...
    assert xs.min() == 0 and ys.min() == 0                    # ...from the corner
    box = out[: ys.max() + 1, : xs.max() + 1]
    assert (box < 100).mean() > 0.5 and (box > 240).any()     # dark box with white text
    assert (out[-10:, -10:] == 200).all()


def test_font_grows_with_frame():
    small, medium, large = (font_scale(np.zeros(shape)) for shape in [(160, 160, 3), (480, 640, 3), (1080, 1920, 3)])
    assert small < medium < large
    tiny = draw_overlay(np.zeros((20, 20, 3), np.uint8), ["a long label that does not fit 0.99"])
    assert tiny.shape == (20, 20, 3)


def _text_rows(height, width, lines):
    """Rows of a black frame that the overlay's text changes (the dark box leaves black black)."""
    out = draw_overlay(np.zeros((height, width, 3), np.uint8), lines)
    rows = np.flatnonzero(out.any(axis=(1, 2)))
    return rows.max() - rows.min() + 1


def test_text_grows_with_the_frame_height():
    lines = overlay_lines([("person", 0.93)], fps=12.3, latency_ms=3.2)
    small, medium, large = (_text_rows(h, w, lines) for h, w in [(120, 160), (480, 640), (1080, 1920)])
    assert 12 <= small < medium < large
    assert large / medium == pytest.approx(1080 / 480, rel=0.15)  # proportional above the legible minimum


def test_text_fits_inside_small_frames():
    out = draw_overlay(np.zeros((96, 96, 3), np.uint8), overlay_lines([("person", 0.93)], fps=12.3, latency_ms=3.2))
    text = out.any(axis=2)
    assert text.any() and not text[:, -2:].any() and not text[-2:].any()  # nothing cut at the edges
    wide = draw_overlay(np.zeros((480, 300, 3), np.uint8), ["a rather long label for a narrow frame 0.99"])
    assert not wide.any(axis=2)[:, -2:].any()  # long lines shrink to the width


def test_legend_swatches_at_the_top_right():
    frame = np.full((480, 640, 3), 200, np.uint8)
    out = draw_overlay(frame, ["red", "green"], swatches=[(255, 0, 0), (0, 255, 0)], align="right")
    changed = out.any(axis=2) & (out != frame).any(axis=2)
    xs = np.flatnonzero(changed.any(axis=0))
    assert xs.max() == 639 and xs.min() > 400  # a box in the top-right corner
    red = (out == (255, 0, 0)).all(axis=2)
    green = (out == (0, 255, 0)).all(axis=2)
    assert red.sum() > 100 and green.sum() > 100  # filled swatches...
    assert np.flatnonzero(red.any(axis=1)).max() < np.flatnonzero(green.any(axis=1)).min()  # ...one per line
    with pytest.raises(ValueError, match="overlay align 'middle' is not supported: expected left or right"):
        draw_overlay(frame, ["x"], align="middle")


def test_overlay_lines_with_frame_age():
    assert overlay_lines([], fps=10.0, latency_ms=2.0, frame_age_ms=41.6) == ["10.0 FPS  2.0 ms  age 42 ms"]
