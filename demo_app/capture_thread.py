"""Read a live source on its own thread and hand the loop only the newest frame.

A camera or network stream produces frames at its own rate; if the loop is slower, frames
queue up in the driver's or FFmpeg's buffers and the picture lags further and further behind
(OpenCV ``VideoCapture.read`` returns the oldest buffered frame). ``LatestFrame`` reads
continuously, keeps only the newest frame with its capture time (``time.monotonic``), and gives
each new frame to the consumer once, so a slow loop skips frames instead of falling behind.
A read that fails (camera unplugged, stream dropped) reopens the source with exponential
backoff; when no frame arrives for ``reconnect_seconds`` iteration ends with a one-line
``SourceLost`` error.
"""
import threading
import time

FIRST_RETRY_SECONDS, MAX_RETRY_SECONDS = 0.5, 4.0
STUCK_READ_SECONDS = 10.0  # beyond reconnect_seconds before a read that never returns counts as lost


class SourceLost(ValueError):
    """A live source delivered no frame for its reconnect time: the loop keeps what it has written."""


class LatestFrame:
    """Iterable of ``(name, frame)`` from ``reader``, newest frame only; ``name`` is ``"<name>[<capture index>]"``.

    ``reader`` has ``read() -> frame or None`` (None: the read failed), ``reopen() -> bool``
    (True once the source is open again), ``close()`` and ``fps`` (float or None). Only the
    capture thread calls them. Attributes for the loop: ``is_stream`` and ``is_live`` (True), ``fps`` (the
    reader's), ``frame_time`` (``time.monotonic()`` when the frame last returned was captured)
    and ``frame_age_ms`` (how old that frame is now: read it when showing the frame to get the
    capture-to-display delay). Gaps in the capture indices are frames the loop was too slow for.
    """

    is_stream = is_live = True

    def __init__(self, reader, name, reconnect_seconds=10.0):
        self.reader, self.name, self.fps = reader, name, reader.fps
        self.reconnect_seconds = float(reconnect_seconds)
        self.frame_time = None
        self._condition = threading.Condition()
        self._newest = None  # (index, capture time, frame)
        self._error, self._done = None, False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._capture, name=f"capture {name}", daemon=True)
        self._thread.start()

    @property
    def frame_age_ms(self):
        return None if self.frame_time is None else 1000.0 * (time.monotonic() - self.frame_time)

    def _capture(self):
        index, last_frame = 0, time.monotonic()
        try:
            while not self._stop.is_set():
                frame = self.reader.read()
                if frame is None:
                    if self._reopen(last_frame):
                        continue
                    break
                last_frame = time.monotonic()
                with self._condition:
                    self._newest = (index, last_frame, frame)
                    self._condition.notify_all()
                index += 1
        finally:
            self.reader.close()
            with self._condition:
                self._done = True
                self._condition.notify_all()

    def _reopen(self, last_frame):
        """Reopen with backoff (0.5 s doubling to 4 s) until a reopen works, or set the lost-source error."""
        delay = FIRST_RETRY_SECONDS
        while True:
            remaining = last_frame + self.reconnect_seconds - time.monotonic()
            if remaining <= 0:
                self._error = self._lost(time.monotonic() - last_frame, "reopening failed")
                return False
            if self._stop.wait(min(delay, remaining)):
                return False
            if self.reader.reopen():
                return True
            delay = min(2 * delay, MAX_RETRY_SECONDS)

    def _lost(self, seconds, why):
        return SourceLost(f"lost source {self.name}: no frame for {seconds:.1f} s ({why}; expected the camera "
                          f"or stream to come back within {self.reconnect_seconds:g} s)")

    def __iter__(self):
        taken = -1
        try:
            while True:
                with self._condition:
                    fresh = lambda: self._done or (self._newest is not None and self._newest[0] != taken)  # noqa: E731
                    if not self._condition.wait_for(fresh, timeout=self.reconnect_seconds + STUCK_READ_SECONDS):
                        raise self._lost(self.reconnect_seconds + STUCK_READ_SECONDS, "the read did not return")
                    if self._newest is None or self._newest[0] == taken:  # capture ended, nothing new
                        if self._error is not None:
                            raise self._error
                        return
                    taken, self.frame_time, frame = self._newest
                yield f"{self.name}[{taken}]", frame
        finally:
            self.close()

    def close(self):
        """Stop the capture thread; it closes the reader once its current read returns."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)
