"""Read the TFLite Model Metadata of a ``.tflite`` file without TensorFlow (flatbuffers, stdlib, numpy).

The metadata is the ``ModelMetadata`` flatbuffer of TensorFlow Lite Support's schema
(tensorflow/tflite-support, ``tensorflow_lite_support/metadata/metadata_schema.fbs``; MediaPipe ships the
same schema, version 1.5.0, as ``mediapipe/tasks/metadata/metadata_schema.fbs``), file identifier
``M001``. The model (TFLite's ``schema.fbs``) stores it as the buffer that its ``Model.metadata`` entry named
``TFLITE_METADATA`` points at; files the metadata names (label lists) are entries of a zip archive
appended to the flatbuffer, as the Task Library and MediaPipe pack them.

Both schemas are described below as data (``MODEL_TABLES``, ``METADATA_TABLES``): each table's fields in
schema order, so a field's position is its flatbuffer field id (a union field takes two ids, its type
then its value). One generic reader (``unpack``, bounds-checked) walks them with ``flatbuffers.table.Table``;
it is used for the model's few tables too, instead of ai-edge-litert's generated ``schema_py_generated``, so
one tested path serves where only tflite-runtime is installed. ``tflite.metadata`` writes from the same
description.
"""
import collections
import io
import os
import struct
import zipfile

import numpy as np
from flatbuffers import number_types as N
from flatbuffers.table import Table

from demo_app.runtime import TFLITE_IDENTIFIER, one_line

METADATA_NAME = "TFLITE_METADATA"  # the Model.metadata entry that holds the metadata buffer
METADATA_IDENTIFIER = b"M001"

# A field: its name, its kind (a scalar type, "string", a table or union name, "[element kind]" for a
# vector; None: in the schema but not read here) and the schema version that added it.
Field = collections.namedtuple("Field", "name kind since", defaults=("1.0.0",))

MODEL_TABLES = {  # the few tables of TFLite's schema.fbs on the way to the metadata
    "Model": (Field("version", None), Field("operator_codes", None), Field("subgraphs", None),
              Field("description", None), Field("buffers", "[Buffer]"), Field("metadata_buffer", None),
              Field("metadata", "[Metadata]")),
    "Buffer": (Field("data", "[ubyte]"), Field("offset", "ulong"), Field("size", "ulong")),
    "Metadata": (Field("name", "string"), Field("buffer", "uint")),
}
METADATA_TABLES = {  # metadata_schema.fbs; tables and fields after the last one used here are left out
    "ModelMetadata": (Field("name", "string"), Field("description", "string"), Field("version", "string"),
                      Field("subgraph_metadata", "[SubGraphMetadata]"), Field("author", "string"),
                      Field("license", "string"), Field("associated_files", "[AssociatedFile]"),
                      Field("min_parser_version", "string")),
    "SubGraphMetadata": (Field("name", "string"), Field("description", "string"),
                         Field("input_tensor_metadata", "[TensorMetadata]"),
                         Field("output_tensor_metadata", "[TensorMetadata]"),
                         Field("associated_files", "[AssociatedFile]"),
                         Field("input_process_units", "[ProcessUnit]", "1.1.0"),
                         Field("output_process_units", "[ProcessUnit]", "1.1.0"),
                         Field("input_tensor_groups", "[TensorGroup]", "1.2.0"),
                         Field("output_tensor_groups", "[TensorGroup]", "1.2.0")),
    "TensorMetadata": (Field("name", "string"), Field("description", "string"), Field("dimension_names", "[string]"),
                       Field("content", "Content"), Field("process_units", "[ProcessUnit]"), Field("stats", "Stats"),
                       Field("associated_files", "[AssociatedFile]")),
    "Content": (Field("content_properties", "ContentProperties"), Field("range", "ValueRange")),
    "FeatureProperties": (),
    "ImageProperties": (Field("color_space", "byte"), Field("default_size", "ImageSize")),
    "ImageSize": (Field("width", "uint"), Field("height", "uint")),
    "BoundingBoxProperties": (Field("index", "[uint]"), Field("type", "byte"), Field("coordinate_type", "byte")),
    "ValueRange": (Field("min", "int"), Field("max", "int")),
    "ProcessUnit": (Field("options", "ProcessUnitOptions"),),
    "NormalizationOptions": (Field("mean", "[float]"), Field("std", "[float]")),
    "Stats": (Field("max", "[float]"), Field("min", "[float]")),
    "AssociatedFile": (Field("name", "string"), Field("description", "string"), Field("type", "byte"),
                       Field("locale", "string"), Field("version", "string", "1.4.1")),
    "TensorGroup": (Field("name", "string"), Field("tensor_names", "[string]")),
}
UNIONS = {  # members in schema order: the union's type field holds 1 + the member's position
    "ContentProperties": ("FeatureProperties", "ImageProperties", "BoundingBoxProperties", "AudioProperties"),
    "ProcessUnitOptions": ("NormalizationOptions", "ScoreCalibrationOptions", "ScoreThresholdingOptions",
                           "BertTokenizerOptions", "SentencePieceTokenizerOptions", "RegexTokenizerOptions"),
}
SCALARS = {"byte": N.Int8Flags, "ubyte": N.Uint8Flags, "int": N.Int32Flags, "uint": N.Uint32Flags,
           "ulong": N.Uint64Flags, "float": N.Float32Flags}
