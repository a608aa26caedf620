"""The demo's window: annotated RGB frames shown with Tk, closed by q, Esc or the window's close button.

The device installs ``opencv-python-headless``, whose ``cv2.imshow`` raises: it has no GUI. The
GUI build (``opencv-python``) cannot be added beside it, because both wheels install the same
``cv2`` package and clash in one environment. So the window uses the standard library's Tk
(``tkinter``) and Pillow's ``ImageTk.PhotoImage``, which need no second OpenCV wheel.
"""
import os
import sys

import numpy as np
from PIL import Image

NO_DISPLAY = "no display available: run with --headless (and --output or --serve)"
NO_TK = "the window needs Python's Tk bindings: install python3-tk, or run with --headless"
SCREEN_FRACTION = 0.9  # the largest part of the screen a frame may cover
QUIT_KEYS = ("q", "Q", "Escape")


class Window:
    """A window showing frames; ``show`` returns True once the user asked to quit.

    Frames larger than the screen are shrunk to fit it, keeping their aspect ratio.

    Raises:
        ValueError: no display (``DISPLAY``/``WAYLAND_DISPLAY`` unset, or Tk cannot connect).
        ImportError: Python has no Tk bindings (``tkinter``).
    """

    def __init__(self, title):
        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise ValueError(NO_DISPLAY)
        try:
            import tkinter
            from PIL import ImageTk
        except ImportError:
            raise ImportError(NO_TK) from None
        self._tk, self._image_tk = tkinter, ImageTk
        try:
            self._root = tkinter.Tk()
        except tkinter.TclError:
            raise ValueError(NO_DISPLAY) from None
        self._root.title(title)
        self._root.protocol("WM_DELETE_WINDOW", self._request_quit)
        self._root.bind("<KeyPress>", self._on_key)
        self._label = tkinter.Label(self._root, borderwidth=0, highlightthickness=0)
        self._label.pack()
        self._max_size = (int(self._root.winfo_screenwidth() * SCREEN_FRACTION),
                          int(self._root.winfo_screenheight() * SCREEN_FRACTION))
        self._photo = None
        self._quit = False

    def _request_quit(self):
        self._quit = True

    def _on_key(self, event):
        if event.keysym in QUIT_KEYS:
            self._quit = True

    def show(self, rgb):
        """Show the ``(h, w, 3)`` uint8 RGB frame; True when q or Esc was pressed or the window closed."""
        if self._quit or self._root is None:
            return True
        image = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8))
        scale = min(1.0, self._max_size[0] / image.width, self._max_size[1] / image.height)
        if scale < 1.0:
            image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                                 Image.Resampling.BILINEAR)
        try:
            if self._photo is not None and (self._photo.width(), self._photo.height()) == image.size:
                self._photo.paste(image)  # same size: update the shown image in place
            else:
                self._photo = self._image_tk.PhotoImage(image, master=self._root)
                self._label.configure(image=self._photo)
            self._root.update()
        except self._tk.TclError:  # the window was destroyed under us
            self._quit = True
        return self._quit

    def close(self):
        """Close the window (again: nothing)."""
        if self._root is not None:
            try:
                self._root.destroy()
            except self._tk.TclError:
                pass
            self._root, self._photo = None, None
