"""Users' image folders: broken files, odd image modes, EXIF orientation, symlink loops, given splits."""
import io
import os

import numpy as np
import pytest
from PIL import Image

from models.classification_data import ArraySplit, ClassificationData
from models.data import load_dataset
from models.image_folder import load_image_folder

SIZE = 16


def noise_image(rng, base, shape=(SIZE, SIZE)):
    """A class's ordinary photo: noise around the class colour."""
    return np.clip(base + rng.integers(-20, 21, (*shape, 3)), 0, 255).astype(np.uint8)


def halves(left, right, shape=(SIZE, 2 * SIZE), dtype=np.uint8):
    """An image whose left half is ``left`` and right half ``right`` (per-pixel values or tuples)."""
    pixels = np.empty((*shape, len(np.atleast_1d(left))), dtype)
    pixels[:, :shape[1] // 2] = left
    pixels[:, shape[1] // 2:] = right
    return pixels


def jpeg_bytes(image, **options):
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=95, **options)
    return buffer.getvalue()


def resized(pixels):
    return np.asarray(Image.fromarray(pixels).resize((SIZE, SIZE), Image.Resampling.BILINEAR))


def all_images(data):
    return (np.concatenate([split[0] for split in data[:3]]), np.concatenate([split[1] for split in data[:3]]))


def closest(data, expected):
    """The label of the loaded image nearest to ``expected`` and its mean absolute difference."""
    images, labels = all_images(data)
    errors = np.abs(images.astype(int) - expected.astype(int)).mean(axis=(1, 2, 3))
    return labels[np.argmin(errors)], errors.min()


# The EXIF test image: stored 16 high x 32 wide in 8x8 blocks of distinct colours, shown after a
# quarter turn clockwise (orientation 6) as 32 high x 16 wide.
BLOCKS = np.array([[(230, 20, 20), (20, 230, 20), (20, 20, 230), (230, 230, 20)],
                   [(20, 230, 230), (230, 20, 230), (240, 240, 240), (30, 30, 30)]], np.uint8)
STORED = np.repeat(np.repeat(BLOCKS, 8, axis=0), 8, axis=1)  # (16, 32, 3)


@pytest.fixture
def messy_folder(tmp_path):
    """3 classes x 8 readable images, with every kind of trouble a real folder has."""
    rng = np.random.default_rng(0)
    root = tmp_path / "photos"
    bases = {"apple": 60, "banana": 128, "cherry": 190}
    for name, base in bases.items():
        (root / name).mkdir(parents=True)
        for i in range(5):
            Image.fromarray(noise_image(rng, base)).save(root / name / f"{i}.png")
    apple, banana, cherry = (root / name for name in bases)
    Image.fromarray(noise_image(rng, 60)).save(apple / "5.jpg")
    Image.fromarray(noise_image(rng, 60)).save(apple / "6.JPEG")  # extensions in any case
    Image.fromarray(np.full((SIZE, SIZE), 77, np.uint8), "L").save(apple / "gray.png")
    broken = jpeg_bytes(Image.fromarray(noise_image(rng, 60, (64, 64))))
    (apple / "broken.jpg").write_bytes(broken[:len(broken) // 2])  # truncated JPEG
    (apple / "notes.txt").write_text("not an image")
    (apple / "labels.json").write_text("{}")
    Image.fromarray(noise_image(rng, 60)).save(apple / ".hidden.png")  # would be a 9th apple
    (apple / ".thumbs").mkdir()
    Image.fromarray(noise_image(rng, 60)).save(apple / ".thumbs" / "t.png")
    # banana: palette with a transparent index, RGBA, CMYK JPEG
    palette = Image.fromarray(halves(0, 1)[..., 0], "P")
    palette.putpalette([200, 30, 60, 0, 255, 0] + [0] * 762)
    palette.save(banana / "palette.png", transparency=1)
    Image.fromarray(halves((10, 200, 100, 255), (255, 255, 255, 0)), "RGBA").save(banana / "rgba.png")
    cmyk = Image.new("RGB", (SIZE, SIZE), (200, 50, 30)).convert("CMYK")
    (banana / "cmyk.jpg").write_bytes(jpeg_bytes(cmyk))
    # cherry: 16-bit grey, EXIF-rotated JPEG, a nested folder
    Image.fromarray(halves(40000, 10000, dtype=np.uint16)[..., 0]).save(cherry / "deep.png")
    exif = Image.Exif()
    exif[0x0112] = 6
    (cherry / "rotated.jpg").write_bytes(jpeg_bytes(Image.fromarray(STORED), exif=exif.tobytes(), subsampling=0))
    (cherry / "more").mkdir()
    Image.fromarray(noise_image(rng, 190)).save(cherry / "more" / "nested.png")
    # symlink loops: inside a class and at the top
    os.symlink("..", cherry / "loop")
    os.symlink(".", root / "again")
    return root


def test_messy_folder_loads_every_readable_image_as_rgb(messy_folder):
    data = load_image_folder(str(messy_folder), image_size=SIZE, seed=0)
    assert isinstance(data, ClassificationData)
    assert data.class_names == ("apple", "banana", "cherry")
    assert data.info["skipped"] == [{"file": "apple/broken.jpg", "reason": data.info["skipped"][0]["reason"]}]
    assert "truncated" in data.info["skipped"][0]["reason"] and "\n" not in data.info["skipped"][0]["reason"]
    assert data.info["skipped_count"] == 1
    assert data.info["split"] == "stratified 70/15/15"
    counts = data.info["class_counts"]
    assert {name: sum(c.values()) for name, c in counts.items()} == {"apple": 8, "banana": 8, "cherry": 8}
    for index, split in enumerate(("train", "validation", "test")):
        labels = data[index][1]
        assert [counts[name][split] for name in data.class_names] == np.bincount(labels, minlength=3).tolist()
        assert data[index][0].shape[1:] == (SIZE, SIZE, 3) and data[index][0].dtype == np.uint8
    images, labels = all_images(data)
    assert len(images) == 24

    # Each odd mode arrives as RGB in its known colours, under its class's label.
    gray = np.full((SIZE, SIZE, 3), 77, np.uint8)
    palette = resized(halves((200, 30, 60), (0, 0, 0)))  # transparent index composited on black
    rgba = resized(halves((10, 200, 100), (0, 0, 0)))
    deep = resized(halves((156, 156, 156), (39, 39, 39)))  # 40000 / 257, 10000 / 257
    for expected, label in ((gray, 0), (palette, 1), (rgba, 1), (deep, 2)):
        assert closest(data, expected) == (label, 0.0)
    label, error = closest(data, np.full((SIZE, SIZE, 3), (200, 50, 30), np.uint8))  # CMYK JPEG
    assert label == 1 and error < 4

    # EXIF orientation 6: the stored pixels turned a quarter clockwise, then resized.
    shown = resized(np.rot90(STORED, k=-1))
    label, error = closest(data, shown)
    assert label == 2 and error < 6
    assert np.abs(resized(STORED).astype(int) - shown.astype(int)).mean() > 40  # the turn matters
    images_of_cherry = images[labels == 2]
    loaded = images_of_cherry[np.argmin(np.abs(images_of_cherry.astype(int) - shown.astype(int)).mean(axis=(1, 2, 3)))]
    assert np.abs(loaded[2, 2].astype(int) - (20, 230, 230)).max() < 25  # top left shows the stored bottom left
    assert np.abs(loaded[-3, -3].astype(int) - (230, 230, 20)).max() < 25  # bottom right: stored top right

    again = load_image_folder(str(messy_folder), image_size=SIZE, seed=0)
    for split, same in zip(data[:3], again[:3]):
        np.testing.assert_array_equal(split[0], same[0])
        np.testing.assert_array_equal(split[1], same[1])


def test_strict_raises_on_the_first_unreadable_file(messy_folder):
    with pytest.raises(ValueError) as error:
        load_image_folder(str(messy_folder), image_size=SIZE, strict=True)
    message = str(error.value)
    assert "apple/broken.jpg" in message and "truncated" in message and "\n" not in message
    with pytest.raises(ValueError, match="apple/broken.jpg"):
        load_dataset(str(messy_folder), SIZE, strict=True)
    assert load_dataset(str(messy_folder), SIZE).info["skipped_count"] == 1
    assert load_dataset("digits", 8, strict=True).info is None  # digits ignore strict


def good_folder(root, counts, seed=0):
    rng = np.random.default_rng(seed)
    for index, (name, count) in enumerate(counts.items()):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            Image.fromarray(noise_image(rng, 40 + 60 * index)).save(root / name / f"{name}{i}.png")
    return root


def test_unreadable_files_are_skipped_and_named(tmp_path, monkeypatch):
    root = good_folder(tmp_path / "photos", {"a": 3, "b": 3})
    (root / "a" / "empty.jpg").write_bytes(b"")
    (root / "a" / "text.jpg").write_text("hello, I am not a JPEG")
    png = io.BytesIO()
    Image.fromarray(noise_image(np.random.default_rng(1), 90, (40, 40))).save(png, "PNG")
    (root / "b" / "cut.png").write_bytes(png.getvalue()[:len(png.getvalue()) // 2])
    os.symlink("loop.png", root / "b" / "loop.png")  # a link to itself
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)
    Image.new("RGB", (50, 50)).save(root / "b" / "big.png")  # over the limit: Pillow warns
    Image.new("RGB", (70, 70)).save(root / "b" / "huge.png")  # over twice the limit: Pillow refuses
    data = load_image_folder(str(root), image_size=SIZE)
    reasons = {entry["file"]: entry["reason"] for entry in data.info["skipped"]}
    assert set(reasons) == {"a/empty.jpg", "a/text.jpg", "b/cut.png", "b/loop.png", "b/big.png", "b/huge.png"}
    assert "empty" in reasons["a/empty.jpg"] and "not an image" in reasons["a/text.jpg"]
    assert "symbolic links" in reasons["b/loop.png"]
    assert "decompression bomb" in reasons["b/big.png"] and "decompression bomb" in reasons["b/huge.png"]
    assert all("\n" not in reason and len(reason) < 170 for reason in reasons.values())
    assert data.info["skipped_count"] == 6
    # 3 images a class is too few for scikit-learn's stratified split: every class still trains,
    # and validation and test are not empty.
    assert {name: sum(c.values()) for name, c in data.info["class_counts"].items()} == {"a": 3, "b": 3}
    assert all(counts["train"] >= 1 for counts in data.info["class_counts"].values())
    assert len(data.validation[1]) >= 1 and len(data.test[1]) >= 1


def test_a_file_without_read_permission_is_skipped(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("running as root: root reads files without read permission")
    root = good_folder(tmp_path / "photos", {"a": 8, "b": 8})
    locked = root / "b" / "b0.png"
    locked.chmod(0)
    try:
        data = load_image_folder(str(root), image_size=SIZE)
    finally:
        locked.chmod(0o644)
    assert data.info["skipped"] == [{"file": "b/b0.png", "reason": "permission denied"}]
    assert data.info["class_counts"]["b"]["train"] + data.info["class_counts"]["b"]["validation"] + \
        data.info["class_counts"]["b"]["test"] == 7


def test_class_checks(tmp_path):
    with pytest.raises(ValueError, match=r"1 class folder\(s\) \(only\); expected at least two class") as error:
        load_image_folder(str(good_folder(tmp_path / "single", {"only": 5})))
    assert "\n" not in str(error.value)
    loose = tmp_path / "loose"
    loose.mkdir()
    Image.new("RGB", (8, 8)).save(loose / "x.png")
    with pytest.raises(ValueError, match="0 class folder"):
        load_image_folder(str(loose))
    with pytest.raises(ValueError, match=r"class 'b' .* has 1 readable image\(s\); expected at least 2"):
        load_image_folder(str(good_folder(tmp_path / "tiny", {"a": 5, "b": 1, "c": 5})))
    root = good_folder(tmp_path / "broken", {"a": 5, "b": 1})
    (root / "b" / "bad.jpg").write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(ValueError, match=r"class 'b' .* 1 readable image\(s\) \(1 unreadable file\(s\) skipped\)"):
        load_image_folder(str(root))
    (tmp_path / "empty" / "a").mkdir(parents=True)
    (tmp_path / "empty" / "b").mkdir()
    with pytest.raises(ValueError, match="class 'a' .* has 0 readable"):
        load_image_folder(str(tmp_path / "empty"))


def split_folder(root, with_test=False):
    good_folder(root / "train", {"a": 6, "b": 5, "c": 4})
    good_folder(root / "val", {"a": 5, "b": 2}, seed=1)  # no "c" in val: fine
    if with_test:
        good_folder(root / "test", {"b": 3, "c": 1}, seed=2)
    (root / "README.txt").write_text("my photos")
    return root


def test_given_split_is_used_and_val_is_halved_deterministically(tmp_path):
    root = split_folder(tmp_path / "photos")
    data = load_image_folder(str(root), image_size=SIZE, seed=0)
    assert data.class_names == ("a", "b", "c") and data.info["split"] == "folders"
    assert "halved" in data.info["note"]
    counts = data.info["class_counts"]
    assert [counts[name]["train"] for name in "abc"] == [6, 5, 4]
    assert [counts[name]["validation"] + counts[name]["test"] for name in "abc"] == [5, 2, 0]
    assert [counts[name]["validation"] for name in "ab"] in ([3, 1], [2, 1])  # stratified halves
    assert len(data.validation[1]) + len(data.test[1]) == 7 and abs(len(data.validation[1]) - len(data.test[1])) <= 1
    # the training images are the train/ folder's, in folder order
    expected = [np.asarray(Image.open(root / "train" / name / f"{name}{i}.png")) for name, n in
                (("a", 6), ("b", 5), ("c", 4)) for i in range(n)]
    np.testing.assert_array_equal(data.train[0], np.stack(expected))
    # val/ images land in validation or test, each once
    val_images = {np.asarray(Image.open(path)).tobytes() for path in (root / "val").rglob("*.png")}
    assert {image.tobytes() for split in (data.validation, data.test) for image in split[0]} == val_images
    again = load_image_folder(str(root), image_size=SIZE, seed=0)
    for split, same in zip(data[:3], again[:3]):
        np.testing.assert_array_equal(split[0], same[0])
        np.testing.assert_array_equal(split[1], same[1])


def test_given_test_folder_is_used_as_it_is(tmp_path):
    root = split_folder(tmp_path / "photos", with_test=True)
    os.rename(root / "val", root / "validation")
    data = load_image_folder(str(root), image_size=SIZE)
    counts = data.info["class_counts"]
    assert counts == {"a": {"train": 6, "validation": 5, "test": 0}, "b": {"train": 5, "validation": 2, "test": 3},
                      "c": {"train": 4, "validation": 0, "test": 1}}
    assert "as given" in data.info["note"]


def test_split_folder_errors(tmp_path):
    root = split_folder(tmp_path / "unknown")
    (root / "val" / "zebra").mkdir()
    Image.new("RGB", (8, 8)).save(root / "val" / "zebra" / "z.png")
    with pytest.raises(ValueError, match=r"val/zebra .* is not a class of train/; expected one of: a, b, c$"):
        load_image_folder(str(root))
    root = split_folder(tmp_path / "both")
    good_folder(root / "validation", {"a": 2})
    with pytest.raises(ValueError, match="both val/ and validation/"):
        load_image_folder(str(root))
    root = good_folder(tmp_path / "no_val" / "train", {"a": 3, "b": 3}).parent
    with pytest.raises(ValueError, match="has train/ without val/"):
        load_image_folder(str(root))
    root = split_folder(tmp_path / "one_val")
    for path in (root / "val").rglob("*.png"):
        path.unlink()
    Image.new("RGB", (8, 8)).save(root / "val" / "a" / "only.png")
    with pytest.raises(ValueError, match="1 readable image.*expected at least 2 .*halved"):
        load_image_folder(str(root))
    root = tmp_path / "single_train"
    good_folder(root / "train", {"a": 4})
    good_folder(root / "val", {"a": 2})
    with pytest.raises(ValueError, match=r"train folder .*train has 1 class folder\(s\) \(a\)"):
        load_image_folder(str(root))


def test_classification_data_info_defaults_to_none():
    empty = (np.zeros((0, 4, 4, 3), np.uint8), np.zeros(0, np.int64))
    assert ClassificationData(empty, empty, empty, ("a", "b")).info is None
    assert ClassificationData(empty, empty, empty, ("a", "b"), info={"split": "x"}).info == {"split": "x"}


def test_plain_pairs_become_array_splits():
    images, labels = np.arange(5 * 48, dtype=np.uint8).reshape(5, 4, 4, 3), np.array([0, 1, 0, 1, 1])
    data = ClassificationData((images, labels), (images, labels), (images, labels), ("a", "b"))
    assert isinstance(data.train, ArraySplit) and data.train.size == 5
    (x, y), (x_val, _) = data.train, data.validation  # still pairs
    assert x is images and y is labels and data.test[0] is images
    np.testing.assert_array_equal(data.train.take(2), images[:2])
    assert [len(batch_labels) for _, batch_labels in data.test.batches(2)] == [2, 2, 1]
    smaller = data._replace(train=(images[:3], labels[:3]))
    assert isinstance(smaller.train, ArraySplit) and smaller.train.size == 3 and smaller.test is data.test