# Enums, by value.
COLOR_SPACES = ("UNKNOWN", "RGB", "GRAYSCALE")
FILE_TYPES = ("UNKNOWN", "DESCRIPTIONS", "TENSOR_AXIS_LABELS", "TENSOR_VALUE_LABELS",
              "TENSOR_AXIS_SCORE_CALIBRATION", "VOCABULARY", "SCANN_INDEX_FILE")
BOX_TYPES = ("UNKNOWN", "BOUNDARIES", "UPPER_LEFT", "CENTER")
COORDINATE_TYPES = ("RATIO", "PIXEL")
# The output content that tells each task apart.
TASKS = {"FeatureProperties": "classify", "BoundingBoxProperties": "detect", "ImageProperties": "segment"}


def _checked(buf, start, size):
    if start < 0 or start + size > len(buf):
        raise ValueError(f"data at {start}..{start + size} lies outside the {len(buf)}-byte buffer")
    return start


def _vector(table, offset, width):
    """Start and length of the vector at ``offset`` (a field's vtable value), bounds-checked."""
    length = table.VectorLen(offset)
    return _checked(table.Bytes, table.Vector(offset), length * width), length


def _string(buf, pos):
    """The string whose uoffset is at ``pos``."""
    start = pos + struct.unpack_from("<I", buf, pos)[0]
    length = struct.unpack_from("<I", buf, start)[0]
    return bytes(buf[_checked(buf, start + 4, length):start + 4 + length]).decode("utf-8")


def _read(table, offset, kind, tables):
    """The value of a non-union field of ``kind`` at ``offset`` (its vtable value) in ``table``."""
    buf, pos = table.Bytes, table.Pos + offset
    if kind in SCALARS:
        return table.Get(SCALARS[kind], pos)
    if kind == "string":
        return _string(buf, pos)
    if kind in tables:
        return unpack(buf, table.Indirect(pos), kind, tables)
    element = kind[1:-1]
    if element in SCALARS:
        start, length = _vector(table, offset, SCALARS[element].bytewidth)
        return np.frombuffer(buf, N.to_numpy_type(SCALARS[element]), length, start)
    start, length = _vector(table, offset, 4)
    if element == "string":
        return [_string(buf, start + 4 * i) for i in range(length)]
    return [unpack(buf, table.Indirect(start + 4 * i), element, tables) for i in range(length)]


def _union(table, field_id, members, tables):
    """``(member name, dict)`` of the union whose type and value are fields ``field_id`` and ``field_id + 1``."""
    member, offset = table.GetSlot(4 + 2 * field_id, 0, N.Uint8Flags), table.Offset(6 + 2 * field_id)
    if not offset or not 0 < member <= len(members):
        return None
    name = members[member - 1]
    return name, unpack(table.Bytes, table.Indirect(table.Pos + offset), name, tables) if name in tables else {}


def unpack(buf, pos, name, tables):
    """The table ``name`` at ``pos`` of flatbuffer ``buf`` as a dict of its present fields.

    A union field reads as ``(member name, dict)``; members not described in ``tables`` as ``(name, {})``.
    Raises ``ValueError``, ``struct.error`` or ``TypeError`` on data that is not such a table.
    """
    table, values, field_id = Table(buf, _checked(buf, pos, 4)), {}, 0
    for field in tables[name]:
        if field.kind in UNIONS:
            values[field.name] = _union(table, field_id, UNIONS[field.kind], tables)
            field_id += 2
            continue
        offset = table.Offset(4 + 2 * field_id)
        if offset and field.kind is not None:
            values[field.name] = _read(table, offset, field.kind, tables)
        field_id += 1
    return {key: value for key, value in values.items() if value is not None}


def _root(buf, identifier):
    if len(buf) < 8 or bytes(buf[4:8]) != identifier:
        raise ValueError(f"no file identifier {identifier.decode()!r} at bytes 4..8")
    return struct.unpack_from("<I", buf, 0)[0]


def parse_metadata(buf):
    """A ``ModelMetadata`` flatbuffer (bytes) -> nested dicts (``unpack``); a one-line ``ValueError`` if it is
    not one."""
    try:
        return unpack(buf, _root(buf, METADATA_IDENTIFIER), "ModelMetadata", METADATA_TABLES)
    except (struct.error, TypeError, ValueError) as exc:
        raise ValueError(f"corrupt TFLite metadata ({one_line(exc)}): expected a ModelMetadata flatbuffer "
                         f"(metadata_schema.fbs, identifier {METADATA_IDENTIFIER.decode()!r})") from None


