"""Raspberry Pi cameras through picamera2 (libcamera), as a reader for ``LatestFrame``.

Follows "The Picamera2 Library" manual (Raspberry Pi Ltd): ``Picamera2(camera_num)``,
``create_preview_configuration(main=..., lores=..., controls=...)``, ``configure``, ``start``,
``capture_array("main")``, ``stop`` and ``close``. As in the manual's examples the camera runs
two ISP outputs: a full-colour ``main`` stream at ``size`` for display, and a small ``lores``
YUV420 stream at ``lores_size`` meant for inference (the ISP scales it for free). Only ``main``
is read and handed on, as RGB: the loop draws on the frame it infers on, and preprocessing
resizes it to the model input anyway. picamera2's "RGB888" format is laid out B, G, R in
memory (manual, "Image formats"), so ``main`` arrays are BGR.
"""
import cv2

INSTALL_HINT = "on Raspberry Pi OS: sudo apt install python3-picamera2"


def import_picamera2():
    """The ``Picamera2`` class, or a one-line ValueError saying how to install it."""
    try:
        from picamera2 import Picamera2
    except ImportError:
        raise ValueError(f"source picam needs picamera2, which is not installed ({INSTALL_HINT})") from None
    return Picamera2


class PicamReader:
    """Camera ``index`` with a ``main`` RGB888 stream of ``size`` and a ``lores`` YUV420 stream of ``lores_size``."""

    def __init__(self, index=0, size=(640, 480), lores_size=None, fps=None):
        self.picamera2 = import_picamera2()
        self.index, self.size = int(index), (int(size[0]), int(size[1]))
        # half the main size by default, even (YUV420 subsamples by 2), like the manual's 640x480 + 320x240
        self.lores_size = tuple(lores_size) if lores_size else (self.size[0] // 4 * 2, self.size[1] // 4 * 2)
        self.fps = float(fps) if fps else None
        self.camera = self._open()

    def _open(self):
        try:
            camera = self.picamera2(self.index)
        except Exception as error:  # picamera2 raises IndexError/RuntimeError for a missing or busy camera
            reason = (str(error).splitlines() or [type(error).__name__])[0]
            raise ValueError(f"picam:{self.index} could not be opened: {reason} (expected a connected Raspberry Pi "
                             f"camera; rpicam-hello --list-cameras lists them)") from None
        try:
            controls = {"FrameRate": self.fps} if self.fps else {}
            camera.configure(camera.create_preview_configuration(
                main={"size": self.size, "format": "RGB888"},
                lores={"size": self.lores_size, "format": "YUV420"}, controls=controls))
            camera.start()
        except Exception:
            camera.close()
            raise
        return camera

    def read(self):
        """The next ``main`` frame as RGB, or None when the camera stopped delivering."""
        try:
            bgr = self.camera.capture_array("main")
        except Exception:  # the camera went away (cable, power); reopen() decides whether it comes back
            return None
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def reopen(self):
        try:
            self.close()
            self.camera = self._open()
        except Exception:
            return False
        return True

    def close(self):
        camera, self.camera = self.camera, None
        if camera is not None:
            try:
                camera.stop()
            finally:
                camera.close()
