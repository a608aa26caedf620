"""Live sources: picam (through a stand-in picamera2), glob patterns, camera errors, an MJPEG
network stream served by a second process, and the capture thread's newest-frame and reconnect logic."""
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import numpy as np
import pytest
from demo_helpers import write_rgb
from mjpeg_server import read_counter

from demo_app import capture_thread
from demo_app.capture_thread import LatestFrame
from demo_app.sources import open_source

SERVER = Path(__file__).with_name("mjpeg_server.py")
BGR = (10, 20, 200)  # what the stand-in camera's "RGB888" main stream holds, B first


def _one_line_error(exc_type, call):
    with pytest.raises(exc_type) as info:
        call()
    message = str(info.value)
    assert message and "\n" not in message
    return message


# picamera2 through a stand-in module ------------------------------------------------------------

class StandInPicamera2:
    """Stand-in for picamera2.Picamera2: the calls demo_app.picam makes, recorded; frames are BGR."""

    cameras = []  # every instance, newest last
    fail_reads = 0  # capture_array raises this many times (shared), as a camera that went away does

    def __init__(self, camera_num=0):
        self.camera_num, self.calls, self.config = camera_num, [], None
        StandInPicamera2.cameras.append(self)

    def create_preview_configuration(self, main=None, lores=None, controls=None):
        return {"main": main, "lores": lores, "controls": controls}

    def configure(self, config):
        self.config = config

    def start(self):
        self.calls.append("start")

    def capture_array(self, name="main"):
        time.sleep(0.005)
        if StandInPicamera2.fail_reads:
            StandInPicamera2.fail_reads -= 1
            raise RuntimeError("camera frontend has timed out")
        width, height = self.config[name]["size"]
        return np.full((height, width, 3), BGR, np.uint8)

    def stop(self):
        self.calls.append("stop")

    def close(self):
        self.calls.append("close")


@pytest.fixture
def stand_in_picamera2(monkeypatch):
    module = types.ModuleType("picamera2")
    module.Picamera2 = StandInPicamera2
    monkeypatch.setitem(sys.modules, "picamera2", module)
    monkeypatch.setattr(StandInPicamera2, "cameras", [])
    monkeypatch.setattr(StandInPicamera2, "fail_reads", 0)
    return StandInPicamera2


def test_picam_configures_main_and_lores_and_gives_rgb(stand_in_picamera2):
    source = open_source("picam:1", camera_size=(64, 48), camera_fps=15)
    assert source.is_stream and source.fps == 15
    name, frame = next(iter(source))
    camera = stand_in_picamera2.cameras[-1]
    assert camera.camera_num == 1 and name.startswith("picam1[")
    assert camera.config == {"main": {"size": (64, 48), "format": "RGB888"},
                             "lores": {"size": (32, 24), "format": "YUV420"}, "controls": {"FrameRate": 15.0}}
    assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8
    assert tuple(frame[0, 0]) == BGR[::-1]  # R, G, B
    assert source.frame_age_ms is not None and 0 <= source.frame_age_ms < 1000
    source.close()
    assert camera.calls == ["start", "stop", "close"]


def test_picam_default_is_camera_0(stand_in_picamera2):
    source = open_source("picam")
    frame = next(iter(source))[1]
    source.close()
    assert stand_in_picamera2.cameras[-1].camera_num == 0 and frame.shape == (480, 640, 3)


def test_picam_reopens_after_failed_reads(stand_in_picamera2):
    source = open_source("picam", camera_size=(32, 24), reconnect_seconds=5)
    frames = iter(source)
    next(frames)
    stand_in_picamera2.fail_reads = 2  # the read fails, the first reopen's read fails too
    for _ in range(3):
        next(frames)
    source.close()
    assert len(stand_in_picamera2.cameras) == 3
    assert all(c.calls == ["start", "stop", "close"] for c in stand_in_picamera2.cameras)


def test_picam_errors(monkeypatch, stand_in_picamera2):
    def no_camera(camera_num=0):
        raise IndexError("list index out of range")  # what Picamera2(N) raises for a camera that is not there

    monkeypatch.setattr(sys.modules["picamera2"], "Picamera2", no_camera)
    assert _one_line_error(ValueError, lambda: open_source("picam:3")).startswith(
        "picam:3 could not be opened: list index out of range (expected a connected Raspberry Pi camera")
    monkeypatch.setitem(sys.modules, "picamera2", None)  # import fails as when not installed
    assert _one_line_error(ValueError, lambda: open_source("picam")) == (
        "source picam needs picamera2, which is not installed (on Raspberry Pi OS: sudo apt install python3-picamera2)")


# files and cameras --------------------------------------------------------------------------------

def test_glob_pattern_sorted_and_no_match(tmp_path):
    for name in ("b.png", "a.png", "c.jpg"):
        write_rgb(tmp_path / name, np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "notes.txt").write_text("x")
    source = open_source(str(tmp_path / "*"))
    assert not source.is_stream and source.frame_age_ms is None
    assert [name for name, _ in source] == ["a.png", "b.png", "c.jpg"]
    assert [name for name, _ in open_source(str(tmp_path / "*.png"))] == ["a.png", "b.png"]
    pattern = str(tmp_path / "*.bmp")
    assert _one_line_error(ValueError, lambda: open_source(pattern)).startswith(f"no images match {pattern}: expected")


