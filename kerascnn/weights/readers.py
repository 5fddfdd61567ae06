"""Readers of the publishers' weight files: tensors by name, in the publisher's layout.

Readers know file formats, not networks (the mappers know networks). Each returns
the file's tensors as numpy arrays under the publisher's own names and in its own
layout (OIHW convolutions from PyTorch and Caffe, HWIO from Keras), without
PyTorch, Caffe, safetensors or TensorFlow at run time (numpy, h5py and the standard
library only).

The format is recognised from the file's content (magic bytes, then structure),
never from its suffix alone:

- ``"keras"``: Keras 3 ``.weights.h5`` and ``.keras``; no tensors are read, the
  caller uses ``model.load_weights``.
- ``"keras_legacy_h5"``: keras.applications' Keras-2 HDF5 files (and any whole-model
  Keras HDF5 file, read from its ``model_weights`` group): ``"<layer>/<i>"``, ``i``
  the position in the layer's ``weight_names`` attribute, layers in ``layer_names``
  order (names such as ``conv1/kernel:0`` are read from the file, never guessed).
- ``"torch"``: PyTorch ``.pth`` state dicts, zip or legacy: the state-dict keys
  (``{"state_dict": ...}`` / ``{"model": ...}`` unwrapped, ``module.`` stripped).
- ``"safetensors"``: the header's keys, in the order of the data in the file.
- ``"caffe"``: ``.caffemodel`` in either encoding: ``"<layer>/<i>"``, ``i`` the blob
  index (0 weights, 1 bias), and every layer's type in ``layer_types``.

Floating tensors are float32 (float16 and bfloat16 exactly, float64 rounded);
integer tensors (``num_batches_tracked``) keep their integer type. A ``.pth`` is a
pickle and can run code: it is read by a restricted unpickler
(:mod:`kerascnn.weights._torch_pickle`) that refuses any global a state dict does not
need with :class:`UnsafeWeightsError`.
"""

from __future__ import annotations

import dataclasses
import json
import mmap
import os
import struct
import zipfile

import numpy as np

from kerascnn.weights import _caffe_protobuf, _torch_pickle
from kerascnn.weights._torch_pickle import UnsafeWeightsError

__all__ = ["FORMATS", "UnsafeWeightsError", "WeightsFile", "detect_format", "read_weights_file"]

FORMATS = ("keras", "keras_legacy_h5", "torch", "safetensors", "caffe")

_ACCEPTED = (
    "Keras .weights.h5 / .keras, keras.applications (Keras-2) HDF5, PyTorch .pth "
    "(zip or legacy), .safetensors, Caffe .caffemodel"
)
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")

# safetensors dtype -> numpy dtype (BF16 is read as uint16 and widened).
_SAFETENSORS_DTYPES = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "BF16": "<u2",
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U64": "<u8",
    "U32": "<u4",
    "U16": "<u2",
    "U8": "u1",
    "BOOL": "?",
}
_MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024  # the safetensors library's own limit


@dataclasses.dataclass
class WeightsFile:
    """A weights file's tensors, by the publisher's names, in the publisher's layout.

    Attributes:
        path: the file read.
        format: one of :data:`FORMATS`.
        tensors: name -> ``np.ndarray`` in file order (float32, or the file's integer
            type); empty for ``"keras"`` files, which ``model.load_weights`` reads.
        layer_types: for Caffe files, every layer's name -> its type string
            (``"Convolution"``, ``"LRN"``, ...; V1 enums mapped to these names);
            empty for the other formats.
    """

    path: str
    format: str
    tensors: dict
    layer_types: dict = dataclasses.field(default_factory=dict)


def _corrupt(path, what, detail):
    return ValueError(f"{path}: truncated or corrupt {what} file ({detail})")


def _hdf5_offset(f):
    """Offset of the HDF5 signature (0, or after a user block of 512 * 2**k bytes)."""
    size = os.fstat(f.fileno()).st_size
    offset = 0
    while offset + 8 <= size:
        f.seek(offset)
        if f.read(8) == _HDF5_SIGNATURE:
            return offset
        offset = 512 if offset == 0 else offset * 2
    return None


