"""Caffe ``.caffemodel`` files read with a minimal protobuf wire-format decoder.

A ``.caffemodel`` is one serialised ``caffe.NetParameter`` message (BVLC caffe's
``src/caffe/proto/caffe.proto``). No compiled ``caffe.proto`` and no Caffe are needed:
this module decodes the protobuf wire format (varint, 64-bit, length-delimited and
32-bit fields; packed and unpacked repeated fields) and reads only these fields:

- ``NetParameter``: ``layer = 100`` (``LayerParameter``) and the deprecated
  ``layers = 2`` (``V1LayerParameter``, which the 2014 BVLC files use);
- ``LayerParameter``: ``name = 1``, ``type = 2`` (a string), ``blobs = 7``;
- ``V1LayerParameter``: ``name = 4``, ``type = 5`` (an enum, mapped to the string
  that Caffe's ``UpgradeV1LayerType`` gives it), ``blobs = 6``;
- ``BlobProto``: ``shape = 7`` (``BlobShape``, ``dim = 1``), the legacy ``num = 1``,
  ``channels = 2``, ``height = 3``, ``width = 4``, ``data = 5`` (float) and
  ``double_data = 8`` (used instead of ``data`` when present, as Caffe does).

Blob shapes: the legacy ``(num, channels, height, width)`` when the blob has any of
them (Caffe's ``Blob::FromProto`` gives them precedence), otherwise ``shape.dim``.
Caffe matches a legacy blob against a layer's blob by padding the layer's shape with
leading 1s (``Blob::ShapeEquals``). This module undoes that padding where the layer
type fixes the rank: an ``InnerProduct`` weight 1x1xNxK becomes (N, K), a
``Convolution`` weight stays 4-D, and every bias 1x1x1xN becomes (N,); for other
layer types the leading 1s are dropped (a 1x1x1x1 blob becomes (1,)).

:func:`read` only finds the blobs and checks every blob's shape against the number of
values it holds (nothing is copied); :func:`blob` decodes one blob's values when the
caller asks for it.

The V0 layers of the first Caffe releases (``V1LayerParameter.layer = 1``) are not
read: such files are refused with a pointer to Caffe's ``upgrade_net_proto_binary``.
"""

from __future__ import annotations

import math

import numpy as np


class CorruptError(Exception):
    """Internal: the message is truncated or inconsistent (the caller adds the path)."""


class UnsupportedError(Exception):
    """Internal: a valid Caffe file in a form this reader does not read (V0 layers)."""


# V1LayerParameter.LayerType -> the layer type string (caffe's UpgradeV1LayerType).
V1_LAYER_TYPES = {
    0: "",
    35: "AbsVal",
    1: "Accuracy",
    30: "ArgMax",
    2: "BNLL",
    3: "Concat",
    37: "ContrastiveLoss",
    4: "Convolution",
    39: "Deconvolution",
    5: "Data",
    6: "Dropout",
    32: "DummyData",
    7: "EuclideanLoss",
    25: "Eltwise",
    38: "Exp",
    8: "Flatten",
    9: "HDF5Data",
    10: "HDF5Output",
    28: "HingeLoss",
    11: "Im2col",
    12: "ImageData",
    13: "InfogainLoss",
    14: "InnerProduct",
    15: "LRN",
    29: "MemoryData",
    16: "MultinomialLogisticLoss",
    34: "MVN",
    17: "Pooling",
    26: "Power",
    18: "ReLU",
    19: "Sigmoid",
    27: "SigmoidCrossEntropyLoss",
    36: "Silence",
    20: "Softmax",
    21: "SoftmaxWithLoss",
    22: "Split",
    33: "Slice",
    23: "TanH",
    24: "WindowData",
    31: "Threshold",
}

# NetParameter's fields and their wire types (for recognising a file by content).
_NET_FIELDS = {1: {2}, 2: {2}, 3: {2}, 4: {0, 2}, 5: {0}, 6: {2}, 7: {0}, 8: {2}, 100: {2}}

# Rank of each blob (weight, bias) where the layer type fixes it.
_LEGACY_RANKS = {"Convolution": (4, 1), "Deconvolution": (4, 1), "InnerProduct": (2, 1)}

_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5


def _varint(buf, pos, end):
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise CorruptError("a varint runs past the end of its message")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise CorruptError("a varint is longer than 10 bytes")


def _signed64(value):
    return value - (1 << 64) if value >= 1 << 63 else value