@pytest.mark.parametrize("spec, message", [("/dev/video99", "camera /dev/video99 could not be opened: expected a "
                                                            "connected camera at that path"),
                                           (99, "camera 99 could not be opened: expected a connected camera at that "
                                                "index (e.g. /dev/video99)")])
def test_missing_camera_device(spec, message):
    assert _one_line_error(ValueError, lambda: open_source(spec, camera_size=(640, 480), camera_fps=30)) == message


# capture thread -----------------------------------------------------------------------------------

class CountingReader:
    """Frames carrying their read number, at about ``fps``; reads fail (None) while ``down`` is set."""

    def __init__(self, fps=100.0):
        self.fps, self.count, self.reopens, self.closed = fps, 0, 0, False
        self.down = threading.Event()

    def read(self):
        time.sleep(1.0 / self.fps)
        if self.down.is_set():
            return None
        self.count += 1
        return np.full((2, 2, 3), self.count % 256, np.uint8)

    def reopen(self):
        self.reopens += 1
        return not self.down.is_set()

    def close(self):
        self.closed = True


def test_latest_frame_skips_instead_of_queueing():
    reader = CountingReader(fps=200.0)
    source = LatestFrame(reader, "counter")
    frames = iter(source)
    indices = []
    for _ in range(4):
        name, _ = next(frames)
        indices.append(int(name[len("counter["):-1]))
        time.sleep(0.05)  # a slow loop: ~10 frames captured meanwhile
    assert indices == sorted(set(indices)) and min(np.diff(indices)) > 1
    source.close()
    assert reader.closed


def test_latest_frame_lost_source_ends_with_one_line_error():
    reader = CountingReader()
    source = LatestFrame(reader, "cam", reconnect_seconds=1.0)
    frames = iter(source)
    next(frames)
    reader.down.set()
    start = time.monotonic()
    message = _one_line_error(ValueError, lambda: [None for _ in frames])
    assert 0.9 < time.monotonic() - start < 2.0
    assert message.startswith("lost source cam: no frame for 1.") and "reopening failed" in message
    assert reader.reopens >= 1 and reader.closed


def test_latest_frame_read_that_never_returns(monkeypatch):
    monkeypatch.setattr(capture_thread, "STUCK_READ_SECONDS", 0.2)
    release = threading.Event()
    reader = CountingReader()
    reader.read = lambda: release.wait() and None
    source = LatestFrame(reader, "stuck", reconnect_seconds=0.3)
    try:
        assert _one_line_error(ValueError, lambda: next(iter(source))) == (
            "lost source stuck: no frame for 0.5 s (the read did not return; expected the camera or stream to come "
            "back within 0.3 s)")
    finally:
        release.set()


# a real MJPEG-over-HTTP stream from a second process ---------------------------------------------

def _start_server(port=0, fps=30):
    server = subprocess.Popen([sys.executable, str(SERVER), str(port), str(fps)], stdout=subprocess.PIPE, text=True)
    line = server.stdout.readline()
    assert line.startswith("ready "), line
    return server, int(line.split()[1])


@pytest.fixture
def mjpeg_server():
    servers = []

    def start(port=0):
        server, port = _start_server(port)
        servers.append(server)
        return server, port

    yield start
    for server in servers:
        server.kill()
        server.wait()


def test_http_mjpeg_stream_newest_frames_then_lost(mjpeg_server):
    server, port = mjpeg_server()
    url = f"http://127.0.0.1:{port}/stream"
    source = open_source(url, reconnect_seconds=2)
    assert source.is_stream
    frames = iter(source)
    counters, ages = [], []
    for _ in range(5):
        name, frame = next(frames)
        ages.append(source.frame_age_ms)
        counters.append(read_counter(frame))
        time.sleep(0.2)  # a slow loop: the 30 FPS server sends ~6 frames meanwhile
    assert name.startswith(f"{url}[") and frame.shape == (120, 160, 3)
    text = frame[40:100][frame[40:100, :, 0] > 200]  # the counter drawn in BGR yellow (0, 255, 255)
    assert len(text) > 50 and text[:, 1].mean() > 200 and text[:, 2].mean() < 80  # is RGB yellow
    assert counters == sorted(set(counters)) and min(np.diff(counters)) > 2, counters
    assert max(ages) < 200, ages  # the newest frame, not one queued seconds ago

    server.kill()
    server.wait()
    start = time.monotonic()
    message = _one_line_error(ValueError, lambda: [None for _ in frames])
    assert time.monotonic() - start < 2 + 1.5
    assert message.startswith(f"lost source {url}: no frame for 2.")


def test_stream_that_cannot_be_opened():
    assert _one_line_error(ValueError, lambda: open_source("rtsp://user:secret@127.0.0.1:1/live")).startswith(
        "cannot open stream rtsp://127.0.0.1:1/live: OpenCV's FFmpeg backend could not connect")


def test_http_mjpeg_stream_reconnects(mjpeg_server):
    server, port = mjpeg_server()
    source = open_source(f"http://127.0.0.1:{port}/stream", reconnect_seconds=8)
    frames = iter(source)
    for _ in range(10):
        before = read_counter(next(frames)[1])
    server.kill()
    server.wait()
    time.sleep(1.0)
    mjpeg_server(port)  # back on the same port within the window: its counter starts again at 0
    start = time.monotonic()
    after = [read_counter(next(frames)[1]) for _ in range(3)]
    source.close()
    assert before >= 9 and min(after) < before, (before, after)
    assert time.monotonic() - start < 5