def _decode(value):
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _attribute(group, name):
    """An HDF5 attribute as Keras writes it: whole, or in chunks ``name0``, ``name1``..."""
    if name in group.attrs:
        values = group.attrs[name]
    elif f"{name}0" in group.attrs:
        chunks = []
        index = 0
        while f"{name}{index}" in group.attrs:
            chunks.extend(group.attrs[f"{name}{index}"])
            index += 1
        values = chunks
    else:
        return None
    return [_decode(v) for v in np.asarray(values).reshape(-1)] if len(values) else []


def _hdf5_kind(path):
    """``"keras_legacy_h5"``, ``"keras"`` or None for an HDF5 file."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            root = f["model_weights"] if isinstance(f.get("model_weights"), h5py.Group) else f
            if _attribute(root, "layer_names") is not None:
                return "keras_legacy_h5"
            if any(k in f for k in ("layers", "vars", "_layer_checkpoint_dependencies")):
                return "keras"
            return None
    except OSError as err:
        raise _corrupt(path, "HDF5", err) from err


def _zip_kind(path):
    """``"torch"``, ``"keras"`` or None for a zip archive."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise _corrupt(path, "zip (.pth or .keras)", err) from err
    if any(n.endswith("/data.pkl") and n.count("/") == 1 for n in names):
        return "torch"
    if "config.json" in names and ({"model.weights.h5", "model.weights.npz"} & names):
        return "keras"
    return None


def _looks_like_safetensors(head):
    """An 8-byte little-endian header length, then the header's JSON object."""
    if len(head) < 10 or head[8:9] != b"{":
        return False
    (length,) = struct.unpack("<Q", head[:8])
    return 2 <= length <= _MAX_SAFETENSORS_HEADER


