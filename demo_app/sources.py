"""Frame sources: images, folders, glob patterns, video files, cameras, Pi cameras and network streams.

``open_source(spec)`` returns an iterable of ``(name, frame)`` with ``frame`` an ``HxWx3``
uint8 RGB array, and a ``close()``. Attributes the loop reads: ``is_stream`` (frames come from a
video, camera or stream rather than image files), ``is_live`` (a camera or stream, read on a
capture thread, rather than files read in turn), ``fps`` (the source's rate, or None) and
``frame_age_ms`` (for live sources, how old the frame last returned is now; None otherwise).
Image files and video files are read in order, every frame. Live sources (cameras, picam,
rtsp/http streams) are read on a capture thread that keeps only the newest frame and reopens a
lost source (``demo_app.capture_thread.LatestFrame``). Problems with the source (missing,
unreadable, no camera) raise one-line ``FileNotFoundError``/``ValueError`` when it is opened,
or, for an undecodable image in a folder or a lost live source, when that point is reached.
"""
import contextlib
import glob
import os
import re
import urllib.parse

import cv2
import numpy as np

from demo_app.capture_thread import LatestFrame
from demo_app.picam import PicamReader

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
STREAM_SCHEMES = ("rtsp://", "http://", "https://")
VIDEO_DEVICE = re.compile(r"/dev/(video\d+|v4l/.+)")
STREAM_TIMEOUT_MS = 5000  # FFmpeg open/read timeout: a dead stream fails a read instead of blocking
FFMPEG_LOG_QUIET = "-8"  # AV_LOG_QUIET


def quiet_ffmpeg_log():
    """Keep FFmpeg's own log lines off stderr, for the whole process.

    OpenCV's FFmpeg backend leaves FFmpeg's log at AV_LOG_ERROR on FFmpeg's default callback,
    which writes straight to stderr: a dropped stream prints ``[http @ 0x...] Stream ends
    prematurely ...`` and each reconnect attempt ``[tcp @ 0x...] Connection to tcp://... failed:
    Connection refused``, before the demo's one-line error. OpenCV reads
    ``OPENCV_FFMPEG_LOGLEVEL`` once, when it first uses FFmpeg, so this must run before the
    first FFmpeg capture or writer is opened. A user who set ``OPENCV_FFMPEG_LOGLEVEL`` or
    ``OPENCV_FFMPEG_DEBUG`` (to see FFmpeg's messages) keeps that setting.
    """
    if "OPENCV_FFMPEG_LOGLEVEL" not in os.environ and "OPENCV_FFMPEG_DEBUG" not in os.environ:
        os.environ["OPENCV_FFMPEG_LOGLEVEL"] = FFMPEG_LOG_QUIET


@contextlib.contextmanager
def opencv_quiet():
    """Silence OpenCV's own log lines (e.g. V4L2 warnings) while opening a capture, and FFmpeg's
    from now on (``quiet_ffmpeg_log``)."""
    quiet_ffmpeg_log()
    old = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(old)


def read_image(path):
    """Decode the image file at ``path`` into an RGB uint8 ``HxWx3`` array."""
    data = np.fromfile(path, dtype=np.uint8)  # unlike cv2.imread, fine with non-ASCII paths
    try:
        bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    except cv2.error as error:  # e.g. a header claiming more pixels than OpenCV decodes
        raise ValueError(f"cannot decode image {path}: OpenCV refused it ({getattr(error, 'err', error)}); expected "
                         f"an image of at most 2^30 pixels") from None
    if bgr is None:
        reason = "the file is empty" if not data.size else "not a readable image"
        raise ValueError(f"cannot decode image {path}: {reason} (expected {', '.join(IMAGE_EXTENSIONS)})")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def bgr_to_rgb(bgr):
    """An OpenCV frame (BGR, or grey from some cameras) as RGB."""
    return cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB if bgr.ndim == 2 else cv2.COLOR_BGR2RGB)


class ImageFiles:
    """One image or a list of images, decoded as they are reached."""

    is_stream = is_live = False
    fps = frame_age_ms = None

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
    """Every frame of a video file through ``cv2.VideoCapture``, in order; released when done."""

    is_stream, is_live = True, False
    frame_age_ms = None

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
                yield f"{self.name}[{index}]", bgr_to_rgb(bgr)
                index += 1
        finally:
            self.close()

    def close(self):
        self.capture.release()


class OpenCVReader:
    """A live ``cv2.VideoCapture`` (camera or network stream) as a reader for ``LatestFrame``.

    ``open_capture()`` returns an opened capture or raises a one-line ValueError; it is called
    again to reopen the source after a failed read.
    """

    def __init__(self, open_capture):
        self.open_capture = open_capture
        self.capture = open_capture()
        fps = self.capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and 0 < fps < 1000 else None

    def read(self):
        ok, bgr = self.capture.read()
        return bgr_to_rgb(bgr) if ok else None

    def reopen(self):
        self.capture.release()
        try:
            self.capture = self.open_capture()
        except ValueError:
            return False
        return True

    def close(self):
        self.capture.release()


