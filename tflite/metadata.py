"""TFLite Model Metadata for the kit's classifier, detector and segmenter files: what MediaPipe Tasks and the
TFLite Task Library read to preprocess the image, find the outputs and name the classes.

Schema: ``ModelMetadata`` of TensorFlow Lite Support's ``metadata_schema.fbs`` (tensorflow/tflite-support,
``tensorflow_lite_support/metadata/metadata_schema.fbs``; MediaPipe ships the same schema, version 1.5.0, as
``mediapipe/tasks/metadata/metadata_schema.fbs``), file identifier ``M001``. Its tables and field ids are
described once, as data, in ``demo_app.metadata`` (the TF-free reader); ``pack`` writes any value of that
description with ``flatbuffers.Builder``.

Why by hand: MediaPipe's Python metadata writers fail to import (their compiled ``_pywrap_metadata_version``
is missing from the mediapipe wheel) and tflite-support, which had the original writers, saw its last release
in 2023. The flatbuffer is small and needs only the schema's field ids.

What is written follows the Task Library's ImageClassifierWriter / ObjectDetectorWriter / ImageSegmenterWriter:
an input "image" (RGB or GRAYSCALE ImageProperties, NormalizationOptions, Stats of the real-valued input range);
outputs "probability" (classify), "location" / "category" / "score" / "number of detections" with the
output group "detection_result" (detect; MediaPipe finds the four outputs by these names), or
"segmentation_masks" (segment); the labels as ``labels.txt``. ``min_parser_version`` is the newest schema
version among the fields written ("1.2.0" with the detector's output group, else "1.0.0").

Attaching: the model is re-packed with TFLite's schema object API, with one more buffer holding the metadata and
a ``Model.metadata`` entry "TFLITE_METADATA" (an existing one is replaced; "min_runtime_version" and any other
entries stay). Label files are stored (uncompressed) in a zip archive appended to the flatbuffer, as the Task
Library's MetadataPopulator packs them: the interpreter ignores the trailing archive; ``zipfile``, MediaPipe and
``demo_app.metadata`` read it.
"""
import io
import warnings
import zipfile

import flatbuffers
import numpy as np
from flatbuffers import number_types as N
from tensorflow.lite.python import schema_py_generated as schema

from demo_app.metadata import (BOX_TYPES, COLOR_SPACES, COORDINATE_TYPES, FILE_TYPES, METADATA_IDENTIFIER,
                               METADATA_NAME, METADATA_TABLES, SCALARS, UNIONS)
from demo_app.runtime import TFLITE_IDENTIFIER
from tflite.detection_export import POSTPROCESS_OP

TASKS = ("classify", "detect", "segment")
LABELS_FILE = "labels.txt"
# Output ranks: class scores (1, C), masks (1, H, W, C). A detector's outputs are those of its post-processing
# op (boxes (1, N, 4) [ymin, xmin, ymax, xmax] in [0, 1], classes (1, N), scores (1, N), count (1,)).
OUTPUT_RANKS = {"classify": (2,), "segment": (4,)}
DETECTION_GROUP = "detection_result"


# --- the flatbuffer -----------------------------------------------------------------------------------------
def _child(builder, kind, value):
    """A field's value ready for its slot: a scalar as is; a string, table or vector built now (its offset)."""
    if kind in SCALARS:
        return kind, value
    if kind == "string":
        return "offset", builder.CreateString(value)
    if kind in METADATA_TABLES:
        return "offset", pack(builder, kind, value)
    element = kind[1:-1]
    if element in SCALARS:
        return "offset", builder.CreateNumpyVector(np.asarray(value, N.to_numpy_type(SCALARS[element])))
    items = [builder.CreateString(v) if element == "string" else pack(builder, element, v) for v in value]
    builder.StartVector(4, len(items), 4)
    for item in reversed(items):
        builder.PrependUOffsetTRelative(item)
    return "offset", builder.EndVector()