def detect_format(path) -> str:
    """The format of the weights file at ``path``, recognised from its content.

    Returns one of :data:`FORMATS`. Raises ``ValueError`` naming the file when it does
    not exist, is none of these formats, or is a recognised container that is cut off.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"A folder, not a weights file. Received: path={path!r}")
    if not os.path.isfile(path):
        raise ValueError(f"No such weights file. Received: path={path!r}")
    with open(path, "rb") as f:
        head = f.read(64)
        size = os.fstat(f.fileno()).st_size
        hdf5 = _hdf5_offset(f) is not None
    if head[:4] in _ZIP_SIGNATURES:
        kind = _zip_kind(path)
    elif hdf5:
        kind = _hdf5_kind(path)
    elif _torch_pickle.is_legacy(head):
        kind = "torch"
    elif _looks_like_safetensors(head):
        kind = "safetensors"
    elif size:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            kind = "caffe" if _caffe_protobuf.looks_like_caffe(buf) else None
    else:
        kind = None
    if kind is None:
        raise ValueError(
            f"{path}: not a weights file in a format kerascnn reads (recognised from the "
            f"content, whatever the suffix): {_ACCEPTED}"
        )
    return kind


def read_weights_file(path) -> WeightsFile:
    """Reads the weights file at ``path`` (any of :data:`FORMATS`, told by content).

    Raises ``ValueError`` naming the file for a file in no accepted format or one that
    is truncated or corrupt, and :class:`UnsafeWeightsError` (a ``ValueError``) naming
    the global for a ``.pth`` whose pickle names one a state dict never needs.
    """
    path = os.fspath(path)
    kind = detect_format(path)
    if kind == "keras":
        return WeightsFile(path, kind, {})
    if kind == "keras_legacy_h5":
        return WeightsFile(path, kind, _read_keras_legacy_h5(path))
    if kind == "torch":
        return WeightsFile(path, kind, _read_torch(path))
    if kind == "safetensors":
        return WeightsFile(path, kind, _read_safetensors(path))
    tensors, layer_types = _read_caffe(path)
    return WeightsFile(path, kind, tensors, layer_types)


def _as_float32(array):
    array = np.asarray(array)
    if array.dtype.kind == "f":
        return array.astype(np.float32)
    return array.astype(array.dtype.newbyteorder("="))


def _read_keras_legacy_h5(path):
    import h5py

    tensors = {}
    try:
        with h5py.File(path, "r") as f:
            root = f["model_weights"] if isinstance(f.get("model_weights"), h5py.Group) else f
            for layer in _attribute(root, "layer_names"):
                group = root[layer]
                for index, weight in enumerate(_attribute(group, "weight_names") or []):
                    tensors[f"{layer}/{index}"] = _as_float32(group[weight][()])
    except (OSError, KeyError, TypeError, ValueError, AttributeError) as err:
        raise _corrupt(path, "Keras HDF5", f"{type(err).__name__}: {err}") from err
    return tensors


def _read_torch(path):
    try:
        with open(path, "rb") as f:
            if f.read(4) in _ZIP_SIGNATURES:
                with zipfile.ZipFile(f) as archive:
                    return _torch_pickle.read_zip(path, archive)
            f.seek(0)
            return _torch_pickle.read_legacy(path, f)
    except _torch_pickle.CorruptError as err:
        raise _corrupt(path, "PyTorch", err) from err
    except (zipfile.BadZipFile, EOFError, struct.error, OSError, MemoryError) as err:
        raise _corrupt(path, "PyTorch", f"{type(err).__name__}: {err}") from err


def _read_safetensors(path):
    tensors = {}
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        (length,) = struct.unpack("<Q", f.read(8))
        if 8 + length > size:
            raise _corrupt(path, "safetensors", f"a {length}-byte header in a {size}-byte file")
        try:
            header = json.loads(f.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise _corrupt(path, "safetensors", f"header: {err}") from err
        if not isinstance(header, dict):
            raise _corrupt(path, "safetensors", "the header is not a JSON object")
        data_start = 8 + length
        entries = []
        for name, info in header.items():
            if name == "__metadata__":
                continue
            try:
                dtype_name, shape = info["dtype"], [int(d) for d in info["shape"]]
                begin, end = (int(o) for o in info["data_offsets"])
            except (KeyError, TypeError, ValueError) as err:
                raise _corrupt(path, "safetensors", f"header entry {name!r}") from err
            if dtype_name not in _SAFETENSORS_DTYPES:
                raise ValueError(
                    f"{path}: tensor {name!r} has dtype {dtype_name}, which kerascnn does not "
                    f"read (it reads {', '.join(_SAFETENSORS_DTYPES)})"
                )
            dtype = np.dtype(_SAFETENSORS_DTYPES[dtype_name])
            count = int(np.prod(shape, dtype=np.int64))
            nbytes = count * dtype.itemsize
            if min(shape, default=0) < 0 or not 0 <= begin <= end or end - begin != nbytes:
                raise _corrupt(path, "safetensors", f"tensor {name!r}: offsets and shape disagree")
            if data_start + end > size:
                raise _corrupt(path, "safetensors", f"tensor {name!r} runs past the file's end")
            entries.append((begin, name, dtype_name, dtype, shape, count))
        for begin, name, dtype_name, dtype, shape, count in sorted(entries, key=lambda e: e[0]):
            f.seek(data_start + begin)
            array = np.fromfile(f, dtype=dtype, count=count).reshape(shape)
            if dtype_name == "BF16":
                array = (array.astype(np.uint32) << 16).view(np.float32)
            tensors[name] = _as_float32(array)
    return tensors


def _read_caffe(path):
    with open(path, "rb") as f:
        buf = f.read()
    try:
        return _caffe_protobuf.read(buf)
    except _caffe_protobuf.CorruptError as err:
        raise _corrupt(path, "Caffe", err) from err
    except _caffe_protobuf.UnsupportedError as err:
        raise ValueError(f"{path}: {err}") from None
