"""The loop's background stages: frames read and prepared ahead in order, frames written behind in order,
errors handed back to the loop, early stops that leave no thread behind."""
import threading

import pytest

from demo_app.background import BackgroundWriter, Prefetch


class Frames:
    """``count`` numbered frames; ``fail_at`` raises there, as an undecodable image would."""

    def __init__(self, count, fail_at=None):
        self.count, self.fail_at, self.read, self.closed = count, fail_at, 0, False

    def __iter__(self):
        for i in range(self.count):
            if i == self.fail_at:
                raise ValueError(f"cannot decode image {i}.png")
            self.read += 1
            yield f"{i}.png", i

    def close(self):
        self.closed = True


def test_prefetch_prepares_every_frame_in_order_on_another_thread():
    threads = set()

    def prepare(frame):
        threads.add(threading.current_thread().name)
        return frame * 10

    source = Frames(50)
    prefetch = Prefetch(source, prepare, depth=3)
    assert list(prefetch) == [(f"{i}.png", i, 10 * i) for i in range(50)]
    prefetch.close()
    assert threads == {"prefetch"} and source.closed


def test_prefetch_hands_errors_to_the_loop_after_the_frames_before_them():
    prefetch = Prefetch(Frames(10, fail_at=4), lambda frame: frame)
    seen = []
    with pytest.raises(ValueError, match="^cannot decode image 4.png$"):
        for name, _, _ in prefetch:
            seen.append(name)
    prefetch.close()
    assert seen == ["0.png", "1.png", "2.png", "3.png"]


def test_prefetch_stops_reading_when_the_loop_stops():
    source = Frames(10_000)
    prefetch = Prefetch(source, lambda frame: frame, depth=2)
    frames = iter(prefetch)
    assert [next(frames)[1] for _ in range(3)] == [0, 1, 2]
    prefetch.close()
    assert source.closed and not prefetch._thread.is_alive()
    assert source.read <= 3 + 2 + 1  # taken, queued, and at most one in hand


class Sink:
    def __init__(self, fail_at=None):
        self.frames, self.fail_at, self.closed_with = [], fail_at, None

    @property
    def count(self):
        return len(self.frames)

    def write(self, frame):
        if len(self.frames) == self.fail_at:
            raise OSError("No space left on device")
        self.frames.append((frame, threading.current_thread().name))

    def close(self, success=True):
        self.closed_with = success


def test_writer_writes_every_frame_in_order_on_its_thread():
    sink = Sink()
    writer = BackgroundWriter(sink, depth=2)
    for i in range(100):
        writer.write(i)
    writer.close()
    assert sink.frames == [(i, "writer") for i in range(100)] and writer.count == 100
    assert sink.closed_with is True


def test_writer_error_reaches_the_loop_and_discards_the_output():
    sink = Sink(fail_at=3)
    writer = BackgroundWriter(sink)
    with pytest.raises(OSError, match="No space left"):
        for i in range(1000):
            writer.write(i)
    with pytest.raises(OSError, match="No space left"):
        writer.close()
    assert sink.closed_with is False and sink.count == 3


def test_writer_close_after_a_failed_loop_keeps_nothing():
    sink = Sink()
    writer = BackgroundWriter(sink)
    writer.write(0)
    writer.close(success=False)
    assert sink.closed_with is False and sink.count == 1