def pack(builder, name, value):
    """Write ``value``, a dict of table ``name``'s fields as ``demo_app.metadata.unpack`` returns them (a union
    field as ``(member name, dict)``), into ``builder``; return the table's offset."""
    slots, field_id = [], 0
    for field in METADATA_TABLES[name]:
        item = value.get(field.name)
        if item is not None and field.kind in UNIONS:
            member, inner = item
            slots += [(field_id, "ubyte", UNIONS[field.kind].index(member) + 1),
                      (field_id + 1, "offset", pack(builder, member, inner))]
        elif item is not None:
            slots.append((field_id, *_child(builder, field.kind, item)))
        field_id += 2 if field.kind in UNIONS else 1
    builder.StartObject(field_id)
    for slot, kind, item in slots:
        if kind == "offset":
            builder.PrependUOffsetTRelativeSlot(slot, item, 0)
        else:
            builder.PrependSlot(SCALARS[kind], slot, item, 0)
    return builder.EndObject()


def schema_versions(name, value):
    """The schema versions that added the fields present in ``value`` (table ``name``), nested ones included.

    Every union member and enum value this kit writes dates from schema 1.0.0, so fields decide alone.
    """
    versions = {"1.0.0"}
    for field in METADATA_TABLES[name]:
        item = value.get(field.name)
        if item is None:
            continue
        versions.add(field.since)
        element = field.kind.strip("[]")
        if field.kind in UNIONS:
            versions |= schema_versions(*item)
        elif element in METADATA_TABLES:
            for inner in item if field.kind.startswith("[") else [item]:
                versions |= schema_versions(element, inner)
    return versions


def metadata_flatbuffer(metadata):
    """A ``ModelMetadata`` dict -> the flatbuffer (identifier ``M001``), ``min_parser_version`` computed."""
    versions = schema_versions("ModelMetadata", metadata)
    metadata = {**metadata, "min_parser_version": max(versions, key=lambda v: tuple(map(int, v.split("."))))}
    builder = flatbuffers.Builder(1024)
    builder.Finish(pack(builder, "ModelMetadata", metadata), file_identifier=METADATA_IDENTIFIER)
    return bytes(builder.Output())


# --- the model ----------------------------------------------------------------------------------------------
def attach_metadata(model_bytes, metadata, files=None):
    """``model_bytes`` with the metadata flatbuffer ``metadata`` as its "TFLITE_METADATA" (replacing any) and
    ``files`` (name -> str or bytes) in a zip archive appended to the flatbuffer."""
    model_bytes = _tflite(model_bytes)
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(model_bytes, 0))
    if any(buffer.offset > 1 for buffer in model.buffers):
        raise ValueError("the model keeps its weights outside the flatbuffer (over 2 GB): expected one flatbuffer")
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(metadata, np.uint8)
    entry = next((m for m in model.metadata or () if m.name.decode() == METADATA_NAME), None)
    if entry is None:
        entry = schema.MetadataT()
        entry.name, entry.buffer = METADATA_NAME, len(model.buffers)
        model.buffers.append(buffer)
        model.metadata = [*(model.metadata or ()), entry]
    else:
        model.buffers[entry.buffer] = buffer
    builder = flatbuffers.Builder(len(model_bytes) + len(metadata) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=TFLITE_IDENTIFIER)
    out = io.BytesIO(builder.Output())
    out.seek(0, io.SEEK_END)
    if files:
        with zipfile.ZipFile(out, "a") as archive:  # appends an archive after the flatbuffer
            for name, data in files.items():  # a fixed date keeps the file reproducible
                archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data,
                                 compress_type=zipfile.ZIP_STORED)
    return out.getvalue()


def _tflite(model_bytes):
    model_bytes = bytes(model_bytes)
    if model_bytes[4:8] != TFLITE_IDENTIFIER:
        raise ValueError("model_bytes is not a TFLite model: expected a .tflite flatbuffer (identifier 'TFL3')")
    return model_bytes


