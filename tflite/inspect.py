"""Read a TFLite flatbuffer straight from its schema: its operators, inputs and outputs,
metadata, and where its bytes go.

This does not go through an interpreter (which would replace delegated ops by
``DELEGATE``), so it tells exactly which kernels a file asks of the runtime.

``inspect_model(model_bytes)`` returns a JSON-ready report (the machine-readable side of
``mobilekit inspect``); ``inspect_text(report)`` renders it for a person.
"""
import io
import os
import struct
import zipfile

from tensorflow.lite.python import schema_py_generated as schema

from demo_app.metadata import read_metadata

_BUILTIN_NAMES = {code: name for name, code in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
_CUSTOM = schema.BuiltinOperator.CUSTOM
_DTYPES = {code: name.lower() for name, code in vars(schema.TensorType).items() if not name.startswith("_")}
_IDENTIFIER = b"TFL3"
# A zip's end-of-central-directory record: signature, then 18 bytes, then a comment of at most 64 KiB.
_EOCD = struct.Struct("<4s4H2LH")
_EOCD_SIGNATURE = b"PK\x05\x06"
_LOCAL_HEADER_SIGNATURE = b"PK\x03\x04"


def _opcode_name(opcode):
    """``CONV_2D`` for a builtin, ``CUSTOM:<name>`` for a custom op (as ``operator_names`` lists them)."""
    # Codes above 127 live in BuiltinCode; DeprecatedBuiltinCode holds the rest.
    code = max(opcode.BuiltinCode(), opcode.DeprecatedBuiltinCode())
    if code == _CUSTOM:
        return f"CUSTOM:{(opcode.CustomCode() or b'').decode('utf-8', 'replace')}"
    return _BUILTIN_NAMES.get(code, f"BUILTIN_{code}")


def operator_names(model_bytes):
    """Sorted names of the operators a model uses; custom ops appear as ``CUSTOM:<name>``."""
    model = schema.Model.GetRootAsModel(model_bytes, 0)
    return sorted({_opcode_name(model.OperatorCodes(i)) for i in range(model.OperatorCodesLength())})


def custom_operators(model_bytes):
    """The custom (non-builtin, e.g. Flex) operators a model needs; empty when builtin-only."""
    return [name for name in operator_names(model_bytes) if name.startswith("CUSTOM:")]


QUANTIZATION_OPS = ("QUANTIZE", "DEQUANTIZE")


def float_operators(model_bytes):
    """Names of the operators of the main subgraph, other than QUANTIZE and DEQUANTIZE, that read a
    float32 tensor: empty for an integer-only file (every op between the input's and the output's
    quantization in int8)."""
    model = schema.Model.GetRootAsModel(model_bytes, 0)
    graph = model.Subgraphs(0)
    names = []
    for i in range(graph.OperatorsLength()):
        operator = graph.Operators(i)
        name = _opcode_name(model.OperatorCodes(operator.OpcodeIndex()))
        inputs = [operator.Inputs(k) for k in range(operator.InputsLength())]
        if name not in QUANTIZATION_OPS and any(
                index >= 0 and graph.Tensors(index).Type() == schema.TensorType.FLOAT32 for index in inputs):
            names.append(name)
    return names


class _Corrupt(Exception):
    """An inconsistency found while reading; ``inspect_model`` turns it into its one-line ValueError."""


def _count(length, limit, what, unit="entries"):
    """A vector's length, refused when the file could not hold that many elements."""
    if not 0 <= length <= limit:
        raise _Corrupt(f"{what} claims {length} {unit}, more than the file holds")
    return length


def _text(raw):
    return raw.decode("utf-8", "replace") if raw is not None else None


def _quantization(tensor):
    """``None`` for an unquantized tensor; else ``scale``/``zero_point`` (per-tensor) or, when the
    tensor has several scales, ``per_axis``: their ``count``, the quantized ``axis`` and their range."""
    params = tensor.Quantization()
    if params is None or params.ScaleLength() == 0:
        return None
    scales = params.ScaleAsNumpy()
    zero_points = params.ZeroPointAsNumpy() if params.ZeroPointLength() else [0]
    if len(scales) == 1:
        return {"scale": float(scales[0]), "zero_point": int(zero_points[0]), "per_axis": None}
    return {"scale": None, "zero_point": None,
            "per_axis": {"count": int(len(scales)), "axis": int(params.QuantizedDimension()),
                         "scale_min": float(scales.min()), "scale_max": float(scales.max())}}


def _tensor_info(subgraph, index):
    """Name, shape, shape signature (-1 for a dynamic dimension), dtype and quantization of a tensor."""
    tensor = subgraph.Tensors(index)
    shape = [int(d) for d in tensor.ShapeAsNumpy()] if tensor.ShapeLength() else []
    signature = [int(d) for d in tensor.ShapeSignatureAsNumpy()] if tensor.ShapeSignatureLength() else list(shape)
    return {"name": _text(tensor.Name()), "index": index, "shape": shape, "shape_signature": signature,
            "dtype": _DTYPES.get(tensor.Type(), f"type_{tensor.Type()}"), "quantization": _quantization(tensor)}


def _buffer_bytes(model, index, size):
    """The size of buffer ``index``'s data, checked to lie inside the file."""
    buffer = model.Buffers(index)
    if buffer.Offset() > 1:  # data stored after the flatbuffer (models over 2 GiB)
        if buffer.Offset() + buffer.Size() > size:
            raise _Corrupt(f"buffer {index} points past the end of the file")
        return int(buffer.Size())
    return _count(buffer.DataLength(), size, f"buffer {index}", "bytes")


def _metadata_text(model, index):
    """A short printable value (e.g. ``min_runtime_version``'s ``1.14.0``), else ``None``."""
    buffer = model.Buffers(index)
    if buffer.Offset() > 1 or not 0 < buffer.DataLength() <= 64:
        return None
    raw = buffer.DataAsNumpy().tobytes().split(b"\0", 1)[0]
    return raw.decode("ascii") if raw and all(32 <= c < 127 for c in raw) else None


def _appended_zip(data, size):
    """``(offset, names)`` of a zip appended after the flatbuffer (TFLite Model Metadata's associated
    files, e.g. a label map), or ``None``. Found from the zip's end record, as ``zipfile`` does."""
    tail_start = max(0, size - _EOCD.size - 0xFFFF)
    tail = bytes(data[tail_start:])
    position = tail.rfind(_EOCD_SIGNATURE)
    while position >= 0:
        record = tail[position:position + _EOCD.size]
        if len(record) == _EOCD.size:
            _, _, _, _, _, directory_size, directory_offset, comment = _EOCD.unpack(record)
            end = tail_start + position
            start = end - directory_size - directory_offset
            if end + _EOCD.size + comment == size and 0 < start and data[start:start + 4] == _LOCAL_HEADER_SIGNATURE:
                try:
                    with zipfile.ZipFile(io.BytesIO(bytes(data[start:]))) as archive:
                        return start, archive.namelist()
                except (zipfile.BadZipFile, ValueError, OSError):
                    return None
        position = tail.rfind(_EOCD_SIGNATURE, 0, position)
    return None


def _read(data, size):
    if size < 8:
        raise _Corrupt(f"it is {size} bytes long, too short for a flatbuffer")
    if bytes(data[4:8]) != _IDENTIFIER:
        raise _Corrupt(f"no {_IDENTIFIER.decode()} file identifier at bytes 4-8 (found {bytes(data[4:8])!r})")
    if int.from_bytes(bytes(data[:4]), "little") >= size:
        raise _Corrupt("its root table lies past the end of the file")
    model = schema.Model.GetRootAsModel(data, 0)
    tables = size // 4  # a vector of tables holds a 4-byte offset per entry
    n_buffers = _count(model.BuffersLength(), tables, "the buffer list")
    opcodes = [_opcode_name(model.OperatorCodes(i))
               for i in range(_count(model.OperatorCodesLength(), tables, "the operator code list"))]

    def buffer_index(index, what):
        if not 0 <= index < n_buffers:
            raise _Corrupt(f"{what} refers to buffer {index} of {n_buffers}")
        return index

    metadata, metadata_buffers = [], set()
    for i in range(_count(model.MetadataLength(), tables, "the metadata list")):
        entry = model.Metadata(i)
        index = buffer_index(entry.Buffer(), f"metadata {i}")
        metadata_buffers.add(index)
        metadata.append({"name": _text(entry.Name()), "buffer": index, "bytes": _buffer_bytes(model, index, size),
                         "text": _metadata_text(model, index)})
    for i in range(_count(model.MetadataBufferLength(), tables, "the metadata buffer list")):  # deprecated field
        metadata_buffers.add(buffer_index(model.MetadataBuffer(i), "the metadata buffer list"))

    claimed = {}  # buffer -> (op type, dtype, bytes) of the first op that reads it
    subgraphs = []
    graph_detail = {"quantization_parameters": 0, "tensor_names": 0}
    for s in range(_count(model.SubgraphsLength(), tables, "the subgraph list")):
        subgraph = model.Subgraphs(s)
        n_tensors = _count(subgraph.TensorsLength(), tables, f"subgraph {s}'s tensor list")
        for t in range(n_tensors):
            tensor = subgraph.Tensors(t)
            graph_detail["tensor_names"] += len(tensor.Name() or b"")
            params = tensor.Quantization()
            if params is not None:  # float32 scale, min, max; int64 zero point
                graph_detail["quantization_parameters"] += 4 * (params.ScaleLength() + params.MinLength()
                                                                + params.MaxLength()) + 8 * params.ZeroPointLength()

        def tensor_index(index, what):
            if not -1 <= index < n_tensors:
                raise _Corrupt(f"{what} refers to tensor {index} of {n_tensors} in subgraph {s}")
            return index

        operators = {}
        for o in range(_count(subgraph.OperatorsLength(), tables, f"subgraph {s}'s operator list")):
            op = subgraph.Operators(o)
            if not 0 <= op.OpcodeIndex() < len(opcodes):
                raise _Corrupt(f"operator {o} of subgraph {s} has operator code {op.OpcodeIndex()} of {len(opcodes)}")
            name = opcodes[op.OpcodeIndex()]
            entry = operators.setdefault(name, {"name": name, "builtin": not name.startswith("CUSTOM:"),
                                                "count": 0, "weight_bytes": 0})
            entry["count"] += 1
            reads = [op.Inputs(k) for k in range(_count(op.InputsLength(), size, "an operator's inputs"))]
            n_intermediates = _count(op.IntermediatesLength(), size, "an operator's intermediates")
            reads += [op.Intermediates(k) for k in range(n_intermediates)]
            for index in reads:
                if tensor_index(index, f"operator {o}") < 0:  # an omitted optional input
                    continue
                tensor = subgraph.Tensors(index)
                buffer = buffer_index(tensor.Buffer(), f"tensor {index} of subgraph {s}")
                if buffer in claimed or buffer in metadata_buffers:
                    continue
                n_bytes = _buffer_bytes(model, buffer, size)
                if n_bytes:
                    claimed[buffer] = (name, _DTYPES.get(tensor.Type(), f"type_{tensor.Type()}"), n_bytes)
                    entry["weight_bytes"] += n_bytes
        subgraphs.append({
            "index": s, "name": _text(subgraph.Name()), "tensors": n_tensors,
            "operators": list(operators.values()),
            "inputs": [_tensor_info(subgraph, tensor_index(subgraph.Inputs(k), "an input"))
                       for k in range(_count(subgraph.InputsLength(), size, "the input list"))],
            "outputs": [_tensor_info(subgraph, tensor_index(subgraph.Outputs(k), "an output"))
                        for k in range(_count(subgraph.OutputsLength(), size, "the output list"))]})

    signatures = []
    for i in range(_count(model.SignatureDefsLength(), tables, "the signature list")):
        signature = model.SignatureDefs(i)
        s = signature.SubgraphIndex()
        if not 0 <= s < len(subgraphs):
            raise _Corrupt(f"signature {i} refers to subgraph {s} of {len(subgraphs)}")

        def names(get, length, s=s):
            tensors, found = model.Subgraphs(s), {}
            for k in range(_count(length, tables, "a signature's tensor list")):
                index = get(k).TensorIndex()
                if not 0 <= index < subgraphs[s]["tensors"]:
                    raise _Corrupt(f"signature {i} refers to tensor {index} of subgraph {s}")
                found[_text(get(k).Name())] = _text(tensors.Tensors(index).Name())
            return found

        signatures.append({"key": _text(signature.SignatureKey()), "subgraph": s,
                           "inputs": names(signature.Inputs, signature.InputsLength()),
                           "outputs": names(signature.Outputs, signature.OutputsLength())})

    weights_by_op, weights_by_dtype = {}, {}
    for op_name, dtype, n_bytes in claimed.values():
        weights_by_op[op_name] = weights_by_op.get(op_name, 0) + n_bytes
        weights_by_dtype[dtype] = weights_by_dtype.get(dtype, 0) + n_bytes
    metadata_bytes = sum(_buffer_bytes(model, b, size) for b in metadata_buffers)
    unused_bytes = sum(_buffer_bytes(model, b, size) for b in range(n_buffers)
                       if b not in claimed and b not in metadata_buffers)
    appended = _appended_zip(data, size)
    associated = None if appended is None else {"offset": appended[0], "bytes": size - appended[0],
                                                "names": appended[1]}
    parts = {"weights": sum(weights_by_op.values()), "metadata": metadata_bytes, "unused_buffers": unused_bytes,
             "associated_files": associated["bytes"] if associated else 0}
    parts["graph"] = size - sum(parts.values())
    if parts["graph"] < 0:
        raise _Corrupt("its buffers claim more bytes than the file holds")
    main = subgraphs[0] if subgraphs else {"operators": [], "inputs": [], "outputs": []}
    return {
        "file_size": size, "version": int(model.Version()), "description": _text(model.Description()),
        "operators": main["operators"], "inputs": main["inputs"], "outputs": main["outputs"],
        "subgraphs": subgraphs, "signatures": signatures, "metadata": metadata,
        "associated_files": associated,
        "size": {"file": size, "parts": parts,
                 "graph_detail": graph_detail,
                 "weights_by_op": dict(sorted(weights_by_op.items(), key=lambda item: -item[1])),
                 "weights_by_dtype": dict(sorted(weights_by_dtype.items(), key=lambda item: -item[1]))},
    }


def inspect_model(model_bytes, name=None):
    """Report what a ``.tflite`` file holds, read from its flatbuffer (no interpreter).

    Args:
        model_bytes: the file's bytes, or a path to it.
        name: what error messages call the file (defaults to the path, or ``the data``).

    Returns a JSON-ready dict:
        ``operators``: the main subgraph's op types in order of first use, each with ``name``
            (``CONV_2D``; a custom op as ``CUSTOM:<code>``), ``builtin``, ``count`` and
            ``weight_bytes``; ``subgraphs`` lists every subgraph (``index``, ``name``, ``tensors``,
            ``operators``, ``inputs``, ``outputs``; the first is the main one).
        ``inputs``/``outputs``: the main subgraph's tensors: ``name``, ``index``, ``shape``,
            ``shape_signature`` (-1 for a dynamic dimension), ``dtype`` and ``quantization``
            (``None``, or ``scale``/``zero_point``, or ``per_axis`` with the ``count`` of scales and
            the quantized ``axis`` when there are several).
        ``signatures``: each signature's key, subgraph, and input/output names -> tensor names.
        ``metadata``: ``Model.metadata`` entries (``name``, ``buffer``, ``bytes``, and ``text`` for
            a short printable value such as ``min_runtime_version``'s).
        ``model_metadata``: ``None``, or the TFLite Model Metadata as ``demo_app.metadata.read_metadata``
            reads it (name, task, input normalization, output names, labels).
        ``associated_files``: ``None``, or the zip appended after the flatbuffer (TFLite Model
            Metadata's associated files): its ``offset``, ``bytes`` and member ``names``.
        ``size``: ``file`` (bytes) and ``parts``, which add up to it exactly: ``weights`` (constant
            buffers read by operators), ``metadata`` (buffers of metadata entries),
            ``unused_buffers`` (other constant data no operator reads), ``associated_files`` (the
            appended zip) and ``graph`` (everything else: the flatbuffer's tables, tensors,
            operators, strings, vector headers and padding; ``graph_detail`` gives the bytes of two
            parts of it: the tensors' ``quantization_parameters`` (an int8 model's per-channel scales
            and int64 zero points are often most of its graph) and ``tensor_names``).
            ``weights_by_op`` splits the weights by op type, ``weights_by_dtype`` by the dtype of
            the tensor that holds them.

    A buffer read by several operators (or tensors) is counted once, for the first operator that
    reads it (subgraphs in order, operators in execution order) and with that tensor's dtype, so
    the weights are never counted twice.

    Raises:
        ValueError: ``<name> is not a TFLite model: <reason>``, one line, for anything that is not a
            readable TFLite flatbuffer.
    """
    if isinstance(model_bytes, (str, os.PathLike)):
        name = name or os.fspath(model_bytes)
        with open(model_bytes, "rb") as f:
            model_bytes = f.read()
    name = name or "the data"
    try:
        data = memoryview(model_bytes).cast("B")
    except TypeError as error:
        raise ValueError(f"{name} is not a TFLite model: expected bytes, got {type(model_bytes).__name__}") from error
    try:
        report = _read(bytes(data), len(data))
    except _Corrupt as error:
        raise ValueError(f"{name} is not a TFLite model: {error}") from None
    except (struct.error, IndexError, TypeError, ValueError, OverflowError, UnicodeDecodeError, KeyError) as error:
        detail = str(error) if isinstance(error, struct.error) else f"{type(error).__name__}: {error}"
        raise ValueError(f"{name} is not a TFLite model: its flatbuffer is truncated or corrupt "
                         f"({detail})".replace("\n", " ")) from None
    try:
        report["model_metadata"] = read_metadata(bytes(data))
    except ValueError as error:  # "TFLite model <model bytes>: <reason>"
        raise ValueError(f"{name} is not a TFLite model: {str(error).partition(': ')[2]}") from None
    return report


def _human(n_bytes):
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.1f} {unit}"
    return f"{n_bytes} B"


