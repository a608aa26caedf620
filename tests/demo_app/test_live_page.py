"""The live page: --serve parsing, routes, MJPEG stream, viewer limits, a stuck viewer, a real browser."""
import http.client
import json
import re
import shutil
import socket
import subprocess
import threading
import time

import cv2
import numpy as np
import pytest

from demo_app import live_page
from demo_app.live_page import BOUNDARY, MAX_STREAM_FPS, LivePage, parse_serve
from demo_app.overlay import draw_overlay, overlay_lines


@pytest.fixture
def page():
    live = LivePage("127.0.0.1", 0).start()
    yield live
    live.close()


def solid(rgb, shape=(48, 64)):
    return np.full(shape + (3,), rgb, np.uint8)


def noisy(seed, shape=(240, 320)):
    """A frame that compresses badly (tens of KB as JPEG), so socket buffers fill after a few."""
    return np.random.default_rng(seed).integers(0, 256, shape + (3,), np.uint8)


def request(live, path, method="GET"):
    conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=5)
    conn.request(method, path)
    response = conn.getresponse()
    return response.status, response.getheader("Content-Type"), response.read()


def open_stream(live, receive_buffer=None):
    conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=5)
    if receive_buffer:
        conn.sock = socket.socket()
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        conn.sock.settimeout(5)
        conn.sock.connect(("127.0.0.1", live.port))
    conn.request("GET", "/stream")
    return conn, conn.getresponse()


def close_stream(conn, response):
    response.close()  # the response holds the socket
    conn.close()


def next_part(response):
    """The next MJPEG part's image (RGB), or None at the end of the stream."""
    line = response.fp.readline()
    if not line:
        return None
    assert line.strip() == f"--{BOUNDARY}".encode()
    headers = {}
    while (line := response.fp.readline().strip()):
        key, _, value = line.decode().partition(":")
        headers[key.lower()] = value.strip()
    assert headers["content-type"] == "image/jpeg"
    jpeg = response.fp.read(int(headers["content-length"]))
    assert response.fp.read(2) == b"\r\n"
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


@pytest.mark.parametrize("text, expected", [
    ("8080", ("127.0.0.1", 8080)),
    ("0.0.0.0:8080", ("0.0.0.0", 8080)),
    ("localhost:1", ("localhost", 1)),
    ("[::1]:65535", ("::1", 65535)),
    ("0", ("127.0.0.1", 0)),
])
def test_parse_serve(text, expected):
    assert parse_serve(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "65536", "-1", "host:", ":80", "a:b:80", "[::1]80", "[zz]:80",
                                  "8080.0", "1:2:3", "\u00b2"])
def test_parse_serve_rejects(text):
    with pytest.raises(ValueError, match=r"^--serve: expected .*0\.\.65535") as info:
        parse_serve(text)
    assert "\n" not in str(info.value)


def test_port_in_use_names_the_address(page):
    with pytest.raises(OSError, match=f"127.0.0.1:{page.port}") as info:
        LivePage("127.0.0.1", page.port).start()
    assert "\n" not in str(info.value)


def test_page_is_inline_html(page):
    status, content_type, body = request(page, "/")
    assert (status, content_type) == (200, "text/html; charset=utf-8")
    assert b'<img id="frame" src="/stream"' in body and b'fetch("/stats"' in body
    assert not re.search(rb"(src|href)=\"?https?:", body)
    assert page.url == f"http://127.0.0.1:{page.port}/"


@pytest.mark.parametrize("method, path", [
    ("GET", "/etc/passwd"), ("GET", "/../x"), ("GET", "/stream/x"), ("GET", "/stats/"), ("GET", "/index.html"),
    ("GET", "/demo_app/live_page.py"), ("POST", "/"), ("PUT", "/stats"), ("DELETE", "/stream"), ("BREW", "/"),
])
def test_other_paths_and_methods_are_404(page, method, path):
    assert request(page, path, method)[0] == 404


