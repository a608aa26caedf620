"""Pipelining the demo loop: read and preprocess the next frames, and write the finished ones, on threads.

One frame of the loop is read (decode), preprocess (resize, scale), invoke, draw, write (encode).
Done in turn, every millisecond outside ``invoke`` lowers the frame rate; at 640x480 decoding,
resizing and encoding cost about 3 ms together on a desktop core, as much as a small int8
network's whole invoke. OpenCV's decode, resize and encode and LiteRT's ``invoke`` release
Python's GIL, so running them on threads overlaps them on a multi-core board:

- ``Prefetch`` iterates a frame source on a thread and prepares each frame (e.g. preprocesses
  it), keeping at most ``depth`` frames ready. Every frame is kept, in order: it is meant for
  files (videos, images). A live camera or stream already has its capture thread, which keeps
  only the newest frame; prefetching it would show older frames.
- ``BackgroundWriter`` writes frames to an output (``demo_app.output``) on a thread through a
  queue of ``depth`` frames; ``write`` waits only when the queue is full, so no frame is dropped.

An error on either thread is raised in the loop at the next call (``Prefetch``: in iteration,
``BackgroundWriter``: in ``write``/``close``).
"""
import queue
import threading

_END = object()


class Prefetch:
    """Iterable of ``(name, frame, prepare(frame))`` from ``frames`` (an iterable of ``(name, frame)``
    with ``close()``), read and prepared on a thread ``depth`` frames ahead of the consumer."""

    def __init__(self, frames, prepare, depth=2):
        self.frames, self.prepare = frames, prepare
        self._queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="prefetch", daemon=True)
        self._thread.start()

    def _put(self, item):
        """Queue ``item`` unless the consumer stopped; False once it has."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    def _read(self):
        try:
            for name, frame in self.frames:
                if not self._put((name, frame, self.prepare(frame))):
                    return
            self._put(_END)
        except BaseException as error:  # handed to the consumer, raised there
            self._put(error)

    def __iter__(self):
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self):
        """Stop reading ahead and close the source."""
        self._stop.set()
        self._thread.join()
        self.frames.close()


class BackgroundWriter:
    """``write``/``close`` of ``sink`` (a ``demo_app.output`` writer) done on a thread, in order."""

    def __init__(self, sink, depth=8):
        self.sink = sink
        self._queue = queue.Queue(maxsize=depth)
        self._error = None
        self._thread = threading.Thread(target=self._write, name="writer", daemon=True)
        self._thread.start()

    @property
    def count(self):
        """Frames written so far."""
        return self.sink.count

    def _write(self):
        while True:
            frame = self._queue.get()
            if frame is _END:
                return
            if self._error is None:
                try:
                    self.sink.write(frame)
                except BaseException as error:  # raised in the loop at its next write or close
                    self._error = error

    def write(self, rgb):
        if self._error is not None:
            raise self._error
        self._queue.put(rgb)

    def close(self, success=True):
        """Write what is queued, then close the sink (``success=False``: as it discards a failed output)."""
        self._queue.put(_END)
        self._thread.join()
        self.sink.close(success and self._error is None)
        if self._error is not None and success:
            raise self._error