def _percent(part, whole):
    return f"{100.0 * part / whole:5.1f}%" if whole else "    -"


def _tensor_line(tensor):
    shape = ",".join(str(d) for d in tensor["shape"])
    line = f"  {tensor['name']}  {tensor['dtype']}[{shape}]"
    if tensor["shape_signature"] != tensor["shape"]:
        line += f" (signature [{','.join(str(d) for d in tensor['shape_signature'])}])"
    quantization = tensor["quantization"]
    if quantization and quantization["per_axis"]:
        axis = quantization["per_axis"]
        line += f"  per-axis scales: {axis['count']} on axis {axis['axis']}"
    elif quantization:
        line += f"  scale {quantization['scale']:.6g} zero point {quantization['zero_point']}"
    return line


def _operator_table(operators, file_size):
    rows = sorted(operators, key=lambda op: (-op["weight_bytes"], -op["count"], op["name"]))
    width = max([len("op type")] + [len(op["name"]) for op in rows])
    lines = [f"  {'op type':<{width}}  {'count':>5}  {'weights':>10}  {'of file':>7}"]
    for op in rows:
        weights = _human(op["weight_bytes"]) if op["weight_bytes"] else "-"
        share = _percent(op["weight_bytes"], file_size) if op["weight_bytes"] else ""
        lines.append(f"  {op['name']:<{width}}  {op['count']:>5}  {weights:>10}  {share:>7}".rstrip())
    return lines


