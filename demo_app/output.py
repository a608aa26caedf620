"""Where annotated frames go: a video file (.mp4/.avi) or a folder of PNG frames.

Files are written under a hidden temporary name and moved into place (``demo_app.files``), so
an error or a kill never leaves a half-written file behind under the final name.
"""
import os

import cv2

from demo_app.files import AtomicFile
from demo_app.preprocess import resize
from demo_app.sources import opencv_quiet

VIDEO_CODECS = {".mp4": "mp4v", ".avi": "MJPG"}


class FrameFolder:
    """Writes ``frame_00000.png``, ``frame_00001.png``, ... into folder ``path``."""

    def __init__(self, path):
        self.path, self.count = path, 0
        os.makedirs(path, exist_ok=True)

    def write(self, rgb):
        ok, png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        if not ok:
            raise ValueError(f"cannot encode frame {self.count} as PNG")
        with AtomicFile(os.path.join(self.path, f"frame_{self.count:05d}.png")) as tmp, open(tmp, "wb") as f:
            f.write(png.tobytes())
        self.count += 1

    def close(self, success=True):
        pass


class VideoFile:
    """Writes a video at ``path`` (codec from the extension), sized by the first frame."""

    def __init__(self, path, fps=10.0):
        self.path, self.fps, self.count = path, float(fps), 0
        self.codec = VIDEO_CODECS[os.path.splitext(path)[1].lower()]
        self.writer = self.size = self.output = None

    def write(self, rgb):
        if self.writer is None:
            self.output = AtomicFile(self.path)
            self.size = (rgb.shape[1], rgb.shape[0])
            with opencv_quiet():
                self.writer = cv2.VideoWriter(self.output.tmp, cv2.VideoWriter_fourcc(*self.codec), self.fps,
                                              self.size)
            if not self.writer.isOpened():
                raise ValueError(f"cannot write video {self.path}: OpenCV's VideoWriter did not open with "
                                 f"codec {self.codec} (try .avi, or a folder for PNG frames)")
        frame = resize(rgb, self.size[1], self.size[0])  # every frame must have the first one's size
        self.writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        self.count += 1

    def close(self, success=True):
        """Finish the file and move it into place, or delete it when ``success`` is false."""
        if self.writer is not None:
            self.writer.release()
            self.writer = None
        if self.output is not None:
            self.output.close(keep=bool(success and self.count))
            self.output = None


def open_output(path, fps=None):
    """A ``VideoFile`` for a path ending in .mp4/.avi, else a ``FrameFolder``."""
    if os.path.splitext(path)[1].lower() in VIDEO_CODECS:
        return VideoFile(path, fps or 10.0)
    return FrameFolder(path)