def metadata_buffer(model_bytes):
    """The ``TFLITE_METADATA`` buffer of a ``.tflite`` flatbuffer, or None when it has none."""
    try:
        model = unpack(model_bytes, _root(model_bytes, TFLITE_IDENTIFIER), "Model", MODEL_TABLES)
    except (struct.error, TypeError, ValueError) as exc:
        raise ValueError(f"not a readable TFLite flatbuffer ({one_line(exc)}): expected a .tflite file") from None
    entry = next((m for m in model.get("metadata", ()) if m.get("name") == METADATA_NAME), None)
    if entry is None:
        return None
    buffers, index = model.get("buffers", []), entry.get("buffer", 0)
    if not 0 <= index < len(buffers):
        raise ValueError(f"metadata names buffer {index}: expected one of the model's {len(buffers)} buffers")
    buffer = buffers[index]
    if buffer.get("offset", 0) > 1:  # a model over 2 GB keeps its buffers after the flatbuffer
        start, size = buffer["offset"], buffer.get("size", 0)
        return bytes(model_bytes[_checked(model_bytes, start, size):start + size])
    return bytes(buffer.get("data", b""))


def _enum(names, value):
    """An enum value's name ("UNKNOWN" for values a newer schema added)."""
    return names[value] if 0 <= value < len(names) else "UNKNOWN"


def _labels(tensors, archive):
    """The lines of the first label file (axis or value labels) attached to one of ``tensors``."""
    for tensor in tensors:
        for file in tensor.get("associated_files", ()):
            if _enum(FILE_TYPES, file.get("type", 0)) in ("TENSOR_AXIS_LABELS", "TENSOR_VALUE_LABELS"):
                if archive is None or file.get("name") not in archive.namelist():
                    raise ValueError(f"metadata names the label file {file.get('name')!r}: expected it in the "
                                     f"zip archive appended to the model")
                try:
                    return archive.read(file["name"]).decode("utf-8").splitlines()
                except (zipfile.BadZipFile, NotImplementedError, EOFError, OSError) as exc:
                    raise ValueError(f"label file {file['name']!r} in the appended zip archive is unreadable "
                                     f"({one_line(exc)}): expected a stored UTF-8 text file") from None
    return None


def _input(tensor):
    """Name, color space, normalization and real-valued range (low, high over all channels) of the image input."""
    kind, properties = tensor.get("content", {}).get("content_properties", (None, {}))
    units = [unit.get("options", (None, {})) for unit in tensor.get("process_units", ())]
    norm = next((options for name, options in units if name == "NormalizationOptions"), {})
    low, high = tensor.get("stats", {}).get("min", ()), tensor.get("stats", {}).get("max", ())
    return {"input_name": tensor.get("name"),
            "color_space": _enum(COLOR_SPACES, properties.get("color_space", 0)) if kind == "ImageProperties" else None,
            "input_mean": [float(v) for v in norm.get("mean", ())] or None,
            "input_std": [float(v) for v in norm.get("std", ())] or None,
            "input_range": (float(min(low)), float(max(high))) if len(low) and len(high) else None}


def summary(metadata, archive=None):
    """The facts the demo uses from parsed metadata (``parse_metadata``); label files come from ``archive``."""
    subgraph = (metadata.get("subgraph_metadata") or [{}])[0]
    inputs, outputs = subgraph.get("input_tensor_metadata", []), subgraph.get("output_tensor_metadata", [])
    contents = [t.get("content", {}).get("content_properties", (None,))[0] for t in outputs]
    task = next((TASKS[c] for c in ("BoundingBoxProperties", "ImageProperties", "FeatureProperties")
                 if c in contents), None)
    return {"name": metadata.get("name"), "description": metadata.get("description"),
            "version": metadata.get("version"), "author": metadata.get("author"),
            "min_parser_version": metadata.get("min_parser_version"), "task": task,
            **_input(inputs[0] if inputs else {}),
            "output_names": [t.get("name") for t in outputs], "labels": _labels(outputs, archive)}


def _archive(model_bytes):
    try:
        return zipfile.ZipFile(io.BytesIO(model_bytes))
    except (zipfile.BadZipFile, NotImplementedError, EOFError, OSError):
        return None


def read_metadata(source):
    """The metadata of a ``.tflite`` (path or bytes) as a flat dict, or None when it has no metadata.

    Keys: name, description, version, author, min_parser_version, task (classify|detect|segment, from
    the outputs' content), input_name, color_space, input_mean, input_std, input_range ((low, high) of the
    real-valued input), output_names, labels (list of str, or None). Raises ``FileNotFoundError`` for a
    missing file and a one-line ``ValueError`` naming the file for a file that is not a TFLite model or
    whose metadata is corrupt.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        name, model_bytes = "<model bytes>", bytes(source)
    else:
        name = os.fspath(source)
        if not os.path.isfile(name):
            raise FileNotFoundError(f"model file not found: {name}")
        with open(name, "rb") as f:
            model_bytes = f.read()
    try:
        buffer = metadata_buffer(model_bytes)
        return None if buffer is None else summary(parse_metadata(buffer), _archive(model_bytes))
    except ValueError as exc:
        raise ValueError(f"TFLite model {name}: {one_line(exc)}") from None