def _io(model_bytes):
    """Input shapes, output shapes, the input's uint8 quantization (scale, zero point; None for other types) and
    whether the outputs are the detection post-processing op's, in its order."""
    model = schema.Model.GetRootAs(_tflite(model_bytes), 0)
    subgraph = model.Subgraphs(0)
    tensors = [subgraph.Tensors(i) for i in range(subgraph.TensorsLength())]
    shapes = [tuple(t.Shape(j) for j in range(t.ShapeLength())) for t in tensors]
    inputs = [subgraph.Inputs(i) for i in range(subgraph.InputsLength())]
    outputs = [subgraph.Outputs(i) for i in range(subgraph.OutputsLength())]
    ops = (subgraph.Operators(i) for i in range(subgraph.OperatorsLength()))
    postprocess = [op.OutputsAsNumpy().tolist() for op in ops
                   if model.OperatorCodes(op.OpcodeIndex()).CustomCode() == POSTPROCESS_OP.encode()]
    image = tensors[inputs[0]] if inputs else None
    params = image.Quantization() if image is not None and image.Type() == schema.TensorType.UINT8 else None
    quantization = (float(params.Scale(0)), int(params.ZeroPoint(0))) if params and params.ScaleLength() else None
    return [shapes[i] for i in inputs], [shapes[i] for i in outputs], quantization, postprocess == [outputs]


def _check_raw_pixels(quantization, mean, std):
    """MediaPipe feeds a uint8 input raw pixels (it ignores the normalization): warn when the input's
    quantization does not take pixels 0 and 255 to the normalized values the model expects."""
    scale, zero_point = quantization
    pixels = np.array([[0.0], [255.0]])
    expected = (pixels - np.asarray(mean, float)) / np.asarray(std, float)
    seen = scale * (pixels - zero_point)
    if np.abs(expected - seen).max() > 2 * scale:
        warnings.warn(f"the uint8 input's quantization (scale {scale:.4g}, zero point {zero_point}) takes pixels "
                      f"0 and 255 to {seen[0, 0]:.4g} and {seen[1, 0]:.4g}, but the normalization to "
                      f"{expected[0].tolist()} and {expected[1].tolist()}: MediaPipe, which feeds raw pixels to "
                      "quantized inputs, will not see what the model was calibrated on", stacklevel=3)


def _check(task, inputs, outputs, is_detector, labels):
    if task not in TASKS:
        raise ValueError(f"task {task!r} is not supported: expected one of {', '.join(TASKS)}")
    if len(inputs) != 1 or len(inputs[0]) != 4 or inputs[0][3] not in (1, 3):
        raise ValueError(f"model inputs {inputs}: expected one image input (1, height, width, 1 or 3)")
    if task == "detect" and not is_detector:
        raise ValueError(f"detect model: expected the outputs of one {POSTPROCESS_OP} op, in its order "
                         "(boxes, classes, scores, count), as tflite.detection_export writes them")
    if task != "detect" and tuple(len(shape) for shape in outputs) != OUTPUT_RANKS[task]:
        raise ValueError(f"{task} model outputs {outputs}: expected outputs of ranks {OUTPUT_RANKS[task]}")
    for i, label in enumerate(labels or ()):
        if not isinstance(label, str) or not label or len(label.splitlines()) != 1:
            raise ValueError(f"labels[{i}] is {label!r}: expected a non-empty name without line breaks")
    if labels is not None and task != "detect" and len(labels) != outputs[0][-1]:
        raise ValueError(f"{len(labels)} labels given but the {task} model scores {outputs[0][-1]} classes")


def _image_input(mean, std, input_range, channels):
    """The input's TensorMetadata: image properties, normalization, real-valued range."""
    mean, std = [float(v) for v in mean], [float(v) for v in std]
    if len(mean) != len(std) or len(mean) not in (1, channels) or not all(std):
        raise ValueError(f"input_mean {mean} and input_std {std}: expected 1 or {channels} values each, std non-zero")
    if input_range is None:  # where the normalization takes pixels 0 and 255
        low = [(0.0 - m) / s for m, s in zip(mean, std)]
        high = [(255.0 - m) / s for m, s in zip(mean, std)]
    else:
        low, high = [float(input_range[0])], [float(input_range[1])]
    return {"name": "image", "description": "Input image to be processed.",
            "content": {"content_properties": ("ImageProperties", {
                "color_space": COLOR_SPACES.index("RGB" if channels == 3 else "GRAYSCALE")})},
            "process_units": [{"options": ("NormalizationOptions", {"mean": mean, "std": std})}],
            "stats": {"min": low, "max": high}}


