"""Frame sources: an image, a folder of images, a video file or a camera, as RGB uint8 frames.

``open_source(spec)`` returns an iterable of ``(name, frame)`` with ``frame`` an ``HxWx3``
uint8 RGB array. Problems with the source (missing, unreadable, no camera) raise one-line
``FileNotFoundError``/``ValueError`` when it is opened, or, for an undecodable image in a
folder, when that image is reached.
"""
import contextlib
import os

import cv2
import numpy as np

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


@contextlib.contextmanager
def opencv_quiet():
    """Silence OpenCV's own log lines (e.g. V4L2 warnings) while opening a capture."""
    old = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(old)


def read_image(path):
    """Decode the image file at ``path`` into an RGB uint8 ``HxWx3`` array."""
    data = np.fromfile(path, dtype=np.uint8)  # unlike cv2.imread, fine with non-ASCII paths
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if bgr is None:
        reason = "the file is empty" if not data.size else "not a readable image"
        raise ValueError(f"cannot decode image {path}: {reason} (expected {', '.join(IMAGE_EXTENSIONS)})")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


class ImageFiles:
    """One image or a list of images, decoded as they are reached."""

    is_stream = False
    fps = None

    def __init__(self, paths):
        self.paths = list(paths)

    def __iter__(self):
        for path in self.paths:
            yield os.path.basename(path), read_image(path)

    def __len__(self):
        return len(self.paths)

    def close(self):
        pass


class Capture:
    """Frames from a ``cv2.VideoCapture`` (video file or camera); released when done."""

    is_stream = True

    def __init__(self, capture, name):
        self.capture, self.name = capture, name
        fps = capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and 0 < fps < 1000 else None

    def __iter__(self):
        try:
            index = 0
            while self.capture.isOpened():
                ok, bgr = self.capture.read()
                if not ok:
                    break
                if bgr.ndim == 2:
                    bgr = cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR)
                yield f"{self.name}[{index}]", cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                index += 1
        finally:
            self.close()

    def close(self):
        self.capture.release()


def open_camera(index):
    """The camera with OpenCV device ``index``."""
    with opencv_quiet():
        capture = cv2.VideoCapture(int(index))
    if not capture.isOpened():
        capture.release()
        raise ValueError(f"camera {index} could not be opened: expected a connected camera at that "
                         f"index (e.g. /dev/video{index})")
    return Capture(capture, f"camera{index}")


def open_video(path):
    """The video file at ``path``."""
    with opencv_quiet():
        capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        capture.release()
        raise ValueError(f"cannot open video {path}: OpenCV cannot read it (expected an image "
                         f"({', '.join(IMAGE_EXTENSIONS)}) or a video such as .mp4/.avi)")
    return Capture(capture, os.path.basename(path))


def open_folder(path):
    """The images in folder ``path``, sorted by file name."""
    names = sorted(n for n in os.listdir(path) if n.lower().endswith(IMAGE_EXTENSIONS))
    if not names:
        raise ValueError(f"no images in folder {path}: expected files ending in {', '.join(IMAGE_EXTENSIONS)}")
    return ImageFiles(os.path.join(path, n) for n in names)


def open_source(spec):
    """Open ``spec``: a camera index (int or digit string), an image, a folder of images or a video."""
    if isinstance(spec, int) or (isinstance(spec, str) and spec.isascii() and spec.isdigit()):
        return open_camera(int(spec))
    path = os.fspath(spec)
    if not os.path.exists(path):
        raise FileNotFoundError(f"source not found: {path} (expected an image, a folder, a video or a camera index)")
    if os.path.isdir(path):
        return open_folder(path)
    if path.lower().endswith(IMAGE_EXTENSIONS):
        return ImageFiles([path])
    return open_video(path)
