"""TFLite Model Metadata: ``tflite.metadata`` writes it, ``demo_app.metadata`` reads it back (classify, detect,
segment), LiteRT runs the files unchanged, the labels are a zip appended to the flatbuffer, and reads by other
code (TF's generated model schema, then the metadata's vtables and offsets by hand with ``struct``) check the
bytes independently. ``test_mediapipe_client.py`` (e2e) checks them with MediaPipe."""
import functools
import io
import pathlib
import re
import struct
import subprocess
import sys
import warnings
import zipfile

import cv2
import numpy as np
import pytest
import skimage.data
from tensorflow.lite.python import schema_py_generated as schema

import tflite
from demo_app.metadata import read_metadata
from demo_app.runtime import TFLiteModel
from keras_layers.keras_api import keras
from layer_contract import randomize_batch_norm
from models.box_coding import PostProcessing
from models.ssdlite import model_anchors, ssdlite
from tflite.detection_export import convert_detector
from tflite.metadata import add_metadata, attach_metadata, metadata_flatbuffer

SIZE, DETECTOR_SIZE = 32, 64
LABELS = ["cat", "dog", "bird"]
SETTINGS = PostProcessing(max_detections=5, score_threshold=0.3)
TASK_OF = {"classify": "classify", "classify_int8": "classify", "detect": "detect", "segment": "segment"}


def photo():
    """A real photo (scikit-image's cat) at the classifier's and segmenter's input size, RGB uint8."""
    return cv2.resize(skimage.data.chelsea(), (SIZE, SIZE), interpolation=cv2.INTER_AREA)


def detector_frame():
    """A frame on which the untrained detector (random batch norm) finds boxes, RGB uint8."""
    return np.random.default_rng(0).integers(0, 256, (DETECTOR_SIZE, DETECTOR_SIZE, 3), dtype=np.uint8)


def _classifier():
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(8, 3, activation="relu")(keras.layers.Rescaling(1 / 255)(inputs))
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(len(LABELS), activation="softmax")(x))


def _segmenter():
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(keras.layers.Rescaling(1 / 255)(inputs))
    return keras.Model(inputs, keras.layers.Conv2D(len(LABELS), 1, activation="softmax")(x))


@functools.lru_cache(maxsize=None)
def kit_files():
    """The kit's kind of files without metadata: a classifier (fp32, and int8 with a uint8 input), an SSDLite
    detector ending in TFLite_Detection_PostProcess and a segmenter; all take RGB in [0, 255]."""
    keras.utils.set_random_seed(0)
    calibration = np.random.default_rng(1).uniform(0, 255, (16, SIZE, SIZE, 3)).astype(np.float32)
    classifier = _classifier()
    # not small_detector's (other weights): test_mediapipe_client compares boxes that stay inside this frame
    detector = ssdlite("mobilenet_v2", (DETECTOR_SIZE, DETECTOR_SIZE, 3), alpha=0.35, classes=len(LABELS),
                       extra_depths=(32,))
    randomize_batch_norm(detector, seed=1)
    return {"classify": tflite.convert(classifier),
            "classify_int8": tflite.convert(classifier, "int8", representative_data=calibration),
            "detect": convert_detector(detector, model_anchors(detector), settings=SETTINGS),
            "segment": tflite.convert(_segmenter())}


@functools.lru_cache(maxsize=None)
def with_metadata(kind):
    """The ``kind`` file of ``kit_files`` with metadata and LABELS."""
    return add_metadata(kit_files()[kind], name=f"kit {kind}", description=f"A tiny {kind} model.", version="v1",
                        task=TASK_OF[kind], labels=LABELS, author="mobilekit")


def image_for(kind):
    return detector_frame() if kind == "detect" else photo()


@pytest.mark.parametrize("kind", ["classify", "classify_int8", "detect", "segment"])
def test_the_reader_gets_back_what_was_written(kind):
    found = read_metadata(with_metadata(kind))
    outputs = {"classify": ["probability"], "segment": ["segmentation_masks"],
               "detect": ["location", "category", "score", "number of detections"]}[TASK_OF[kind]]
    assert found == {"name": f"kit {kind}", "description": f"A tiny {kind} model.", "version": "v1",
                     "author": "mobilekit", "min_parser_version": "1.2.0" if kind == "detect" else "1.0.0",
                     "task": TASK_OF[kind], "input_name": "image", "color_space": "RGB", "input_mean": [0.0],
                     "input_std": [1.0], "input_range": (0.0, 255.0), "output_names": outputs, "labels": LABELS}