def _field_at(buf, pos, end):
    """``(field, wire_type, value, next_pos)`` of the field that starts at ``pos``.

    ``value`` is the integer of a varint, and ``(start, stop)`` for the other types.
    """
    tag, pos = _varint(buf, pos, end)
    field, wire = tag >> 3, tag & 7
    if field == 0:
        raise CorruptError("field number 0")
    if wire == _VARINT:
        value, pos = _varint(buf, pos, end)
    elif wire == _BYTES:
        length, pos = _varint(buf, pos, end)
        value = (pos, pos + length)
        pos += length
    elif wire == _FIXED64:
        value = (pos, pos + 8)
        pos += 8
    elif wire == _FIXED32:
        value = (pos, pos + 4)
        pos += 4
    else:
        raise CorruptError(f"wire type {wire} (groups are not used by caffe.proto)")
    if pos > end:
        raise CorruptError(f"field {field} runs past the end of its message")
    return field, wire, value, pos


def _fields(buf, pos, end):
    """Yields ``(field, wire_type, value)`` over a message's bytes ``buf[pos:end]``."""
    while pos < end:
        field, wire, value, pos = _field_at(buf, pos, end)
        yield field, wire, value


def _unpacked_run(buf, pos, end, tag_byte, width):
    """Length of the run of unpacked fixed-width values starting at ``pos``.

    An unpacked ``repeated float`` is ``tag, 4 bytes, tag, 4 bytes, ...`` with a
    one-byte tag: reading the run as rows of ``1 + width`` bytes decodes millions of
    values without a Python loop.
    """
    step = 1 + width
    rows = (end - pos) // step
    block = np.frombuffer(buf, dtype=np.uint8, count=rows * step, offset=pos).reshape(rows, step)
    not_tag = np.flatnonzero(block[:, 0] != tag_byte)
    count = int(not_tag[0]) if not_tag.size else rows
    if count == 0:
        raise CorruptError("an unpacked value runs past the end of its message")
    return count, block[:count, 1:]


def _packed_varints(buf, start, stop):
    values = []
    pos = start
    while pos < stop:
        value, pos = _varint(buf, pos, stop)
        values.append(_signed64(value))
    return values


def _blob_shape(buf, start, stop):
    dims = []
    for field, wire, value in _fields(buf, start, stop):
        if field == 1 and wire == _BYTES:
            dims.extend(_packed_varints(buf, *value))
        elif field == 1 and wire == _VARINT:
            dims.append(_signed64(value))
    return dims


