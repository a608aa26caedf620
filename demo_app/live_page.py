"""A live page for headless boards: the demo's annotated frames and figures in a browser.

Routes (nothing else; every other path and method is 404, and no file is ever served):

- ``GET /``: one small inline HTML page: ``<img src="/stream">`` and a text block that
  fetches ``/stats`` every 500 ms.
- ``GET /stream``: MJPEG (``multipart/x-mixed-replace``), one JPEG part per published frame.
  More than ``max_viewers`` concurrent streams get 503.
- ``GET /stats``: JSON of the latest published stats plus ``frames`` (published so far),
  ``viewers`` (open streams) and ``age_ms`` (age of the latest frame).

Threading: ``http.server.ThreadingHTTPServer`` serves on a daemon thread, one daemon thread per
request. The demo loop calls ``publish``, which swaps in a reference to the frame under a
condition variable; it never encodes and never waits on a viewer. Each stream thread waits on
the condition for a frame newer than the one it sent, has it JPEG-encoded (once per frame,
shared by all viewers; OpenCV releases the GIL while it encodes), and writes it outside the
lock, so a slow viewer skips frames and stalls neither the loop nor other viewers. A viewer is
sent at most ``MAX_STREAM_FPS`` frames a second: a browser shows no more, and a fast loop
(hundreds of FPS) would otherwise spend its time serving. ``close`` wakes and disconnects the
streams, stops the server and joins its threads.

Only the standard library serves the page: a board has just the device install (numpy, OpenCV,
Pillow, ai-edge-litert), so no web framework is assumed to be there.
"""
import http.server
import ipaddress
import json
import socket
import socketserver
import sys
import threading
import time
from urllib.parse import urlsplit

import cv2
import numpy as np

