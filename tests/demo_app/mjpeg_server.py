"""A small MJPEG-over-HTTP server for the live-source tests: ``python mjpeg_server.py PORT [FPS]``.

Serves ``/stream`` as ``multipart/x-mixed-replace`` JPEG frames (the format of IP cameras and
``mjpg-streamer``) with a frame counter drawn in each frame, as text and as 16 binary cells
along the top row that ``read_counter`` decodes. Prints ``ready PORT`` once listening.
"""
import http.server
import socketserver
import sys
import time

import cv2
import numpy as np

WIDTH, HEIGHT, CELL = 160, 120, 10
BOUNDARY = "frame"


def draw_frame(counter):
    """A 160x120 BGR frame showing ``counter`` as text and as white (1) / black (0) cells, MSB first."""
    frame = np.full((HEIGHT, WIDTH, 3), 64, np.uint8)
    for bit in range(16):
        if counter >> (15 - bit) & 1:
            frame[:CELL, bit * CELL:(bit + 1) * CELL] = 255
        else:
            frame[:CELL, bit * CELL:(bit + 1) * CELL] = 0
    cv2.putText(frame, str(counter), (10, 80), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (0, 255, 255), 2)
    return frame


def read_counter(frame):
    """The counter drawn by ``draw_frame`` (works on RGB or BGR frames after JPEG)."""
    cells = frame[2:CELL - 2, :16 * CELL].mean(axis=(0, 2)).reshape(16, CELL)[:, 2:-2].mean(axis=1)
    return int("".join("1" if c > 128 else "0" for c in cells), 2)


class StreamHandler(http.server.BaseHTTPRequestHandler):
    fps = 30.0

    def do_GET(self):
        if self.path != "/stream":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.end_headers()
        counter = 0
        try:
            while True:
                jpeg = cv2.imencode(".jpg", draw_frame(counter), [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
                self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                                 f"Content-Length: {len(jpeg)}\r\n\r\n".encode() + jpeg + b"\r\n")
                self.wfile.flush()
                counter = (counter + 1) % 65536
                time.sleep(1.0 / self.fps)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    allow_reuse_address = True
    daemon_threads = True


if __name__ == "__main__":
    StreamHandler.fps = float(sys.argv[2]) if len(sys.argv) > 2 else 30.0
    server = Server(("127.0.0.1", int(sys.argv[1])), StreamHandler)
    print(f"ready {server.server_address[1]}", flush=True)
    server.serve_forever()
