"""The demo window: one-line errors without a display or Tk, and frames shown on a real X server (Xvfb)."""
import os
import select
import shutil
import subprocess
import sys

import numpy as np
import pytest

from demo_app.window import NO_DISPLAY, NO_TK, Window

COLOUR = (12, 200, 99)
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def test_no_display_is_a_one_line_error(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    with pytest.raises(ValueError) as info:
        Window("demo")
    assert str(info.value) == NO_DISPLAY


def test_unreachable_display_is_the_same_error(monkeypatch):
    unused = next(n for n in range(5000, 6000) if not os.path.exists(f"/tmp/.X11-unix/X{n}"))
    monkeypatch.setenv("DISPLAY", f":{unused}")
    with pytest.raises(ValueError) as info:
        Window("demo")
    assert str(info.value) == NO_DISPLAY


def test_missing_tk_is_a_one_line_error(monkeypatch):
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setitem(sys.modules, "tkinter", None)  # import tkinter raises ImportError
    with pytest.raises(ImportError) as info:
        Window("demo")
    assert str(info.value) == NO_TK


@pytest.fixture
def xvfb(monkeypatch):
    """A 1024x768 Xvfb server on a free display number (Xvfb picks it); ``DISPLAY`` points at it."""
    if not shutil.which("Xvfb"):
        pytest.skip("Xvfb is not installed (Debian package xvfb)")
    read_fd, write_fd = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
                              pass_fds=[write_fd], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    try:
        number = b""
        while not number.endswith(b"\n") and select.select([read_fd], [], [], 10)[0]:
            chunk = os.read(read_fd, 16)
            if not chunk:
                break
            number += chunk
        assert number.strip().isdigit(), "Xvfb did not start"
        display = f":{int(number)}"
        monkeypatch.setenv("DISPLAY", display)
        yield display
    finally:
        os.close(read_fd)
        server.terminate()
        server.wait(10)


def _shown_box(display, colour):
    """``(width, height)`` of the screen pixels of ``colour`` grabbed from the X server, and their count."""
    from PIL import ImageGrab

    screen = np.asarray(ImageGrab.grab(xdisplay=display).convert("RGB"))
    ys, xs = np.nonzero((screen == colour).all(axis=-1))
    return (int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)), len(xs)


def _focus(window):
    """Map and focus the window, as a user clicking it would (Tk sends key events to the focus window)."""
    for _ in range(1000):
        if window._root.winfo_viewable():
            window._root.focus_force()
            window._root.update()
            return
        window._root.update()
    raise AssertionError("the window was never mapped")


def _show_frames():
    window = Window("mobilekit demo")
    try:
        frame = np.zeros((240, 320, 3), np.uint8)
        for i in range(10):
            frame[:] = COLOUR if i == 9 else (i * 20, 0, 0)
            assert window.show(frame) is False
        root = window._root
        assert root.winfo_exists() and root.title() == "mobilekit demo"
        assert (window._photo.width(), window._photo.height()) == (320, 240)
        _focus(window)
        size, count = _shown_box(os.environ["DISPLAY"], COLOUR)
        assert size == (320, 240) and count == 320 * 240, (size, count)  # the last frame, whole, on screen

        large = np.zeros((1500, 2000, 3), np.uint8)
        large[:] = COLOUR
        assert window.show(large) is False
        (width, height), _ = _shown_box(os.environ["DISPLAY"], COLOUR)
        assert width <= 1024 * 0.9 and height <= 768 * 0.9 and abs(width / height - 4 / 3) < 0.01, (width, height)

        root.event_generate("<KeyPress>", keysym="q", when="tail")
        assert window.show(frame) is True  # q quits
    finally:
        window.close()
    window.close()
    assert window.show(frame) is True


def _quit_by_escape_and_close_button():
    frame = np.zeros((32, 32, 3), np.uint8)
    for quit_by in ("escape", "close"):
        window = Window("demo")
        try:
            assert window.show(frame) is False
            _focus(window)
            if quit_by == "escape":
                window._root.event_generate("<KeyPress>", keysym="Escape", when="tail")
            else:
                window._root.tk.call(window._root.protocol("WM_DELETE_WINDOW"))  # what the window manager calls
            assert window.show(frame) is True, quit_by
        finally:
            window.close()


@pytest.mark.e2e
@pytest.mark.parametrize("scenario", [_show_frames, _quit_by_escape_and_close_button])
def test_window_on_an_x_server(xvfb, scenario):
    """Each scenario runs in its own process: Xlib exits the process that still holds a connection
    to an X server once the server is gone."""
    code = f"import sys; sys.path.insert(0, {HERE!r}); import test_demo_window; test_demo_window.{scenario.__name__}()"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