BOUNDARY = "liveframe"
_SEND_BUFFER = 256 * 1024  # per viewer: bounds how far behind a slow viewer's picture gets
_RESEND_S = 1.0  # a viewer with no newer frame gets the latest one again (finds dead clients)
MAX_STREAM_FPS = 30.0
_PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>Live demo</title>
<style>body{margin:0;background:#111;color:#eee;font:14px monospace;display:flex;gap:12px;padding:12px}
img{max-width:75vw;max-height:95vh}pre{margin:0}</style></head>
<body><img id="frame" src="/stream" alt="live frames"><pre id="stats">waiting for frames</pre>
<script>
const out = document.getElementById("stats");
const num = v => typeof v !== "number" ? String(v) : Number.isInteger(v) ? String(v) : v.toFixed(2);
const row = x => "\\n  " + (Array.isArray(x) ? x.map(num).join(" ") : num(x));
const fmt = v => Array.isArray(v) ? v.map(row).join("") : num(v);
async function tick() {
  try {
    const s = await (await fetch("/stats", {cache: "no-store"})).json();
    out.textContent = Object.entries(s).map(([k, v]) => k + ": " + fmt(v)).join("\\n");
  } catch (e) { out.textContent = "no connection to the demo"; }
}
tick(); setInterval(tick, 500);
</script></body></html>
"""


def parse_serve(text):
    """``--serve`` value ``PORT``, ``HOST:PORT`` or ``[IPv6]:PORT`` -> ``(host, port)``.

    A bare port binds to 127.0.0.1 (this machine only); ``0.0.0.0:PORT`` exposes the page on
    purpose. Port 0 picks any free port.
    """
    expected = f"--serve: expected PORT, HOST:PORT or [IPv6]:PORT with a port in 0..65535, got {text!r}"
    host, sep, port = str(text).strip().rpartition(":")
    if not sep:
        host = "127.0.0.1"
    elif host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(expected) from None
    elif not host or ":" in host:
        raise ValueError(expected)
    if not (port.isascii() and port.isdigit()) or int(port) > 65535:
        raise ValueError(expected)
    return host, int(port)


class _Server(http.server.ThreadingHTTPServer):
    def __init__(self, address, handler, page):
        self.page = page
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, handler)

    def server_bind(self):
        socketserver.TCPServer.server_bind(self)  # skips HTTPServer's reverse DNS lookup
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], OSError):  # a viewer that went away is no error
            super().handle_error(request, client_address)


class _Handler(http.server.BaseHTTPRequestHandler):
    timeout = 10  # seconds a request may take to arrive and a frame to be taken
    server_version = "LivePage"

    def do_GET(self):
        route = {"/": self._page, "/stream": self._stream, "/stats": self._stats}
        route.get(urlsplit(self.path).path, self._not_found)()

    def __getattr__(self, name):
        if name.startswith("do_"):  # every other method: 404, as for any unknown path
            return self._not_found
        raise AttributeError(name)

    def log_message(self, format, *args):
        pass

    def _send(self, status, content_type, body):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _not_found(self):
        self._send(404, "text/plain; charset=utf-8", b"not found\n")

    def _page(self):
        self._send(200, "text/html; charset=utf-8", _PAGE)

    def _stats(self):
        self._send(200, "application/json", self.server.page.stats_json().encode())

    def _stream(self):
        page = self.server.page
        if not page._add_viewer(self.connection):
            self._send(503, "text/plain; charset=utf-8", b"too many viewers\n")
            return
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SEND_BUFFER)
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            seen, sent = 0, 0.0
            while True:
                time.sleep(max(0.0, sent + 1.0 / MAX_STREAM_FPS - time.monotonic()))
                jpeg, seen = page._next_frame(seen)
                if jpeg is None:
                    return
                self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                                 f"Content-Length: {len(jpeg)}\r\n\r\n".encode() + jpeg + b"\r\n")
                sent = time.monotonic()
        except OSError:  # the viewer went away (broken pipe, reset, timeout) or close() cut it
            self.close_connection = True
        finally:
            page._remove_viewer(self.connection)


class LivePage:
    """Serves the latest published frame and stats over HTTP (see the module docstring).

    Args:
        host: address to listen on; ``127.0.0.1`` keeps the page on this machine.
        port: TCP port; 0 picks a free one (see ``url``).
        max_viewers: most concurrent ``/stream`` viewers; more get 503.
        quality: JPEG quality, 1..100.
    """

    def __init__(self, host, port, max_viewers=8, quality=80):
        if int(max_viewers) < 1:
            raise ValueError(f"max_viewers must be at least 1, got {max_viewers}")
        if not 1 <= int(quality) <= 100:
            raise ValueError(f"quality must be in 1..100, got {quality}")
        self.host, self.port = host, int(port)
        self.max_viewers, self.quality = int(max_viewers), int(quality)
        self._cond = threading.Condition()
        self._frame, self._stats, self._frames, self._published = None, {}, 0, None
        self._encoded = (0, None)  # (frame number, JPEG bytes) of the last frame encoded
        self._encoding = threading.Lock()
        self._viewers, self._closed = set(), False
        self._server = self._thread = None

    def start(self):
        """Listen and serve on a daemon thread; returns ``self``."""
        try:
            self._server = _Server((self.host, self.port), _Handler, self)
        except (OSError, OverflowError) as e:
            raise OSError(f"cannot serve the live page on {self._address}: "
                          f"{getattr(e, 'strerror', None) or e}") from None
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.1,),
                                        name="live-page", daemon=True)
        self._thread.start()
        return self

    @property
    def url(self):
        """``http://host:port/`` with the port actually bound."""
        return f"http://{self._address}/"

    @property
    def _address(self):
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def publish(self, rgb_frame, stats):
        """Make ``rgb_frame`` (HxWx3 uint8 RGB) and ``stats`` (JSON-able dict) the latest.

        Keeps a reference to the frame (the caller must not change it afterwards) and wakes the
        viewers; never encodes, never waits on them. The demo loop's stats are shown as they
        are, e.g. ``{"fps": 14.2, "latency_ms": 6.1, "top": [["cat", 0.91], ["dog", 0.04]]}``.
        """
        shape, dtype = getattr(rgb_frame, "shape", None), getattr(rgb_frame, "dtype", None)
        if dtype != np.uint8 or len(shape) != 3 or shape[2] != 3 or not shape[0] or not shape[1]:
            raise ValueError(f"cannot publish a frame of shape {shape} and dtype {dtype}: expected HxWx3 uint8 RGB")
        with self._cond:
            self._frame, self._stats = rgb_frame, dict(stats)
            self._frames += 1
            self._published = time.monotonic()
            self._cond.notify_all()

    def stats_json(self):
        """The ``/stats`` body: the latest stats plus ``frames``, ``viewers`` and ``age_ms``."""
        with self._cond:
            stats, frames, viewers, published = self._stats, self._frames, len(self._viewers), self._published
        age_ms = None if published is None else round((time.monotonic() - published) * 1000.0, 1)
        return json.dumps({**stats, "frames": frames, "viewers": viewers, "age_ms": age_ms},
                          default=lambda o: o.item() if hasattr(o, "item") else str(o))

    def close(self):
        """End the streams, stop the server and join its threads (safe to call twice)."""
        with self._cond:
            self._closed = True
            viewers = list(self._viewers)
            self._cond.notify_all()
        for connection in viewers:  # unblocks a write stuck on a viewer that stopped reading
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    def _add_viewer(self, connection):
        with self._cond:
            if self._closed or len(self._viewers) >= self.max_viewers:
                return False
            self._viewers.add(connection)
            return True

    def _remove_viewer(self, connection):
        with self._cond:
            self._viewers.discard(connection)

    def _next_frame(self, seen):
        """Wait for a frame newer than number ``seen``: ``(jpeg, number)``, ``(None, seen)`` once closed.

        After ``_RESEND_S`` without a newer frame the latest is sent again, so a viewer that went
        away is found even while the demo is paused.
        """
        with self._cond:
            while True:
                newer = self._cond.wait_for(lambda: self._closed or self._frames > seen, timeout=_RESEND_S)
                if self._closed:
                    return None, seen
                if newer or self._frame is not None:
                    number, frame = self._frames, self._frame
                    break
        return self._jpeg(number, frame), number

    def _jpeg(self, number, frame):
        """The JPEG bytes of published frame ``number``, encoded by the first viewer that asks."""
        with self._encoding:
            if self._encoded[0] != number:
                _, jpeg = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                                        [cv2.IMWRITE_JPEG_QUALITY, self.quality])
                self._encoded = (number, jpeg.tobytes())
            return self._encoded[1]
