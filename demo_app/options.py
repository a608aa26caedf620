"""Command-line values the demo's commands share, parsed into Python values or a one-line error."""


def parse_size(text, option):
    """``"WxH"`` as ``(width, height)`` in pixels, or a ValueError naming ``option`` (e.g. ``--camera-size``)."""
    width, _, height = str(text).lower().partition("x")
    if not (width.isdigit() and height.isdigit() and int(width) > 0 and int(height) > 0):
        raise ValueError(f"{option} {text}: expected WIDTHxHEIGHT in pixels, e.g. 640x480")
    return int(width), int(height)
