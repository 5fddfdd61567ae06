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

A file is never trusted for sizes: every reader reads the headers and shapes first and
checks every tensor against the file (declared shape and dtype, its bytes within the
file or its storage; a zip record inflating at most a plausible ratio; an HDF5 dataset
stored in full, in this file) before reading a byte of it. The tensors of a
:class:`WeightsFile` are then read one at a time, when looked up (:class:`Tensors`), so
reading a file for a model takes the memory of the tensors the model uses, never more
than the file holds. Every refusal is a :class:`WeightsFileError` (a ``ValueError``)
whose one-line message starts with the file's path.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import json
import math
import mmap
import os
import struct
import zipfile
import zlib

import numpy as np

from kerascnn.weights import _caffe_protobuf, _torch_pickle
from kerascnn.weights._errors import WeightsFileError
from kerascnn.weights._torch_pickle import UnsafeWeightsError

__all__ = [
    "FORMATS",
    "FORMAT_NAMES",
    "Tensors",
    "UnsafeWeightsError",
    "WeightsFile",
    "WeightsFileError",
    "detect_format",
    "read_weights_file",
]

FORMATS = ("keras", "keras_legacy_h5", "torch", "safetensors", "caffe")
# How the messages name each format.
FORMAT_NAMES = {
    "keras": "Keras (.weights.h5 / .keras)",
    "keras_legacy_h5": "Keras-2 HDF5",
    "torch": "PyTorch .pth",
    "safetensors": ".safetensors",
    "caffe": "Caffe .caffemodel",
}

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
_MAX_DIMS = 32
# An HDF5 dataset with a filter (compression) may hold more than it stores, up to this.
_HDF5_MAX_INFLATION = _torch_pickle.MAX_INFLATION
_HDF5_SMALL = _torch_pickle.SMALL_RECORD
# Keras writes .keras members stored; a recompressed one (zeros of a fresh optimizer
# compress well) may inflate up to this ratio, or up to this size.
_KERAS_INFLATION = 100
_KERAS_SMALL = 64 << 20


class Tensors(collections.abc.Mapping):
    """A weights file's tensors by name, in file order, read when looked up.

    ``tensors[name]`` reads that one tensor from the file (every lookup reads it again:
    nothing is kept, so memory holds what the caller keeps); :meth:`shape` and
    :meth:`dtype` tell what it is without reading it. Every tensor was checked against
    the file when the file was read; a file changed since then raises
    :class:`WeightsFileError` at the lookup.
    """

    def __init__(self, path, entries):
        self.path = path
        self._entries = dict(entries)  # name -> (shape, dtype, load)

    def __getitem__(self, name):
        shape, dtype, load = self._entries[name]
        try:
            array = load()
        except WeightsFileError:
            raise
        except (_torch_pickle.CorruptError, _caffe_protobuf.CorruptError, OSError,
                zipfile.BadZipFile, zlib.error, EOFError, ValueError, KeyError,
                TypeError) as err:
            raise _corrupt(self.path, "weights", f"reading {name!r}: {type(err).__name__}: "
                                                 f"{err}") from err
        if tuple(array.shape) != tuple(shape):
            raise _corrupt(self.path, "weights", f"{name!r} changed since it was read")
        return array

    def __contains__(self, name):  # Mapping's would read the tensor
        return name in self._entries

    def __iter__(self):
        return iter(self._entries)

    def __len__(self):
        return len(self._entries)

    def shape(self, name) -> tuple:
        """The shape of tensor ``name``, without reading it."""
        return tuple(self._entries[name][0])

    def dtype(self, name) -> np.dtype:
        """The dtype ``tensors[name]`` will have (float32 for floating tensors)."""
        return self._entries[name][1]

    def nbytes(self, name) -> int:
        """The bytes ``tensors[name]`` will take."""
        return math.prod(self.shape(name)) * self.dtype(name).itemsize

    def __repr__(self):
        shown = ", ".join(f"{k!r}: {self.shape(k)}" for k in list(self)[:4])
        more = ", ..." if len(self) > 4 else ""
        return f"Tensors({self.path!r}, {{{shown}{more}}})"


def _eager(path, arrays):
    """:class:`Tensors` over arrays already in memory."""
    return Tensors(path, {k: (v.shape, v.dtype, lambda v=v: v) for k, v in arrays.items()})


@dataclasses.dataclass
class WeightsFile:
    """A weights file's tensors, by the publisher's names, in the publisher's layout.

    Attributes:
        path: the file read.
        format: one of :data:`FORMATS`.
        tensors: name -> ``np.ndarray`` in file order (float32, or the file's integer
            type), a :class:`Tensors` mapping that reads each tensor when looked up;
            empty for ``"keras"`` files, which ``model.load_weights`` reads.
        layer_types: for Caffe files, every layer's name -> its type string
            (``"Convolution"``, ``"LRN"``, ...; V1 enums mapped to these names);
            empty for the other formats.
    """

    path: str
    format: str
    tensors: collections.abc.Mapping
    layer_types: dict = dataclasses.field(default_factory=dict)