def _blob(buf, start, stop, data=True):
    """``(shape or None, legacy dims dict, float data)`` of one ``BlobProto``; with
    ``data=False`` the number of values stands for the data (nothing is copied)."""
    shape = None
    legacy = {}
    floats = []
    doubles = []
    counts = {5: 0, 8: 0}
    pos = start
    while pos < stop:
        tag, _ = _varint(buf, pos, stop)
        if tag == (5 << 3 | _FIXED32):  # unpacked float data
            count, rows = _unpacked_run(buf, pos, stop, buf[pos], 4)
            counts[5] += count
            if data:
                floats.append(rows.copy().view("<f4").reshape(-1))
            pos += count * 5
            continue
        if tag == (8 << 3 | _FIXED64):  # unpacked double data
            count, rows = _unpacked_run(buf, pos, stop, buf[pos], 8)
            counts[8] += count
            if data:
                doubles.append(rows.copy().view("<f8").reshape(-1))
            pos += count * 9
            continue
        field, wire, value, pos = _field_at(buf, pos, stop)
        if field == 7 and wire == _BYTES:
            shape = _blob_shape(buf, *value)
        elif field in (1, 2, 3, 4) and wire == _VARINT:
            legacy[field] = _signed64(value)
        elif field in (5, 8) and wire == _BYTES:
            width = 4 if field == 5 else 8
            if (value[1] - value[0]) % width:
                raise CorruptError(f"packed {('float', 'double')[field == 8]} data is not a "
                                   f"multiple of {width} bytes")
            counts[field] += (value[1] - value[0]) // width
            if data:
                chunk = np.frombuffer(buf, f"<f{width}", (value[1] - value[0]) // width, value[0])
                (floats if field == 5 else doubles).append(chunk)
    if not data:
        return shape, legacy, counts[8] if counts[8] else counts[5]
    chunks = doubles if doubles else floats
    values = np.concatenate(chunks) if chunks else np.zeros((0,), "<f4")
    return shape, legacy, values.astype(np.float32)


def _shape_of(layer, layer_type, index, shape, legacy, count):
    # As Caffe's Blob::FromProto / ShapeEquals: any legacy field wins over ``shape``.
    if legacy:
        # Caffe reads a legacy blob as (num, channels, height, width), 0 where unset.
        shape = tuple(legacy.get(field, 0) for field in (1, 2, 3, 4))
        ranks = _LEGACY_RANKS.get(layer_type)
        rank = ranks[index] if ranks and index < len(ranks) else 1
        while len(shape) > rank and shape[0] == 1:
            shape = shape[1:]
    else:
        shape = tuple(shape) if shape is not None else ()
    if len(shape) > 32 or any(d < 0 for d in shape) or math.prod(shape) != count:
        raise CorruptError(
            f"blob {index} of layer {layer!r} has {count} values for its shape {shape}"
        )
    return shape


def _layer(buf, start, stop, v1):
    """``(name, type, [(shape, (start, stop)) per blob])``: shapes checked against the
    number of values, no value copied."""
    name_field, type_field, blobs_field = (4, 5, 6) if v1 else (1, 2, 7)
    name = ""
    layer_type = ""
    blobs = []
    for field, wire, value in _fields(buf, start, stop):
        if field == name_field and wire == _BYTES:
            name = bytes(buf[value[0] : value[1]]).decode("utf-8", "replace")
        elif field == type_field and v1 and wire == _VARINT:
            layer_type = V1_LAYER_TYPES.get(value, f"V1LayerType{value}")
        elif field == type_field and not v1 and wire == _BYTES:
            layer_type = bytes(buf[value[0] : value[1]]).decode("utf-8", "replace")
        elif field == blobs_field and wire == _BYTES:
            blobs.append(value)
        elif v1 and field == 1 and wire == _BYTES:
            raise UnsupportedError(
                "it holds V0 layers (Caffe before 2014): convert it with Caffe's "
                "upgrade_net_proto_binary first"
            )
    found = []
    for index, (b_start, b_stop) in enumerate(blobs):
        shape, legacy, count = _blob(buf, b_start, b_stop, data=False)
        found.append((_shape_of(name, layer_type, index, shape, legacy, count), (b_start, b_stop)))
    return name, layer_type, found


def blob(buf, place, shape):
    """The float32 values of the blob at ``place`` (from :func:`read`) as ``shape``."""
    _, _, values = _blob(buf, *place)
    if values.size != int(np.prod(shape)):
        raise CorruptError(f"a blob holds {values.size} values for its shape {shape}")
    return values.reshape(shape)


def read(buf):
    """``(blobs, layer_types)`` of a serialised ``NetParameter``.

    ``blobs`` maps ``"<layer>/<blob index>"`` to ``(shape, place)`` in file order
    (:func:`blob` reads the values at ``place``); ``layer_types`` maps every layer's
    name (with or without blobs) to its type. A layer name that occurs twice keeps the
    later blobs, as Caffe's ``CopyTrainedLayersFrom`` would copy them last.
    """
    tensors = {}
    layer_types = {}
    for field, wire, value in _fields(buf, 0, len(buf)):
        if field in (2, 100) and wire == _BYTES:
            name, layer_type, found = _layer(buf, value[0], value[1], v1=field == 2)
            layer_types[name] = layer_type
            if found:
                for key in [k for k in tensors if k.rsplit("/", 1)[0] == name]:
                    del tensors[key]
            for index, entry in enumerate(found):
                tensors[f"{name}/{index}"] = entry
    if not layer_types:
        raise CorruptError("the NetParameter holds no layers")
    return tensors, layer_types


def looks_like_caffe(buf) -> bool:
    """Whether ``buf`` is (the start of) a ``NetParameter`` with at least one layer.

    Protobuf has no magic number: the top-level fields must all be ``NetParameter``
    fields with their wire types and end exactly at the end of the file. A file cut
    inside a layer still counts if what is left of that layer decodes as fields.
    """
    end = len(buf)
    pos = 0
    layers = 0
    while pos < end:
        try:
            tag, pos = _varint(buf, pos, end)
        except CorruptError:
            return False
        field, wire = tag >> 3, tag & 7
        if wire not in _NET_FIELDS.get(field, ()):
            return False
        if wire == _VARINT:
            try:
                _, pos = _varint(buf, pos, end)
            except CorruptError:
                return False
            continue
        try:
            length, pos = _varint(buf, pos, end)
        except CorruptError:
            return False
        if field in (2, 100):
            if pos + length > end:  # cut off inside this layer: is the rest plausible?
                return _plausible_prefix(buf, pos, end)
            layers += 1
        elif pos + length > end:
            return False
        pos += length
    return layers > 0


def _plausible_prefix(buf, pos, end):
    seen = 0
    try:
        for _ in _fields(buf, pos, end):
            seen += 1
    except CorruptError:
        pass  # the field the file was cut in
    return seen > 0
