"""Frame sources: images, folders, videos, cameras, and their one-line errors."""
import struct
import zlib

import cv2
import numpy as np
import pytest
from demo_helpers import write_rgb
from PIL import Image

from demo_app.sources import open_source, read_image

RED = (255, 0, 0)


def test_image_file_is_rgb(tmp_path):
    path = write_rgb(tmp_path / "red.png", np.full((12, 20, 3), RED, np.uint8))
    frames = list(open_source(path))
    assert len(frames) == 1
    name, frame = frames[0]
    assert name == "red.png" and frame.shape == (12, 20, 3) and frame.dtype == np.uint8
    assert (frame[..., 0] == 255).all() and (frame[..., 1:] == 0).all()


def test_folder_sorted_by_name_skipping_other_files(image_folder):
    frames = list(open_source(str(image_folder)))
    assert [name for name, _ in frames] == ["a.png", "b.png", "c.jpg"]
    assert [frame.shape for _, frame in frames] == [(24, 24, 3), (40, 30, 3), (64, 48, 3)]
    np.testing.assert_array_equal(frames[0][1], read_image(str(image_folder / "a.png")))


def test_video_file_frames_and_release(tmp_path):
    path = str(tmp_path / "clip.avi")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 5.0, (32, 24))
    assert writer.isOpened()
    for _ in range(7):
        writer.write(np.full((24, 32, 3), (0, 0, 255), np.uint8))  # BGR red
    writer.release()

    source = open_source(path)
    assert source.fps == pytest.approx(5.0)
    frames = list(source)
    assert len(frames) == 7
    assert frames[0][0] == "clip.avi[0]" and frames[-1][0] == "clip.avi[6]"
    frame = frames[3][1]
    assert frame.shape == (24, 32, 3) and frame.dtype == np.uint8
    assert frame[..., 0].min() > 200 and frame[..., 1:].max() < 60  # red in channel 0 (lossy codec)
    assert not source.capture.isOpened()


def test_stopping_early_releases_capture(tmp_path):
    path = str(tmp_path / "clip.avi")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 5.0, (16, 16))
    for _ in range(3):
        writer.write(np.zeros((16, 16, 3), np.uint8))
    writer.release()
    source = open_source(path)
    next(iter(source))
    source.close()
    assert not source.capture.isOpened()


def _error(exc_type, spec):
    with pytest.raises(exc_type) as info:
        open_source(spec) if not isinstance(spec, tuple) else list(open_source(spec[0]))
    message = str(info.value)
    assert message and "\n" not in message
    return message


def test_source_errors(tmp_path):
    missing = tmp_path / "nope.png"
    assert _error(FileNotFoundError, str(missing)).startswith(f"source not found: {missing}")

    fake = tmp_path / "fake.png"
    fake.write_text("not a png\n")
    assert _error(ValueError, (str(fake),)).startswith(f"cannot decode image {fake}: ")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    assert _error(ValueError, (str(empty),)).startswith(f"cannot decode image {empty}: the file is empty")

    huge = tmp_path / "huge.png"  # a header claiming 60000 x 60000 pixels, its checksum right
    Image.new("RGB", (8, 8)).save(huge)
    data = bytearray(huge.read_bytes())
    data[16:24] = struct.pack(">II", 60000, 60000)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    huge.write_bytes(bytes(data))
    assert _error(ValueError, (str(huge),)).startswith(f"cannot decode image {huge}: OpenCV refused it")

    folder = tmp_path / "no_images"
    folder.mkdir()
    (folder / "readme.txt").write_text("x")
    assert _error(ValueError, str(folder)).startswith(f"no images in folder {folder}: expected")

    bad_video = tmp_path / "broken.mp4"
    bad_video.write_text("not a video")
    assert _error(ValueError, str(bad_video)).startswith(f"cannot open video {bad_video}: ")


@pytest.mark.parametrize("spec", ["97", 97])
def test_missing_camera(spec):
    assert _error(ValueError, spec).startswith("camera 97 could not be opened")