def inspect_text(report):
    """A readable rendering of ``inspect_model``'s report: operators (with counts and weight bytes),
    inputs and outputs, metadata, and the size breakdown with percentages."""
    size = report["size"]["file"]
    subgraphs = report["subgraphs"]
    lines = [f"TFLite model: {size:,} bytes ({_human(size)}), schema version {report['version']}, "
             f"{len(subgraphs)} subgraph{'s' if len(subgraphs) != 1 else ''}"]
    for subgraph in subgraphs:
        title = "main subgraph" if subgraph["index"] == 0 else f"subgraph {subgraph['index']}"
        if subgraph["name"]:
            title += f" '{subgraph['name']}'"
        n_ops = sum(op["count"] for op in subgraph["operators"])
        lines += ["", f"Operators, {title}: {n_ops} ops of {len(subgraph['operators'])} types"]
        lines += _operator_table(subgraph["operators"], size)
    lines += ["", "Inputs"] + [_tensor_line(t) for t in report["inputs"]]
    lines += ["Outputs"] + [_tensor_line(t) for t in report["outputs"]]
    lines += ["", "Metadata"]
    width = max([0] + [len(entry["name"] or "") for entry in report["metadata"]])
    for entry in report["metadata"]:
        text = f"  {entry['text']!r}" if entry["text"] else ""
        lines.append(f"  {entry['name'] or '?':<{width}}  {_human(entry['bytes']):>10}{text}")
    if not report["metadata"]:
        lines.append("  (none)")
    described = report.get("model_metadata")
    if described:
        labels = described["labels"] or []
        lines.append(f"  model metadata: {described['name']!r} version {described['version']!r}, task "
                     f"{described['task']}, input {described['color_space']} (pixel - {described['input_mean']}) / "
                     f"{described['input_std']}, outputs {', '.join(map(str, described['output_names']))}, "
                     f"{len(labels)} labels" + (f" ({', '.join(labels[:5])}{', ...' if len(labels) > 5 else ''})"
                                                if labels else ""))
    associated = report["associated_files"]
    if associated:
        lines.append(f"  associated files (zip appended at byte {associated['offset']:,}, "
                     f"{_human(associated['bytes'])}): {', '.join(associated['names']) or '(empty)'}")
    lines += ["", "Size"]
    parts = report["size"]["parts"]
    labels = {"weights": "weights", "graph": "graph (tables, tensors, ops, strings)",
              "metadata": "metadata buffers", "unused_buffers": "buffers no op reads",
              "associated_files": "associated files (zip)"}
    width = max(len(label) for label in labels.values())
    for key in sorted(parts, key=lambda k: -parts[k]):
        if parts[key] or key in ("weights", "graph"):
            line = f"  {labels.get(key, key):<{width}}  {parts[key]:>12,} B  {_percent(parts[key], size)}"
            if key == "weights" and report["size"]["weights_by_dtype"]:
                line += "  (" + ", ".join(f"{dtype} {_human(n)}" for dtype, n in
                                          report["size"]["weights_by_dtype"].items()) + ")"
            if key == "graph" and report["size"].get("graph_detail"):
                detail = report["size"]["graph_detail"]
                line += (f"  (quantization parameters {_human(detail['quantization_parameters'])}, "
                         f"tensor names {_human(detail['tensor_names'])})")
            lines.append(line)
    lines.append(f"  {'total':<{width}}  {size:>12,} B  {_percent(size, size)}")
    return "\n".join(lines)
