"""Draw the demo's text (top-k labels, FPS, latency) over a darkened box in the frame's corner."""
import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX


def font_scale(frame):
    """A font scale readable on the frame: 0.35 at 160 px up to 2.0 on large frames."""
    return float(np.clip(min(frame.shape[:2]) / 600.0, 0.35, 2.0))


def overlay_lines(top, fps=None, latency_ms=None):
    """Text lines for ``top`` = ``[(label, score), ...]`` plus FPS and latency when known."""
    lines = [f"{label} {score:.2f}" for label, score in top]
    timing = [f"{fps:.1f} FPS" if fps else "", f"{latency_ms:.1f} ms" if latency_ms is not None else ""]
    if any(timing):
        lines.append("  ".join(t for t in timing if t))
    return lines


def draw_overlay(frame, lines, color=(255, 255, 255)):
    """Return a copy of the RGB ``frame`` with ``lines`` written over a dark box at the top left."""
    out = np.ascontiguousarray(frame).copy()
    if not lines:
        return out
    scale = font_scale(out)
    thickness = max(1, round(scale * 1.5))
    sizes = [cv2.getTextSize(line, FONT, scale, thickness) for line in lines]
    text_h = max(h for (_, h), _ in sizes)
    pad = max(2, round(5 * scale))
    line_height = text_h + max(base for _, base in sizes) + pad // 2
    box_w = min(out.shape[1], max(w for (w, _), _ in sizes) + 2 * pad)
    box_h = min(out.shape[0], pad + line_height * len(lines))
    box = out[:box_h, :box_w]
    box[:] = (box * 0.35).astype(out.dtype)  # darken, keep a hint of the picture
    for i, line in enumerate(lines):
        cv2.putText(out, line, (pad, pad + i * line_height + text_h), FONT, scale, color, thickness, cv2.LINE_AA)
    return out