def _labels_file(kind, labels):
    if labels is None:
        return None
    return [{"name": LABELS_FILE, "description": "Labels for the model's classes.", "type": FILE_TYPES.index(kind)}]


def _tensor(name, description, properties=("FeatureProperties", {}), dims=None, **fields):
    """An output's TensorMetadata; ``dims`` = (min, max): the axes that hold one item (Content.range)."""
    content = {"content_properties": properties}
    if dims is not None:
        content["range"] = {"min": dims[0], "max": dims[1]}
    return {"name": name, "description": description, "content": content, **fields}


def _outputs(task, labels):
    """Output TensorMetadata list and output tensor groups of ``task``."""
    if task == "classify":
        return [_tensor("probability", "Probabilities of the labels respectively.",
                        associated_files=_labels_file("TENSOR_AXIS_LABELS", labels))], None
    if task == "segment":
        return [_tensor("segmentation_masks", "Masks over the target objects with high accuracy.",
                        ("ImageProperties", {"color_space": COLOR_SPACES.index("GRAYSCALE")}), dims=(1, 2),
                        dimension_names=["batch", "height", "width", "mask"],
                        associated_files=_labels_file("TENSOR_AXIS_LABELS", labels))], None
    box = {"index": [1, 0, 3, 2], "type": BOX_TYPES.index("BOUNDARIES"),  # [ymin, xmin, ymax, xmax]
           "coordinate_type": COORDINATE_TYPES.index("RATIO")}
    outputs = [_tensor("location", "The locations of the detected boxes.", ("BoundingBoxProperties", box), (2, 2)),
               _tensor("category", "The categories of the detected boxes.", dims=(2, 2),
                       associated_files=_labels_file("TENSOR_VALUE_LABELS", labels)),
               _tensor("score", "The scores of the detected boxes.", dims=(2, 2)),
               _tensor("number of detections", "The number of the detected boxes.")]
    return outputs, [{"name": DETECTION_GROUP, "tensor_names": ["location", "category", "score"]}]


def add_metadata(model_bytes, *, name, description, version, task, labels=None, input_mean=(0.0,),
                 input_std=(1.0,), input_range=None, author=None):
    """``model_bytes`` (a ``.tflite``) with TFLite Model Metadata and, given ``labels``, a packed ``labels.txt``.

    Args:
        task: ``classify`` (one (1, C) output), ``detect`` (the four outputs of ``TFLite_Detection_PostProcess``
            in its order, ``tflite.detection_export``) or ``segment`` (one (1, H, W, C) output).
        labels: class names, one per class (detect: per class index the post-processing op outputs).
        input_mean, input_std: per-channel (or one) normalization ``(pixel - mean) / std`` that turns a pixel
            in [0, 255] into the model's real-valued input: the kit's models take [0, 255] (0, 1);
            ``keras.applications`` MobileNetV2 takes [-1, 1] (127.5, 127.5). A quantized (uint8/int8) input
            gets its float model's normalization: the demo normalizes, then quantizes with the tensor's scale
            and zero point; MediaPipe ignores it and feeds raw pixels (a warning says when the uint8 input's
            quantization does not take them to the normalized values).
        input_range: ``(low, high)`` of the real-valued input (the input's Stats); by default where the
            normalization takes pixels 0 and 255.
    """
    inputs, outputs, quantization, is_detector = _io(model_bytes)
    _check(task, inputs, outputs, is_detector, labels)
    image = _image_input(input_mean, input_std, input_range, inputs[0][3])
    if quantization is not None:
        _check_raw_pixels(quantization, input_mean, input_std)
    tensors, groups = _outputs(task, labels)
    subgraph = {"input_tensor_metadata": [image],
                "output_tensor_metadata": tensors, "output_tensor_groups": groups}
    metadata = {"name": name, "description": description, "version": version, "author": author,
                "subgraph_metadata": [subgraph]}
    files = None if labels is None else {LABELS_FILE: "".join(f"{label}\n" for label in labels)}
    return attach_metadata(model_bytes, metadata_flatbuffer(metadata), files)