def _corrupt(path, what, detail):
    detail = " ".join(str(detail).split())
    if len(detail) > 300:
        detail = detail[:300] + "..."
    return WeightsFileError(f"{path}: truncated or corrupt {what} file ({detail})")


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
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _attribute_values(group, name, size):
    """One HDF5 attribute's values, checked against the file before they are read."""
    aid = group.attrs.get_id(name)
    shape = aid.shape
    count = math.prod(shape) if shape is not None else 0
    if count == 0:
        return []  # Keras writes an empty list as an empty float array
    if aid.dtype.kind not in "SUO" or count > size:
        raise ValueError(f"attribute {name!r} of {aid.dtype} and shape {shape} is not a list "
                         "of names")
    values = group.attrs[name]
    return [values] if np.ndim(values) == 0 else list(np.asarray(values).reshape(-1))


def _attribute(group, name, size):
    """An HDF5 attribute as Keras writes it: whole, or in chunks ``name0``, ``name1``..."""
    if name in group.attrs:
        values = _attribute_values(group, name, size)
    elif f"{name}0" in group.attrs:
        values = []
        index = 0
        while f"{name}{index}" in group.attrs:
            values.extend(_attribute_values(group, f"{name}{index}", size))
            index += 1
    else:
        return None
    return [_decode(v) for v in values]


def _hdf5_root(f):
    import h5py

    link = f.get("model_weights", getlink=True)
    if isinstance(link, h5py.HardLink) and isinstance(f.get("model_weights"), h5py.Group):
        return f["model_weights"]
    return f


def _hdf5_kind(path):
    """``"keras_legacy_h5"``, ``"keras"`` or None for an HDF5 file."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            size = os.path.getsize(path)
            if _attribute(_hdf5_root(f), "layer_names", size) is not None:
                return "keras_legacy_h5"
            if any(k in f for k in ("layers", "vars", "_layer_checkpoint_dependencies")):
                return "keras"
            return None
    except (OSError, KeyError, TypeError, ValueError, AttributeError, RuntimeError) as err:
        raise _corrupt(path, "HDF5", f"{type(err).__name__}: {err}") from err


def _zip_kind(path):
    """``"torch"``, ``"keras"`` or None for a zip archive."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as err:
        raise _corrupt(path, "zip (.pth or .keras)", f"{type(err).__name__}: {err}") from err
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


def missing_file_error(path):
    """The one error (and wording) for a weights path that is a folder or nothing: the
    builders' ``weights=``, the CLI's ``--weights`` and the readers all raise it."""
    path = os.fspath(path)
    what = "is a folder" if os.path.isdir(path) else "does not exist"
    return WeightsFileError(f"No such weights file: {path} {what}. Received: weights={path!r}")