def test_stats_follow_the_latest_publish(page):
    status, content_type, body = request(page, "/stats")
    assert (status, content_type) == (200, "application/json")
    assert json.loads(body) == {"frames": 0, "viewers": 0, "age_ms": None}
    page.publish(solid((1, 2, 3)), {"fps": 9.5, "latency_ms": np.float32(4.25), "top": [["cat", 0.75]]})
    first = json.loads(request(page, "/stats")[2])
    assert first["fps"] == 9.5 and first["latency_ms"] == 4.25 and first["top"] == [["cat", 0.75]]
    assert first["frames"] == 1 and first["age_ms"] >= 0
    page.publish(solid((1, 2, 3)), {"fps": 11.0, "latency_ms": 3.0, "top": [["dog", 0.5]]})
    second = json.loads(request(page, "/stats")[2])
    assert (second["fps"], second["top"], second["frames"]) == (11.0, [["dog", 0.5]], 2)


def test_stream_sends_each_newer_frame(page):
    conn, response = open_stream(page)
    assert response.status == 200
    assert response.getheader("Content-Type") == f"multipart/x-mixed-replace; boundary={BOUNDARY}"
    for colour in [(10, 200, 30), (220, 40, 180)]:
        page.publish(solid(colour), {})
        image = next_part(response)
        assert image.shape == (48, 64, 3)
        np.testing.assert_allclose(image.reshape(-1, 3).mean(0), colour, atol=4)
    close_stream(conn, response)


def test_slow_viewer_skips_to_the_latest_frame(page):
    conn, response = open_stream(page, receive_buffer=16 * 1024)
    count = 40
    for i in range(count):  # the viewer reads nothing meanwhile: its socket buffers fill up
        frame = noisy(i)
        frame[:16, :16] = 6 * i
        page.publish(frame, {})
    received, marker = 0, None
    while marker != 6 * (count - 1):
        image = next_part(response)
        received += 1
        marker = round(float(image[4:12, 4:12].mean()))
        assert received < count
    close_stream(conn, response)


def test_viewer_limit(page):
    page.publish(solid((0, 0, 255)), {})
    viewers = [open_stream(page) for _ in range(page.max_viewers)]
    for _, response in viewers:
        assert response.status == 200 and next_part(response).shape == (48, 64, 3)
    assert request(page, "/stream") == (503, "text/plain; charset=utf-8", b"too many viewers\n")
    assert json.loads(request(page, "/stats")[2])["viewers"] == page.max_viewers
    close_stream(*viewers.pop())
    deadline = time.monotonic() + 10
    while json.loads(request(page, "/stats")[2])["viewers"] == page.max_viewers:  # found on its next write
        assert time.monotonic() < deadline
        page.publish(solid((0, 0, 255)), {})
        time.sleep(0.05)
    conn, response = open_stream(page)
    assert response.status == 200
    for stream in viewers + [(conn, response)]:
        close_stream(*stream)


def test_frames_are_encoded_once_and_only_when_viewed(page, monkeypatch):
    encoded = []
    real_imencode = cv2.imencode
    monkeypatch.setattr(live_page.cv2, "imencode", lambda *a: encoded.append(1) or real_imencode(*a))
    for i in range(50):
        page.publish(solid((i, 0, 0)), {})
    assert not encoded  # nobody watching: the loop pays nothing for the page
    viewers = [open_stream(page) for _ in range(3)]
    for _, response in viewers:
        np.testing.assert_allclose(next_part(response).reshape(-1, 3).mean(0), (49, 0, 0), atol=4)
    assert len(encoded) == 1  # one JPEG of the latest frame, shared by the three viewers
    for stream in viewers:
        close_stream(*stream)


def test_a_viewer_gets_at_most_max_stream_fps(page):
    stop = threading.Event()

    def publish_fast():
        i = 0
        while not stop.is_set():
            page.publish(solid((i % 256, 0, 0)), {})
            i += 1
            time.sleep(0.001)

    publisher = threading.Thread(target=publish_fast, daemon=True)
    publisher.start()
    conn, response = open_stream(page)
    try:
        next_part(response)
        start, parts = time.monotonic(), 0
        while time.monotonic() - start < 1.0:
            next_part(response)
            parts += 1
    finally:
        stop.set()
        publisher.join()
        close_stream(conn, response)
    assert parts <= MAX_STREAM_FPS * (time.monotonic() - start) + 1, parts


