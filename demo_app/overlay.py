"""Draw the demo's text (top-k labels, FPS, latency; a legend) over a darkened box in a corner of the frame.

Text size, line widths and padding grow with the frame: everything is drawn at ``font_scale(frame)``
times its size on a 640x480 frame, so small and full-HD frames both get readable text.
"""
import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX
REFERENCE_SIZE = (480, 640)  # (height, width) of the frame drawn at scale 1
MIN_FONT_SCALE = 0.3  # text about 8 px tall, the smallest that stays legible
WHITE = (255, 255, 255)


def font_scale(frame):
    """The frame's size relative to 640x480 (its height / 480, or width / 640 when narrower), at least
    ``MIN_FONT_SCALE``: 1.0 on 640x480, 2.25 on 1920x1080, ``MIN_FONT_SCALE`` on 96x96."""
    height, width = frame.shape[:2]
    return max(MIN_FONT_SCALE, min(height / REFERENCE_SIZE[0], width / REFERENCE_SIZE[1]))


def text_thickness(scale):
    """Stroke width in pixels of text drawn at font scale ``scale``."""
    return max(1, round(1.5 * scale))


def line_width(frame):
    """Width in pixels of lines (e.g. boxes) drawn on the frame: 2 px at 640x480, proportional elsewhere."""
    return max(1, round(2 * font_scale(frame)))


def overlay_lines(top, fps=None, latency_ms=None, frame_age_ms=None):
    """Text lines for ``top`` = ``[(label, score), ...]`` plus FPS, latency and a live frame's age when known."""
    lines = [f"{label} {score:.2f}" for label, score in top]
    timing = [f"{fps:.1f} FPS" if fps else "", f"{latency_ms:.1f} ms" if latency_ms is not None else "",
              f"age {frame_age_ms:.0f} ms" if frame_age_ms is not None else ""]
    if any(timing):
        lines.append("  ".join(t for t in timing if t))
    return lines


def _layout(lines, scale, swatches):
    """``(box width, box height, text height, line height, padding, thickness, swatch width)`` in pixels."""
    thickness = text_thickness(scale)
    sizes = [cv2.getTextSize(line, FONT, scale, thickness) for line in lines]
    text_h = max(h for (_, h), _ in sizes)
    pad = max(2, round(6 * scale))
    swatch_w = text_h + pad if swatches else 0
    line_h = text_h + max(base for _, base in sizes) + pad // 2
    return (max(w for (w, _), _ in sizes) + swatch_w + 2 * pad, pad + line_h * len(lines), text_h, line_h, pad,
            thickness, swatch_w)


def draw_overlay(frame, lines, color=WHITE, swatches=None, align="left"):
    """Return a copy of the RGB ``frame`` with ``lines`` written over a dark box at the top left.

    Args:
        frame: ``(h, w, 3)`` uint8 RGB image (not modified).
        lines: text lines, top to bottom.
        color: RGB colour of the text.
        swatches: one RGB colour per line, drawn as a filled square before its text (a legend).
        align: ``"left"`` for the top-left corner, ``"right"`` for the top-right one.
    """
    if align not in ("left", "right"):
        raise ValueError(f"overlay align {align!r} is not supported: expected left or right")
    out = np.ascontiguousarray(frame).copy()
    if not lines:
        return out
    height, width = out.shape[:2]
    scale = font_scale(out)
    fit = width / _layout(lines, scale, swatches)[0]
    if fit < 1:  # long lines: shrink the text to the frame's width, down to the legible minimum
        scale = max(MIN_FONT_SCALE, scale * fit)
    box_w, box_h, text_h, line_h, pad, thickness, swatch_w = _layout(lines, scale, swatches)
    x0 = 0 if align == "left" else max(0, width - box_w)
    box = out[:min(height, box_h), x0:x0 + box_w]
    box[:] = (box * 0.35).astype(out.dtype)  # darken, keep a hint of the picture
    for i, line in enumerate(lines):
        baseline = pad + i * line_h + text_h
        if swatches:
            swatch = tuple(int(c) for c in swatches[i])
            cv2.rectangle(out, (x0 + pad, baseline - text_h), (x0 + pad + text_h - 1, baseline - 1), swatch, -1)
        cv2.putText(out, line, (x0 + pad + swatch_w, baseline), FONT, scale, color, thickness, cv2.LINE_AA)
    return out