def detect_format(path) -> str:
    """The format of the weights file at ``path``, recognised from its content.

    Returns one of :data:`FORMATS`. Raises :class:`WeightsFileError` naming the file
    when it does not exist, is none of these formats, or is a recognised container
    that is cut off.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise missing_file_error(path)
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
        raise WeightsFileError(
            f"{path}: not a weights file in a format kerascnn reads (recognised from the "
            f"content, whatever the suffix): {_ACCEPTED}"
        )
    return kind


def read_weights_file(path) -> WeightsFile:
    """Reads the weights file at ``path`` (any of :data:`FORMATS`, told by content).

    Headers and shapes are read and every tensor is checked against the file here;
    the tensors' values are read when looked up in ``.tensors``. Raises
    :class:`WeightsFileError` (a ``ValueError``) naming the file for a file in no
    accepted format, or one that is truncated, corrupt or declares more than it holds,
    and :class:`UnsafeWeightsError` (a :class:`WeightsFileError`) naming the global for
    a ``.pth`` whose pickle names one a state dict never needs.
    """
    path = os.fspath(path)
    kind = detect_format(path)
    if kind == "keras":
        _check_keras(path)
        return WeightsFile(path, kind, Tensors(path, {}))
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
        return array.astype(np.float32, copy=False)
    return array.astype(array.dtype.newbyteorder("="), copy=False)


def _out_dtype(dtype):
    return np.dtype(np.float32) if dtype.kind == "f" else dtype.newbyteorder("=")


# -- Keras-2 HDF5 ------------------------------------------------------------------------
def _hard_path(h5py, group, path):
    """``group[path]`` through hard links only (an external or soft link could name
    another file)."""
    obj = group
    for part in path.split("/"):
        if not part:
            continue
        link = obj.get(part, getlink=True)
        if not isinstance(link, h5py.HardLink):
            raise ValueError(f"{path!r} is {'missing' if link is None else 'a link'}")
        obj = obj[part]
    return obj


def _check_dataset(dataset, name, size):
    """A dataset's declared bytes against what the file stores for it."""
    import h5py

    if not isinstance(dataset, h5py.Dataset):
        raise ValueError(f"{name!r} is not a dataset")
    shape, dtype = dataset.shape, dataset.dtype
    if shape is None or dtype.kind not in "fiub" or dtype.fields is not None:
        raise ValueError(f"{name!r} holds {dtype} of shape {shape}, not a numeric array")
    if len(shape) > _MAX_DIMS:
        raise ValueError(f"{name!r} has {len(shape)} dimensions")
    if dataset.external or dataset.is_virtual:
        raise ValueError(f"{name!r} keeps its data in another file")
    nbytes = math.prod(shape) * dtype.itemsize
    stored = dataset.id.get_storage_size()
    if stored > size:
        raise ValueError(f"{name!r} says it stores {stored} bytes in a {size}-byte file")
    filtered = bool(dataset.id.get_create_plist().get_nfilters())
    limit = max(_HDF5_SMALL, _HDF5_MAX_INFLATION * stored) if filtered else stored
    if nbytes > limit:
        raise ValueError(
            f"{name!r} of shape {shape} ({dtype}) is {nbytes} bytes but the file stores "
            f"{stored} for it{' (compressed)' if filtered else ''}"
        )
    offset = dataset.id.get_offset()
    if offset is not None and offset + stored > size:
        raise ValueError(f"{name!r} runs past the file's end")
    return shape, dtype


_H5_ERRORS = (OSError, KeyError, TypeError, ValueError, AttributeError, RuntimeError,
              IndexError)


def _read_keras_legacy_h5(path):
    import h5py

    entries = {}
    size = os.path.getsize(path)
    try:
        with h5py.File(path, "r") as f:
            root = _hdf5_root(f)
            for layer in _attribute(root, "layer_names", size):
                group = _hard_path(h5py, root, layer)
                if not isinstance(group, h5py.Group):
                    raise ValueError(f"layer {layer!r} is not a group")
                for index, weight in enumerate(_attribute(group, "weight_names", size) or []):
                    dataset = _hard_path(h5py, group, weight)
                    shape, dtype = _check_dataset(dataset, f"{layer}/{weight}", size)
                    where = dataset.name

                    def load(where=where, shape=shape, dtype=dtype):
                        with h5py.File(path, "r") as again:
                            ds = again[where]
                            if ds.shape != shape or ds.dtype != dtype:
                                raise ValueError("the file changed")
                            _check_dataset(ds, where, os.path.getsize(path))
                            return _as_float32(ds[()])

                    entries[f"{layer}/{index}"] = (shape, _out_dtype(dtype), load)
    except WeightsFileError:
        raise
    except _H5_ERRORS as err:
        raise _corrupt(path, "Keras HDF5", f"{type(err).__name__}: {err}") from err
    return Tensors(path, entries)


def _check_keras(path):
    """Keras' own files are read by ``model.load_weights``; what they declare is checked
    here first: every dataset of a ``.weights.h5`` as a Keras-2 file's, every member of
    a ``.keras`` archive against its compressed size (the archive's inner HDF5 file is
    Keras' to read)."""
    with open(path, "rb") as f:
        is_zip = f.read(4) in _ZIP_SIGNATURES
    if is_zip:
        try:
            with zipfile.ZipFile(path) as archive:
                for info in archive.infolist():
                    if info.file_size > max(_KERAS_SMALL, _KERAS_INFLATION * info.compress_size):
                        raise _corrupt(path, "Keras (.keras)", (
                            f"member {info.filename} would inflate from {info.compress_size} "
                            f"to {info.file_size} bytes; refused as a zip bomb"))
        except (zipfile.BadZipFile, OSError, ValueError) as err:
            if isinstance(err, WeightsFileError):
                raise
            raise _corrupt(path, "Keras (.keras)", f"{type(err).__name__}: {err}") from err
        return
    import h5py

    size = os.path.getsize(path)

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset) and obj.dtype.kind in "fiub":  # not a vocabulary
            _check_dataset(obj, name, size)

    try:
        with h5py.File(path, "r") as f:
            f.visititems(visit)
    except _H5_ERRORS as err:
        raise _corrupt(path, "Keras HDF5", f"{type(err).__name__}: {err}") from err