@pytest.mark.parametrize("frame", [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 3), np.float32),
                                   np.zeros((0, 4, 3), np.uint8), [[1, 2, 3]]])
def test_publish_rejects_what_is_not_an_rgb_frame(page, frame):
    with pytest.raises(ValueError, match="^cannot publish a frame of shape .*: expected HxWx3 uint8 RGB$"):
        page.publish(frame, {})


def _publish_times(live, n=200):
    times = []
    for i in range(n):
        frame = noisy(i % 8)
        start = time.perf_counter()
        live.publish(frame, {"fps": float(i)})
        times.append(time.perf_counter() - start)
    return np.array(times)


def test_stuck_viewer_does_not_block_publish(page):
    alone = _publish_times(page)
    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.connect(("127.0.0.1", page.port))
    stuck.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")  # and never reads
    deadline = time.monotonic() + 5
    while json.loads(request(page, "/stats")[2])["viewers"] != 1:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    with_stuck = _publish_times(page)
    assert alone.max() < 0.05 and with_stuck.max() < 0.05, (alone.max(), with_stuck.max())
    start = time.perf_counter()
    page.close()  # also cuts the viewer's blocked write
    assert time.perf_counter() - start < 3
    stuck.close()


def test_close_ends_open_streams():
    live = LivePage("127.0.0.1", 0).start()
    live.publish(solid((50, 60, 70)), {})
    streams = [open_stream(live) for _ in range(3)]
    for _, response in streams:
        next_part(response)
    start = time.perf_counter()
    live.close()
    assert time.perf_counter() - start < 3
    for conn, response in streams:
        assert next_part(response) is None
        close_stream(conn, response)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", live.port), timeout=1)
    live.close()


MAGENTA = (255, 0, 255)


def _chromium(tmp_path, *args):
    result = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", "--window-size=800,600", "--virtual-time-budget=3000",
         *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.e2e
def test_browser_shows_frames_and_stats(tmp_path):
    if not shutil.which("chromium"):
        pytest.skip("chromium is not installed (make browser-deps)")
    live, stop = LivePage("127.0.0.1", 0).start(), threading.Event()

    def loop():
        i = 0
        while not stop.is_set():
            frame = solid((20, 20, 20), (240, 320))
            frame[60:200, 40 + i % 40:240 + i % 40] = MAGENTA
            fps = 20.0 + (i % 10) / 7
            annotated = draw_overlay(frame, overlay_lines([("cat", 0.875), ("dog", 0.125)], fps, 4.5))
            live.publish(annotated, {"fps": fps, "latency_ms": 4.5, "top": [["cat", 0.875], ["dog", 0.125]]})
            i += 1
            time.sleep(0.03)

    publisher = threading.Thread(target=loop, daemon=True)
    publisher.start()
    try:
        screenshot = tmp_path / "page.png"
        _chromium(tmp_path, f"--screenshot={screenshot}", live.url)
        pixels = cv2.cvtColor(cv2.imread(str(screenshot)), cv2.COLOR_BGR2RGB).astype(int)
        magenta = np.abs(pixels - MAGENTA).max(-1) <= 24
        assert magenta.sum() > 0.5 * 140 * 200, magenta.sum()  # the block, at least half of it
        ys, xs = np.nonzero(magenta)
        assert xs.max() < 400 and ys.max() < 300  # inside the image at the top left
        dom = _chromium(tmp_path, "--dump-dom", live.url)
        stats = re.search(r'<pre id="stats">(.*?)</pre>', dom, re.S).group(1)
        assert re.search(r"^fps: 2\d(\.\d\d)?$", stats, re.M), stats  # 20.0 is shown as 20
        assert "latency_ms: 4.50" in stats and "cat 0.88" in stats and re.search(r"^frames: [1-9]\d*$", stats, re.M)
    finally:
        stop.set()
        publisher.join()
        live.close()