def open_camera(device, camera_size=None, camera_fps=None, reconnect_seconds=10.0):
    """The camera at OpenCV index ``device`` (int) or V4L2 path ``device`` (``/dev/video0``).

    ``camera_size=(width, height)`` and ``camera_fps`` are requested through
    ``CAP_PROP_FRAME_WIDTH``/``CAP_PROP_FRAME_HEIGHT``/``CAP_PROP_FPS`` (OpenCV ``VideoCapture::set``;
    the driver picks the nearest mode it has).
    """
    where = "index" if isinstance(device, int) else "path"
    hint = f" (e.g. /dev/video{device})" if isinstance(device, int) else ""

    def open_capture():
        with opencv_quiet():
            capture = cv2.VideoCapture(device) if isinstance(device, int) else cv2.VideoCapture(device, cv2.CAP_V4L2)
        if not capture.isOpened():
            capture.release()
            raise ValueError(f"camera {device} could not be opened: expected a connected camera at that {where}{hint}")
        if camera_size:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, int(camera_size[0]))
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, int(camera_size[1]))
        if camera_fps:
            capture.set(cv2.CAP_PROP_FPS, float(camera_fps))
        return capture

    name = f"camera{device}" if isinstance(device, int) else device
    return LatestFrame(OpenCVReader(open_capture), name, reconnect_seconds)


def open_stream(url, reconnect_seconds=10.0):
    """An ``rtsp://``/``http(s)://`` stream through OpenCV's FFmpeg backend (``cv2.CAP_FFMPEG``).

    FFmpeg picks the demuxer: RTSP (H.264/H.265), HTTP MJPEG (``multipart/x-mixed-replace``, the
    mpjpeg demuxer), HLS, ... Open and read time out after ``STREAM_TIMEOUT_MS``
    (``CAP_PROP_OPEN_TIMEOUT_MSEC``/``CAP_PROP_READ_TIMEOUT_MSEC``). FFmpeg options such as
    ``rtsp_transport;tcp`` go in the ``OPENCV_FFMPEG_CAPTURE_OPTIONS`` environment variable.
    """
    parts = urllib.parse.urlsplit(url)
    name = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()  # no password in logs

    def open_capture():
        with opencv_quiet():
            capture = cv2.VideoCapture(url, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, STREAM_TIMEOUT_MS,
                                                             cv2.CAP_PROP_READ_TIMEOUT_MSEC, STREAM_TIMEOUT_MS])
        if not capture.isOpened():
            capture.release()
            raise ValueError(f"cannot open stream {name}: OpenCV's FFmpeg backend could not connect or decode it "
                             f"(expected a reachable rtsp:// or http(s):// video stream, e.g. H.264 or MJPEG)")
        return capture

    return LatestFrame(OpenCVReader(open_capture), name, reconnect_seconds)


def open_picam(index, camera_size=None, camera_fps=None, reconnect_seconds=10.0):
    """Raspberry Pi camera ``index`` through picamera2 (``demo_app.picam``); frames are its ``main`` stream."""
    reader = PicamReader(index, size=camera_size or (640, 480), fps=camera_fps)
    return LatestFrame(reader, f"picam{index}", reconnect_seconds)


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
    """The images in folder ``path``, sorted by file name (hidden files, such as a killed run's temporary
    files, left out)."""
    names = sorted(n for n in os.listdir(path) if n.lower().endswith(IMAGE_EXTENSIONS) and not n.startswith("."))
    if not names:
        raise ValueError(f"no images in folder {path}: expected files ending in {', '.join(IMAGE_EXTENSIONS)}")
    return ImageFiles(os.path.join(path, n) for n in names)


def open_glob(pattern):
    """The images matching glob ``pattern`` (e.g. ``photos/*.jpg``), sorted by path."""
    paths = sorted(p for p in glob.glob(pattern) if p.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(p))
    if not paths:
        raise ValueError(f"no images match {pattern}: expected a pattern matching files ending in "
                         f"{', '.join(IMAGE_EXTENSIONS)}")
    return ImageFiles(paths)


def open_source(spec, camera_size=None, camera_fps=None, reconnect_seconds=10.0):
    """Open ``spec``: a camera index (int or digit string) or V4L2 path (``/dev/video0``), ``picam``/``picam:N``,
    an ``rtsp://``/``http://``/``https://`` URL, an image, a folder of images, a glob pattern or a video file.

    ``camera_size=(width, height)`` and ``camera_fps`` apply to cameras and picam. A live source
    that stops delivering is reopened with backoff; after ``reconnect_seconds`` without a frame
    its iteration raises ``SourceLost("lost source ...")``, a ``ValueError``.
    """
    if isinstance(spec, int) or (isinstance(spec, str) and spec.isascii() and spec.isdigit()):
        return open_camera(int(spec), camera_size, camera_fps, reconnect_seconds)
    path = os.fspath(spec)
    if path.lower().startswith(STREAM_SCHEMES):
        return open_stream(path, reconnect_seconds)
    picam = re.fullmatch(r"picam(?::(\d+))?", path)
    if picam:
        return open_picam(int(picam.group(1) or 0), camera_size, camera_fps, reconnect_seconds)
    if VIDEO_DEVICE.fullmatch(path):
        return open_camera(path, camera_size, camera_fps, reconnect_seconds)
    if not os.path.exists(path) and any(c in path for c in "*?["):
        return open_glob(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"source not found: {path} (expected an image, a folder, a glob pattern, a video, "
                                f"a camera index or /dev/videoN, picam[:N] or an rtsp/http(s) URL)")
    if os.path.isdir(path):
        return open_folder(path)
    if path.lower().endswith(IMAGE_EXTENSIONS):
        return ImageFiles([path])
    return open_video(path)
