"""Weight files that keep the savings of binary layers: sign kernels stored as bits.

A binary layer (``keras_layers.binary``, sign kernel quantizer) computes with
s * sign(W), s = mean |W| over the scale's axes (alpha, or Bi-Real's magnitude), or with
sign(W) alone. So its kernel is stored as one bit per entry (``np.packbits``, 1 for W >= 0)
plus one float32 per output channel when scaled: 32x smaller than float32 for the kernel
bits. Every other weight is stored as float32. Loading writes W = s * sign(W) (or sign(W))
back, which has the same signs and the same per-channel mean magnitudes, so the layers
compute the same outputs.

File layout: ``MKBITS1\\n``, a 4-byte little-endian header length, a JSON header listing
each weight (name, shape, encoding, offset and byte count of its blobs), then the blobs.
"""
import json
import math
import struct

import numpy as np

from keras_layers import quantizers
from keras_layers.binary import QuantDepthwiseConv2D, QuantLayer
from models.files import write_bytes
from models.profile import leaf_layers

MAGIC = b"MKBITS1\n"


def _scale_axes(layer):
    """Axes of the kernel that the stored per-channel magnitude is the mean over (None: no scale)."""
    if layer.scale is None and not layer.kernel_quantizer.per_channel_scale:
        return None
    if layer.scale is not None and isinstance(layer, QuantDepthwiseConv2D):
        return (0, 1)
    return tuple(range(len(layer.kernel.shape) - 1))


def is_packable(layer):
    """True for a built binary layer whose kernel quantizer is a sign (one bit per entry)."""
    return isinstance(layer, QuantLayer) and quantizers.is_sign(layer.kernel_quantizer) and layer.built


def _weights(model):
    """(layer, weight, packed?) for every weight of the model, in a stable order."""
    for layer in leaf_layers(model):
        packable = is_packable(layer)
        for weight in layer.weights:
            yield layer, weight, packable and weight is layer.kernel


def _weight_name(layer, weight):
    return f"{layer.name}/{weight.name.split('/')[-1].split(':')[0]}"


def pack(model):
    """The bit-packed weight file of ``model`` as bytes."""
    entries, blobs, offset = [], [], 0
    for layer, weight, packed in _weights(model):
        value = np.asarray(weight, np.float32)
        entry = {"name": _weight_name(layer, weight), "shape": list(value.shape)}
        if packed:
            axes = _scale_axes(layer)
            parts = [np.packbits(value.reshape(-1) >= 0).tobytes()]
            if axes is not None:
                parts.append(np.abs(value).mean(axis=axes).astype("<f4").tobytes())
            entry.update(encoding="sign_bits", scale_axes=None if axes is None else list(axes))
        else:
            parts = [value.astype("<f4").tobytes()]
            entry.update(encoding="float32")
        entry["blobs"] = [[offset + sum(map(len, parts[:i])), len(part)] for i, part in enumerate(parts)]
        offset += sum(map(len, parts))
        entries.append(entry)
        blobs += parts
    header = json.dumps({"weights": entries}).encode()
    return MAGIC + struct.pack("<I", len(header)) + header + b"".join(blobs)


def save(model, path):
    """Write ``model``'s weights to ``path`` with binary kernels bit-packed; return the file size."""
    data = pack(model)
    write_bytes(path, data)
    return len(data)


def _read_header(data, source):
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 4:
        raise ValueError(f"{source} is not a bit-packed weight file (no {MAGIC[:-1].decode()} header)")
    (length,) = struct.unpack_from("<I", data, len(MAGIC))
    start = len(MAGIC) + 4
    try:
        header = json.loads(data[start:start + length])
    except ValueError:
        raise ValueError(f"{source} has a corrupt header") from None
    return header["weights"], data[start + length:]


def unpack(model, data, source="weight data"):
    """Load the weights of a ``pack`` output into ``model`` (same architecture, built)."""
    entries, body = _read_header(data, source)
    targets = list(_weights(model))
    if len(entries) != len(targets):
        raise ValueError(f"{source} holds {len(entries)} weights, the model has {len(targets)}")
    values = []
    for entry, (layer, weight, _) in zip(entries, targets):
        shape = tuple(int(d) for d in weight.shape)
        if entry["name"] != _weight_name(layer, weight) or tuple(entry["shape"]) != shape:
            raise ValueError(f"{source}: weight {entry['name']} {tuple(entry['shape'])} does not match the model's "
                             f"{_weight_name(layer, weight)} {shape}")
        blobs = [body[start:start + size] for start, size in entry["blobs"]]
        if any(len(blob) != size for blob, (_, size) in zip(blobs, entry["blobs"])):
            raise ValueError(f"{source} is truncated")
        if entry["encoding"] == "sign_bits":
            bits = np.unpackbits(np.frombuffer(blobs[0], np.uint8), count=math.prod(shape)).reshape(shape)
            value = np.where(bits == 1, 1.0, -1.0).astype(np.float32)
            if entry["scale_axes"] is not None:
                scale_shape = [1 if axis in entry["scale_axes"] else d for axis, d in enumerate(shape)]
                value = value * np.frombuffer(blobs[1], "<f4").reshape(scale_shape)
        else:
            value = np.frombuffer(blobs[0], "<f4").reshape(shape)
        values.append(value)
    for (_, weight, _), value in zip(targets, values):
        weight.assign(value)


def load(model, path):
    """Load a file written by ``save`` into ``model``."""
    with open(path, "rb") as f:
        unpack(model, f.read(), source=path)


def binary_kernel_sizes(model):
    """Bytes of the binary layers' kernels: ``{"float32_bytes", "packed_bytes", "scale_bytes", "ratio"}``.

    ``ratio`` is float32 bytes over packed bits (32 when the kernels' sizes are multiples of 8);
    the per-channel scales are reported apart.
    """
    float_bytes = packed_bytes = scale_bytes = 0
    for layer, weight, packed in _weights(model):
        if packed:
            entries = math.prod(weight.shape)
            float_bytes += 4 * entries
            packed_bytes += -(-entries // 8)
            axes = _scale_axes(layer)
            if axes is not None:
                scale_bytes += 4 * entries // math.prod(weight.shape[a] for a in axes)
    return {"float32_bytes": float_bytes, "packed_bytes": packed_bytes, "scale_bytes": scale_bytes,
            "ratio": float_bytes / packed_bytes if packed_bytes else 1.0}
