"""Segmenter output on the device: per-pixel class maps and a translucent class-coloured mask.

A segmenter's one output is ``(1, h, w, classes)`` scores; its class map is the arg-max per
pixel, resized (nearest) to the frame. Class 0 is background and stays uncoloured.
"""
import cv2
import numpy as np

from demo_app.overlay import draw_overlay

MASK_OPACITY = 0.5


def is_segmenter(output_shapes):
    """True for one ``(1, h, w, classes)`` output with a spatial extent and two or more classes."""
    return len(output_shapes) == 1 and len(output_shapes[0]) == 4 and output_shapes[0][-1] >= 2 and \
        min(output_shapes[0][1:3]) > 1


def class_colors(count):
    """``count`` distinct RGB colours (uint8): black for background, then evenly spaced hues."""
    hues = np.linspace(0, 180, max(count - 1, 1), endpoint=False).astype(np.uint8)
    hsv = np.stack([hues, np.full_like(hues, 220), np.full_like(hues, 255)], axis=-1)[None]
    colors = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0]
    return np.concatenate([np.zeros((1, 3), np.uint8), colors])[:count]


def class_map(scores, height, width):
    """Arg-max class per pixel of ``(1, h, w, classes)`` scores, resized to ``height x width``."""
    classes = np.argmax(np.asarray(scores)[0], axis=-1).astype(np.uint8)
    if classes.shape != (height, width):
        classes = cv2.resize(classes, (width, height), interpolation=cv2.INTER_NEAREST)
    return classes


def region_edges(classes):
    """Pixels whose right or lower neighbour belongs to another class (the outlines of the regions)."""
    edges = np.zeros(classes.shape, bool)
    edges[:, :-1] |= classes[:, :-1] != classes[:, 1:]
    edges[:-1, :] |= classes[:-1, :] != classes[1:, :]
    return edges


def draw_mask(frame, classes, colors, opacity=MASK_OPACITY):
    """A copy of the RGB ``frame`` with non-background pixels of ``classes`` tinted by class colour
    and each region outlined in its full colour."""
    out = np.asarray(frame).astype(np.float32)
    foreground = classes > 0
    out[foreground] = (1 - opacity) * out[foreground] + opacity * colors[classes[foreground]]
    outline = cv2.dilate(region_edges(classes).astype(np.uint8), np.ones((2, 2), np.uint8)).astype(bool) & foreground
    out[outline] = colors[classes[outline]]
    return np.round(out).astype(np.uint8)


def class_fractions(classes, count):
    """``[(class, fraction of pixels), ...]`` of the non-background classes present, largest first."""
    counts = np.bincount(classes.ravel(), minlength=count)
    order = [int(c) for c in np.argsort(-counts[1:], kind="stable") + 1 if counts[c]]
    return [(c, float(counts[c] / classes.size)) for c in order]


def draw_legend(frame, classes, names, colors):
    """A copy of the RGB ``frame`` with a legend at the top right: for each of ``classes`` (indices, e.g.
    the classes ``class_fractions`` finds) a swatch of its colour in ``colors`` and its name in ``names``."""
    classes = [int(c) for c in classes]
    return draw_overlay(frame, [names[c] if c < len(names) else str(c) for c in classes],
                        swatches=[colors[c] for c in classes], align="right")