# -- PyTorch -----------------------------------------------------------------------------
def _read_torch(path):
    try:
        with open(path, "rb") as f:
            if f.read(4) in _ZIP_SIGNATURES:
                with zipfile.ZipFile(f) as archive:
                    entries = _torch_pickle.read_zip(path, archive)
            else:
                f.seek(0)
                entries = _torch_pickle.read_legacy(path, f)
    except _torch_pickle.CorruptError as err:
        raise _corrupt(path, "PyTorch", err) from err
    except (zipfile.BadZipFile, zlib.error, EOFError, struct.error, OSError, MemoryError,
            ValueError, NotImplementedError, RuntimeError) as err:
        if isinstance(err, WeightsFileError):
            raise
        raise _corrupt(path, "PyTorch", f"{type(err).__name__}: {err}") from err
    return Tensors(path, entries)


# -- safetensors -------------------------------------------------------------------------
def _st_int(value, what, name):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"tensor {name!r}: {what} {value!r}")
    return value


def _read_safetensors(path):
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        (length,) = struct.unpack("<Q", f.read(8))
        if 8 + length > size:
            raise _corrupt(path, "safetensors", f"a {length}-byte header in a {size}-byte file")
        try:
            header = json.loads(f.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
            raise _corrupt(path, "safetensors", f"header: {err}") from err
    if not isinstance(header, dict):
        raise _corrupt(path, "safetensors", "the header is not a JSON object")
    data_start = 8 + length
    entries = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            if not isinstance(info, dict) or not isinstance(info.get("shape"), list):
                raise ValueError(f"header entry {name!r} is not a tensor")
            dtype_name = info["dtype"]
            shape = tuple(_st_int(d, "dimension", name) for d in info["shape"])
            offsets = info["data_offsets"]
            if not isinstance(offsets, list) or len(offsets) != 2:
                raise ValueError(f"tensor {name!r}: data_offsets {offsets!r}")
            begin, end = (_st_int(o, "offset", name) for o in offsets)
        except (KeyError, TypeError, ValueError) as err:
            raise _corrupt(path, "safetensors", f"header entry {name!r}: {err}") from err
        if not isinstance(dtype_name, str) or dtype_name not in _SAFETENSORS_DTYPES:
            raise WeightsFileError(
                f"{path}: tensor {name!r} has dtype {str(dtype_name)[:20]}, which kerascnn "
                f"does not read (it reads {', '.join(_SAFETENSORS_DTYPES)})"
            )
        if len(shape) > _MAX_DIMS:
            raise _corrupt(path, "safetensors", f"tensor {name!r} has {len(shape)} dimensions")
        dtype = np.dtype(_SAFETENSORS_DTYPES[dtype_name])
        count = math.prod(shape)  # Python integers: no overflow
        nbytes = count * dtype.itemsize
        if not begin <= end or end - begin != nbytes:
            raise _corrupt(
                path, "safetensors",
                f"tensor {name!r} of shape {list(shape)} ({dtype_name}) needs {nbytes} bytes, "
                f"its offsets give {end - begin}",
            )
        if data_start + end > size:
            raise _corrupt(path, "safetensors", f"tensor {name!r} runs past the file's end")
        entries.append((begin, name, dtype_name, dtype, shape, count))
    found = {}
    for begin, name, dtype_name, dtype, shape, count in sorted(entries, key=lambda e: e[0]):

        def load(begin=begin, dtype_name=dtype_name, dtype=dtype, shape=shape, count=count):
            with open(path, "rb") as again:
                again.seek(data_start + begin)
                array = np.fromfile(again, dtype=dtype, count=count)
            if array.size != count:
                raise ValueError("the file is shorter than when it was read")
            array = array.reshape(shape)
            if dtype_name == "BF16":
                array = (array.astype(np.uint32) << 16).view(np.float32)
            return _as_float32(array)

        out = np.dtype(np.float32) if dtype_name == "BF16" else _out_dtype(dtype)
        found[name] = (shape, out, load)
    return Tensors(path, found)


# -- Caffe -------------------------------------------------------------------------------
def _caffe_buffer(path):
    with open(path, "rb") as f:
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)


def _read_caffe(path):
    try:
        blobs, layer_types = _caffe_protobuf.read(_caffe_buffer(path))
    except _caffe_protobuf.CorruptError as err:
        raise _corrupt(path, "Caffe", err) from err
    except _caffe_protobuf.UnsupportedError as err:
        raise WeightsFileError(f"{path}: {err}") from None
    entries = {}
    for name, (shape, place) in blobs.items():

        def load(shape=shape, place=place):
            return _caffe_protobuf.blob(_caffe_buffer(path), place, shape)

        entries[name] = (shape, np.dtype(np.float32), load)
    return Tensors(path, entries), layer_types