def test_normalization_and_range_are_written_as_given():
    model = kit_files()["classify"]
    found = read_metadata(add_metadata(model, name="m", description="d", version="1", task="classify",
                                       input_mean=(127.5,), input_std=(127.5,)))
    assert (found["input_mean"], found["input_std"], found["input_range"]) == ([127.5], [127.5], (-1.0, 1.0))
    assert found["labels"] is None
    found = read_metadata(add_metadata(model, name="m", description="d", version="1", task="classify",
                                       input_mean=(1, 2, 3), input_std=(4, 5, 6), input_range=(0, 1)))
    assert (found["input_mean"], found["input_std"], found["input_range"]) == ([1, 2, 3], [4, 5, 6], (0.0, 1.0))


def test_a_uint8_input_whose_quantization_disagrees_with_the_normalization_warns():
    """MediaPipe feeds raw pixels to a uint8 input: the kit's int8 file (scale ~1, zero point 0, calibrated on
    [0, 255]) agrees with mean 0 / std 1, not with a [-1, 1] normalization."""
    model = kit_files()["classify_int8"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        add_metadata(model, name="m", description="d", version="1", task="classify")
    with pytest.warns(UserWarning, match="MediaPipe, which feeds raw pixels"):
        add_metadata(model, name="m", description="d", version="1", task="classify", input_mean=(127.5,),
                     input_std=(127.5,))


@pytest.mark.parametrize("kind", ["classify", "classify_int8", "detect", "segment"])
def test_litert_runs_the_file_with_identical_outputs(kind):
    image = image_for(kind).astype(np.float32)
    before = TFLiteModel.from_bytes(kit_files()[kind]).run(image)
    after = TFLiteModel.from_bytes(with_metadata(kind)).run(image)
    for a, b in zip(before, after, strict=True):
        np.testing.assert_array_equal(a, b)
    if kind == "detect":
        assert after[3][0] > 0  # the frame does give detections


def test_labels_are_an_uncompressed_zip_appended_to_the_flatbuffer():
    model = with_metadata("classify")
    with zipfile.ZipFile(io.BytesIO(model)) as archive:
        assert archive.namelist() == ["labels.txt"]
        assert archive.read("labels.txt").decode() == "cat\ndog\nbird\n"
        info = archive.getinfo("labels.txt")
    assert info.compress_type == zipfile.ZIP_STORED
    assert model[info.header_offset:info.header_offset + 4] == b"PK\x03\x04"  # offsets count from the file start
    again = add_metadata(kit_files()["classify"], name="kit classify", description="A tiny classify model.",
                         version="v1", task="classify", labels=LABELS, author="mobilekit")
    assert again == model  # reproducible: the zip entries carry a fixed date


# --- independent reads: TF's generated model schema, then the metadata's bytes by hand -------------------
def _metadata_entries(model_bytes):
    """name -> buffer bytes of the model's metadata entries, read with TF's generated schema."""
    model = schema.Model.GetRootAs(model_bytes, 0)
    return {model.Metadata(i).Name().decode(): model.Buffers(model.Metadata(i).Buffer()).DataAsNumpy().tobytes()
            for i in range(model.MetadataLength())}


class Raw:
    """Flatbuffer reads by hand (little-endian): a table starts with an int32 back to its vtable, whose
    uint16 entry 2 + field id holds the field's offset in the table (0: absent); strings, vectors and
    tables are reached through uint32 offsets relative to where they are stored."""

    def __init__(self, buf):
        self.buf = buf

    def u32(self, pos):
        return struct.unpack_from("<I", self.buf, pos)[0]

    def root(self):
        return self.u32(0)

    def field(self, table, field_id):
        vtable = table - struct.unpack_from("<i", self.buf, table)[0]
        entry = 4 + 2 * field_id
        if entry >= struct.unpack_from("<H", self.buf, vtable)[0]:
            return None
        offset = struct.unpack_from("<H", self.buf, vtable + entry)[0]
        return table + offset if offset else None

    def scalar(self, table, field_id, fmt):
        pos = self.field(table, field_id)
        return 0 if pos is None else struct.unpack_from("<" + fmt, self.buf, pos)[0]

    def table(self, table, field_id):
        pos = self.field(table, field_id)
        return pos + self.u32(pos)

    def vector(self, table, field_id):
        start = self.table(table, field_id)
        return start + 4, self.u32(start)

    def tables(self, table, field_id):
        start, n = self.vector(table, field_id)
        return [start + 4 * i + self.u32(start + 4 * i) for i in range(n)]

    def strings(self, table, field_id):
        return [self.buf[p + 4:p + 4 + self.u32(p)].decode() for p in self.tables(table, field_id)]

    def string(self, table, field_id):
        pos = self.table(table, field_id)
        return self.buf[pos + 4:pos + 4 + self.u32(pos)].decode()

    def numbers(self, table, field_id, fmt):
        start, n = self.vector(table, field_id)
        return list(struct.unpack_from(f"<{n}{fmt}", self.buf, start))


def _raw_metadata(kind):
    return Raw(_metadata_entries(with_metadata(kind))["TFLITE_METADATA"])


# Field ids of metadata_schema.fbs used below, by table: ModelMetadata name 0, version 2, subgraph_metadata 3,
# author 4, min_parser_version 7; SubGraphMetadata input/output_tensor_metadata 2/3, output_tensor_groups 8;
# TensorMetadata name 0, dimension_names 2, content 3, process_units 4, stats 5, associated_files 6;
# Content content_properties_type 0, content_properties 1, range 2; ProcessUnit options_type 0, options 1.
def test_metadata_is_an_m001_flatbuffer_in_the_model_and_min_runtime_version_stays():
    before, after = _metadata_entries(kit_files()["classify"]), _metadata_entries(with_metadata("classify"))
    assert "min_runtime_version" in before and after["min_runtime_version"] == before["min_runtime_version"]
    raw = Raw(after["TFLITE_METADATA"])
    assert raw.buf[4:8] == b"M001"
    root = raw.root()
    assert [raw.string(root, i) for i in (0, 2, 4, 7)] == ["kit classify", "v1", "mobilekit", "1.0.0"]
    image, = raw.tables(raw.tables(root, 3)[0], 2)
    assert raw.string(image, 0) == "image"
    content = raw.table(image, 3)
    assert raw.scalar(content, 0, "B") == 2 and raw.scalar(raw.table(content, 1), 0, "b") == 1  # Image, RGB
    unit, = raw.tables(image, 4)
    assert raw.scalar(unit, 0, "B") == 1  # NormalizationOptions: mean 0, std 1
    assert (raw.numbers(raw.table(unit, 1), 0, "f"), raw.numbers(raw.table(unit, 1), 1, "f")) == ([0.0], [1.0])
    stats = raw.table(image, 5)  # Stats: max 0, min 1
    assert (raw.numbers(stats, 1, "f"), raw.numbers(stats, 0, "f")) == ([0.0], [255.0])


def test_detector_outputs_carry_what_mediapipe_and_the_task_library_read():
    raw = _raw_metadata("detect")
    root = raw.root()
    subgraph, = raw.tables(root, 3)
    location, category, score, count = raw.tables(subgraph, 3)
    assert [raw.string(t, 0) for t in (location, category, score, count)] == [
        "location", "category", "score", "number of detections"]
    content = raw.table(location, 3)
    assert raw.scalar(content, 0, "B") == 3  # BoundingBoxProperties: index 0, type 1, coordinate_type 2
    box = raw.table(content, 1)
    assert raw.numbers(box, 0, "I") == [1, 0, 3, 2]  # [ymin, xmin, ymax, xmax] -> left, top, right, bottom
    assert (raw.scalar(box, 1, "b"), raw.scalar(box, 2, "b")) == (1, 0)  # BOUNDARIES, RATIO
    for tensor in (location, category, score):
        value_range = raw.table(raw.table(tensor, 3), 2)
        assert (raw.scalar(value_range, 0, "i"), raw.scalar(value_range, 1, "i")) == (2, 2)
    labels, = raw.tables(category, 6)  # AssociatedFile: name 0, type 2
    assert (raw.string(labels, 0), raw.scalar(labels, 2, "b")) == ("labels.txt", 3)  # TENSOR_VALUE_LABELS
    group, = raw.tables(subgraph, 8)  # TensorGroup: name 0, tensor_names 1
    assert (raw.string(group, 0), raw.strings(group, 1)) == ("detection_result", ["location", "category", "score"])
    assert raw.string(root, 7) == "1.2.0"


def test_a_segmenter_output_is_a_grayscale_mask_image_with_axis_labels():
    raw = _raw_metadata("segment")
    masks, = raw.tables(raw.tables(raw.root(), 3)[0], 3)
    assert raw.string(masks, 0) == "segmentation_masks"
    assert raw.strings(masks, 2) == ["batch", "height", "width", "mask"]
    content = raw.table(masks, 3)
    assert raw.scalar(content, 0, "B") == 2 and raw.scalar(raw.table(content, 1), 0, "b") == 2  # Image, GRAYSCALE
    labels, = raw.tables(masks, 6)
    assert raw.scalar(labels, 2, "b") == 2  # TENSOR_AXIS_LABELS


def test_writing_again_replaces_the_metadata_and_the_labels():
    first = with_metadata("classify")
    second = add_metadata(first, name="again", description="d", version="2", task="classify", labels=["a", "b", "c"])
    assert read_metadata(second)["name"] == "again" and read_metadata(second)["labels"] == ["a", "b", "c"]
    assert zipfile.ZipFile(io.BytesIO(second)).namelist() == ["labels.txt"]
    model_before, model_after = schema.Model.GetRootAs(first, 0), schema.Model.GetRootAs(second, 0)
    assert (model_after.BuffersLength(), model_after.MetadataLength()) == (model_before.BuffersLength(),
                                                                           model_before.MetadataLength())


# --- files without metadata and broken ones ----------------------------------------------------------------
def test_a_file_without_metadata_reads_as_none(tmp_path):
    path = tmp_path / "plain.tflite"
    path.write_bytes(kit_files()["classify"])
    assert read_metadata(path) is None and read_metadata(kit_files()["detect"]) is None


def _one_line_error(path):
    with pytest.raises(ValueError) as error:
        read_metadata(path)
    message = str(error.value)
    assert "\n" not in message and str(path) in message
    return message


def test_truncated_or_missing_pieces_are_one_line_errors(tmp_path):
    model = kit_files()["classify"]
    metadata = metadata_flatbuffer({"name": "m", "subgraph_metadata": [{"output_tensor_metadata": [
        {"name": "probability", "associated_files": [{"name": "labels.txt", "type": 2}]}]}]})
    cases = {"truncated": attach_metadata(model, metadata[:len(metadata) // 2]),
             "identifier": attach_metadata(model, b"\0" * 4 + b"XXXX" + metadata[8:]),
             "labels": attach_metadata(model, metadata),  # names labels.txt, packs no zip
             "model": model[:4] + b"XXXX" + model[8:]}
    for case, data in cases.items():
        path = tmp_path / f"{case}.tflite"
        path.write_bytes(data)
        message = _one_line_error(path)
        assert {"truncated": "corrupt TFLite metadata", "identifier": "'M001'", "labels": "labels.txt",
                "model": "expected a .tflite"}[case] in message


def test_bad_arguments_are_one_line_errors():
    model = kit_files()["classify"]
    base = dict(name="m", description="d", version="1")
    for kwargs, expected in [(dict(task="pose"), "expected one of classify, detect, segment"),
                             (dict(task="detect"), "TFLite_Detection_PostProcess"),
                             (dict(task="segment"), "expected outputs of ranks (4,)"),
                             (dict(task="classify", labels=["a"]), "1 labels given but the classify model scores 3"),
                             (dict(task="classify", labels=["a", "b\nc", "d"]), "labels[1]"),
                             (dict(task="classify", input_mean=(0, 0), input_std=(1,)), "expected 1 or 3 values")]:
        with pytest.raises(ValueError, match=re.escape(expected)) as error:
            add_metadata(model, **base, **kwargs)
        assert "\n" not in str(error.value)


@pytest.mark.parametrize("kind", ["classify", "detect"])
def test_mutated_files_read_or_fail_in_one_line(kind):
    """Random byte changes anywhere in the file (flatbuffer, metadata, zip): metadata or a one-line ValueError."""
    data, rng = with_metadata(kind), np.random.default_rng(0)
    for _ in range(300):
        mutated = np.frombuffer(data, np.uint8).copy()
        mutated[rng.integers(0, len(data), 3)] = rng.integers(0, 256, 3)
        try:
            read_metadata(mutated.tobytes())
        except ValueError as error:
            assert "\n" not in str(error) and "<model bytes>" in str(error)


def test_the_reader_imports_no_tensorflow(tmp_path):
    path = tmp_path / "model.tflite"
    path.write_bytes(with_metadata("detect"))
    script = ("import sys; sys.modules.update(tensorflow=None, keras=None, tf_keras=None)\n"
              "from demo_app.metadata import read_metadata\n"
              f"print(read_metadata({str(path)!r})['labels'])")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          cwd=pathlib.Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == str(LABELS)
