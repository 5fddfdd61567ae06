"""PyTorch ``.pth`` state dicts read without PyTorch, through a restricted unpickler.

A ``.pth`` file is a pickle, and unpickling runs whatever callables the pickle
names: ``torch.load(weights_only=False)`` on a stranger's file can run any code.
This module never gives the pickle machinery a real global. ``find_class`` maps the
few names a state dict needs to numpy builders and refuses every other name with
:class:`UnsafeWeightsError` (the allow-list of PyTorch's own ``weights_only=True``
loader, reduced to what a CPU state dict of dense tensors uses):

- ``collections.OrderedDict`` (the state dict itself, and the empty
  ``backward_hooks`` of each tensor);
- ``torch._utils._rebuild_tensor`` (PyTorch < 0.4, e.g. torchvision's 2017 VGG files),
  ``_rebuild_tensor_v2`` (0.4 and later), ``_rebuild_parameter`` and
  ``_rebuild_parameter_with_state`` (a state dict saved with ``keep_vars=True``);
- the storage types ``torch.FloatStorage``, ``HalfStorage``, ``BFloat16Storage``,
  ``DoubleStorage``, ``LongStorage``, ``IntStorage``, ``ShortStorage``,
  ``CharStorage``, ``ByteStorage``, ``BoolStorage`` and ``UntypedStorage`` (also under
  ``torch.cuda``, as files saved from a GPU name them) — markers only;
- ``_codecs.encode`` with the latin-1 codec only (how protocol-2 pickles spell bytes).

Storages are never unpickled: ``persistent_load`` receives their ids and the raw bytes
are read from the container. Two containers:

- **zip** (PyTorch >= 1.6): ``<archive>/data.pkl`` plus one record
  ``<archive>/data/<key>`` per storage, in the byte order of the ``byteorder`` record
  (little-endian where it is absent, as PyTorch assumes).
- **legacy** (``_use_new_zipfile_serialization=False``, and every file before 1.6):
  pickles of the magic number 0x1950a86a20f9469cfc6c, the protocol version (1001) and a
  ``sys_info`` dict, then the object's pickle, then the pickled list of storage keys,
  then per key an int64 element count and the storage's raw bytes, both little-endian
  (PyTorch's ``THPStorage_writeFileRaw`` writes them so on every host).

Nothing is allocated from what the file declares before it is checked against the
file: the pickle is read first (a zip record of at most ``MAX_PICKLE_BYTES``), then
every tensor's size, stride and offset against its storage, and every storage against
its bytes in the container (a zip record of exactly that many bytes, a compressed one
inflating at most ``MAX_INFLATION`` times; a legacy storage inside the file). A tensor
with more elements than the span of storage it reads (a stride-0 or overlapping view,
which ``torch.expand`` makes) is refused: a state dict never holds one, and it would
materialise more than the file holds. The bytes of a tensor are read only when it is
asked for (:func:`read_zip` and :func:`read_legacy` return loaders), one tensor at a
time, and only the span of its storage that it covers.

Tensors are rebuilt from (storage, offset, size, stride) with numpy's ``as_strided``
and copied, so non-contiguous tensors and tensors sharing one storage come out as the
values PyTorch would show. Floating tensors are returned as float32 (float16 and
bfloat16 exactly, float64 rounded); integer and bool tensors keep their type.
"""

from __future__ import annotations

import collections
import io
import math
import os
import pickle
import pickletools
import struct
import zipfile

import numpy as np

from kerascnn.weights._errors import WeightsFileError

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
MAX_PICKLE_BYTES = 32 << 20  # a state dict's pickle is kilobytes to a few megabytes
MAX_INFLATION = 32  # weights hardly compress; torch.save stores its records uncompressed
SMALL_RECORD = 1 << 20  # compressed records up to this size are not held to MAX_INFLATION
MAX_DIMS = 32

# storage type name -> (numpy dtype without byte order, element size, is bfloat16)
_STORAGE_TYPES = {
    "FloatStorage": ("f4", 4, False),
    "DoubleStorage": ("f8", 8, False),
    "HalfStorage": ("f2", 2, False),
    "BFloat16Storage": ("u2", 2, True),
    "LongStorage": ("i8", 8, False),
    "IntStorage": ("i4", 4, False),
    "ShortStorage": ("i2", 2, False),
    "CharStorage": ("i1", 1, False),
    "ByteStorage": ("u1", 1, False),
    "BoolStorage": ("b1", 1, False),
    "UntypedStorage": ("u1", 1, False),
}


class UnsafeWeightsError(WeightsFileError):
    """A weights file's pickle names a global that a state dict never needs."""


class CorruptError(Exception):
    """Internal: the container is truncated or inconsistent (the caller adds the path)."""


class _Sealed:
    """Objects handed to the pickle refuse BUILD (a pickle cannot rewrite their fields)."""

    def __setstate__(self, state):
        raise CorruptError(f"the pickle sets the state of a {type(self).__name__.lstrip('_')}")


class _StorageType(_Sealed):
    def __init__(self, name):
        base, itemsize, bf16 = _STORAGE_TYPES[name]
        self.name = name
        self.base = base
        self.itemsize = itemsize
        self.bf16 = bf16

    def dtype(self, order):
        return np.dtype(self.base if self.itemsize == 1 else order + self.base)


class _Storage(_Sealed):
    """A root storage: its key, type and element count; ``data`` is filled later."""

    def __init__(self, key, stype, numel):
        self.key = key
        self.stype = stype
        self.numel = numel
        self.data = None


class _StorageRef(_Sealed):
    """What ``persistent_load`` returns: a root storage or a view (offset, numel) of it."""

    def __init__(self, root, offset, numel):
        self.root = root
        self.offset = offset
        self.numel = numel


class _LazyTensor(_Sealed):
    """A tensor as the pickle describes it; built once the storages are read."""

    def __init__(self, ref, offset, size, stride):
        if not isinstance(ref, _StorageRef):
            raise CorruptError(f"a tensor's storage is a {type(ref).__name__}")
        self.ref = ref
        self.offset = _int(offset, "storage offset")
        self.size = tuple(_int(s, "size") for s in size)
        self.stride = tuple(_int(s, "stride") for s in stride)
        if len(self.size) != len(self.stride):
            raise CorruptError(f"size {self.size} and stride {self.stride} differ in rank")


def _int(value, what):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise CorruptError(f"a tensor's {what} is {value!r}")
    return value


def _rebuild_tensor(storage, storage_offset, size, stride):
    return _LazyTensor(storage, storage_offset, size, stride)


def _rebuild_tensor_v2(
    storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None
):
    return _LazyTensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad, backward_hooks):
    return data


def _rebuild_parameter_with_state(data, requires_grad, backward_hooks, state):
    return data


def _codecs_encode(text, encoding="utf-8"):
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise CorruptError(f"_codecs.encode called with encoding {encoding!r}")
    return text.encode("latin-1")


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter_with_state,
    ("_codecs", "encode"): _codecs_encode,
}


def _refuse(path, module, name):
    hint = ""
    if module.startswith(("torchvision", "__torch__", "torch.nn", "timm")):
        hint = (
            " (it holds a pickled model object or TorchScript rather than a state dict: "
            "save `model.state_dict()` instead)"
        )
    spelled = repr(f"{module}.{name}"[:200])  # a name can hold any character
    return UnsafeWeightsError(
        f"{path}: refusing to unpickle the global {spelled}: a PyTorch state dict "
        "needs only tensors, storages and OrderedDict, and a .pth file is a pickle that "
        f"can run code{hint}"
    )


class _NoGlobalsUnpickler(pickle.Unpickler):
    """For the legacy container's header pickles and key list: plain data only."""

    def __init__(self, file, path):
        super().__init__(file, encoding="utf-8")
        self._path = path

    def find_class(self, module, name):
        raise _refuse(self._path, module, name)

    def persistent_load(self, pid):
        raise CorruptError("unexpected persistent id in a header pickle")


class _StateDictUnpickler(pickle.Unpickler):
    """Unpickles a state dict with numpy builders in place of PyTorch's globals."""

    def __init__(self, file, path, storages):
        super().__init__(file, encoding="utf-8")
        self._path = path
        self._storages = storages

    def find_class(self, module, name):
        found = _ALLOWED.get((module, name))
        if found is not None:
            return found
        if module in ("torch", "torch.cuda") and name in _STORAGE_TYPES:
            return _StorageType(name)
        raise _refuse(self._path, module, name)

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid:
            raise CorruptError(f"persistent id {pid!r} is not a storage")
        kind = pid[0].decode("ascii") if isinstance(pid[0], bytes) else pid[0]
        if kind != "storage" or len(pid) not in (5, 6):
            raise CorruptError(f"persistent id of kind {kind!r} is not a storage")
        stype, key, _location, numel = pid[1:5]
        view = pid[5] if len(pid) == 6 else None
        if not isinstance(stype, _StorageType):
            raise CorruptError(f"storage type {stype!r}")
        key = key.decode("ascii") if isinstance(key, bytes) else str(key)
        numel = _int(numel, "storage size")
        root = self._storages.get(key)
        if root is None:
            root = self._storages[key] = _Storage(key, stype, numel)
        elif root.stype.name != stype.name or root.numel != numel:
            raise CorruptError(f"storage {key} is described twice differently")
        if view is None:
            return _StorageRef(root, 0, numel)
        _view_key, offset, view_numel = view
        offset, view_numel = _int(offset, "view offset"), _int(view_numel, "view size")
        if offset + view_numel > numel:
            raise CorruptError(f"storage view {view!r} overruns storage {key}")
        return _StorageRef(root, offset, view_numel)


class _Clamped:
    """A file whose ``read(n)`` never asks for more than is left before ``end``
    (``BufferedReader.read(n)`` allocates ``n`` bytes before it reads)."""

    def __init__(self, f, end):
        self._f, self._end = f, end

    def _left(self, n):
        left = max(0, self._end - self._f.tell())
        return left if n is None or n < 0 else min(n, left)

    def read(self, n=-1):
        return self._f.read(self._left(n))

    def readline(self, limit=-1):
        return self._f.readline(self._left(limit))


def scan_pickle(f, end):
    """Walks the pickle at ``f``'s position without building anything (pickletools'
    opcode reader): a length it declares beyond ``end``, an unknown opcode or a pickle
    longer than :data:`MAX_PICKLE_BYTES` is refused before the unpickler, which
    allocates what a length declares, sees it. ``f`` is left where it was."""
    start = f.tell()
    try:
        for _ in pickletools.genops(_Clamped(f, min(end, start + MAX_PICKLE_BYTES))):
            pass
    except Exception as err:  # noqa: BLE001 - any failure to walk the opcodes is corruption
        raise CorruptError(f"the pickle at byte {start}: {type(err).__name__}: {err}") from err
    finally:
        f.seek(start)


def _load_state(file, path, storages):
    try:
        return _StateDictUnpickler(file, path, storages).load()
    except (UnsafeWeightsError, CorruptError):
        raise
    except (pickle.UnpicklingError, EOFError, TypeError, AttributeError, IndexError, KeyError,
            ValueError, struct.error, UnicodeDecodeError) as err:
        raise CorruptError(f"{type(err).__name__}: {err}") from err


def _unwrap(obj, path):
    """The state dict inside ``obj``: ``{"state_dict": ...}`` / ``{"model": ...}`` unwrapped."""
    if not isinstance(obj, dict):
        raise WeightsFileError(
            f"{path}: holds a pickled {type(obj).__name__}, not a state dict "
            "(a dict of tensor names to tensors)"
        )
    for key in ("state_dict", "model"):
        if isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    tensors = {}
    for key, value in obj.items():
        if not isinstance(value, _LazyTensor):
            continue
        if not isinstance(key, str):
            raise CorruptError(f"a tensor's name is {key!r}")
        name = key[len("module."):] if key.startswith("module.") else key
        if name in tensors:
            raise WeightsFileError(
                f"{path}: holds the tensor {name!r} twice (with and without 'module.')"
            )
        tensors[name] = value
    if not tensors:
        keys = [repr(k)[:40] for k in list(obj)[:5]]
        raise WeightsFileError(f"{path}: the pickled dict holds no tensors (keys: {keys})")
    return tensors




def _check_tensor(lazy):
    """Checks ``lazy`` against its storage before any byte is read; sets ``count`` (its
    elements), ``first`` (its first element in the root storage) and ``span`` (the
    elements of storage it covers)."""
    if len(lazy.size) > MAX_DIMS:
        raise CorruptError(f"a tensor of {len(lazy.size)} dimensions (at most {MAX_DIMS})")
    count = math.prod(lazy.size)
    ref = lazy.ref
    lazy.first = ref.offset + lazy.offset
    if count == 0:
        lazy.count, lazy.span = 0, 0
        return
    last = lazy.offset + sum((n - 1) * s for n, s in zip(lazy.size, lazy.stride))
    if last >= ref.numel:
        raise CorruptError(
            f"a tensor of size {lazy.size} (stride {lazy.stride}, offset {lazy.offset}) "
            f"overruns storage {ref.root.key} of {ref.numel} elements"
        )
    span = last - lazy.offset + 1
    if count > span:
        raise CorruptError(
            f"a tensor of size {lazy.size} (stride {lazy.stride}) has {count} elements over "
            f"{span} of storage {ref.root.key}: a stride-0 or overlapping view larger than "
            "its storage, which a state dict never holds"
        )
    lazy.count, lazy.span = count, span


def _out_dtype(stype, order):
    if stype.bf16:
        return np.dtype(np.float32)
    dtype = stype.dtype(order)
    return np.dtype(np.float32) if dtype.kind == "f" else dtype.newbyteorder("=")


def _build(lazy, raw, order):
    """The tensor ``lazy`` from ``raw``, the bytes of the ``span`` it covers."""
    stype = lazy.ref.root.stype
    dtype = stype.dtype(order)
    if len(raw) != lazy.span * dtype.itemsize:
        raise CorruptError(f"storage {lazy.ref.root.key} is shorter than the file said")
    if lazy.count == 0:
        array = np.empty(lazy.size, dtype=dtype)
    else:
        base = np.frombuffer(raw, dtype=dtype)
        view = np.lib.stride_tricks.as_strided(
            base,
            shape=lazy.size,
            strides=tuple(s * dtype.itemsize for s in lazy.stride),
            writeable=False,
        )
        array = np.array(view, copy=True)
    array = array.astype(array.dtype.newbyteorder("="), copy=False)
    if stype.bf16:
        return (array.astype(np.uint32) << 16).view(np.float32)
    if array.dtype.kind == "f":
        return array.astype(np.float32, copy=False)
    return array


def _entries(tensors, order, read_span):
    """``{name: (shape, dtype, load)}``; ``read_span(root, start, length)`` returns the
    bytes ``[start, start + length)`` of a root storage."""
    entries = {}
    for name, lazy in tensors.items():
        itemsize = lazy.ref.root.stype.itemsize

        def load(lazy=lazy, itemsize=itemsize):
            raw = read_span(lazy.ref.root, lazy.first * itemsize, lazy.span * itemsize)
            return _build(lazy, raw, order)

        entries[name] = (lazy.size, _out_dtype(lazy.ref.root.stype, order), load)
    return entries


def check_record(info, expected, what):
    """A zip member's declared size against ``expected`` bytes (None: any size up to
    :data:`MAX_PICKLE_BYTES`) and against its compressed size."""
    if info.flag_bits & 0x1:
        raise CorruptError(f"{what} is encrypted")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise CorruptError(f"{what} uses compression method {info.compress_type}")
    if expected is None:
        if info.file_size > MAX_PICKLE_BYTES:
            raise CorruptError(f"{what} declares {info.file_size} bytes")
    elif info.file_size != expected:
        raise CorruptError(f"{what} holds {info.file_size} bytes, its storage {expected}")
    if info.compress_type == zipfile.ZIP_STORED:
        if info.compress_size != info.file_size:
            raise CorruptError(f"{what} is stored with {info.compress_size} bytes for "
                               f"{info.file_size}")
    elif info.file_size > max(SMALL_RECORD, MAX_INFLATION * info.compress_size):
        raise CorruptError(
            f"{what} would inflate from {info.compress_size} to {info.file_size} bytes "
            f"(weights do not compress {MAX_INFLATION} times; refused as a zip bomb)"
        )


def _read_record(archive, name, expected, what):
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise CorruptError(f"no record {name}") from None
    check_record(info, expected, what)
    with archive.open(info) as f:
        data = f.read(info.file_size)
    if len(data) != info.file_size:
        raise CorruptError(f"{what} is cut off")
    return data


def read_zip(path, archive: zipfile.ZipFile):
    """``{name: (shape, dtype, load)}`` of a zip-format ``.pth`` (``archive`` is open);
    every tensor is checked against its storage and every storage against its record,
    and ``load()`` reads one tensor's bytes (opening ``path`` again)."""
    pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pickles) != 1:
        raise CorruptError("no <archive>/data.pkl record")
    prefix = pickles[0][: -len("data.pkl")]
    order = "<"
    if prefix + "byteorder" in archive.namelist():
        mark = _read_record(archive, prefix + "byteorder", None, "the byteorder record")
        mark = mark.strip()
        if mark not in (b"little", b"big"):
            raise CorruptError(f"byteorder record {mark[:20]!r}")
        order = "<" if mark == b"little" else ">"
    storages = {}
    data = io.BytesIO(_read_record(archive, pickles[0], None, "the pickle record"))
    scan_pickle(data, len(data.getbuffer()))
    tensors = _unwrap(_load_state(data, path, storages), path)
    del data
    for lazy in tensors.values():
        _check_tensor(lazy)
        root = lazy.ref.root
        record = f"{prefix}data/{root.key}"
        try:
            info = archive.getinfo(record)
        except KeyError:
            raise CorruptError(f"no record {record}") from None
        check_record(info, root.numel * root.stype.itemsize, f"record {record}")

    def read_span(root, start, length):
        with zipfile.ZipFile(path) as again:
            record = f"{prefix}data/{root.key}"
            info = again.getinfo(record)
            check_record(info, root.numel * root.stype.itemsize, f"record {record}")
            with again.open(info) as f:
                f.seek(start)
                return f.read(length)

    return _entries(tensors, order, read_span)


def is_legacy(head: bytes) -> bool:
    """Whether ``head`` (the first bytes of a file) starts with the legacy magic number."""
    if not head or head[:1] not in (b"\x80", b"L", b"I"):
        return False
    try:
        return _NoGlobalsUnpickler(io.BytesIO(head), "").load() == MAGIC_NUMBER
    except Exception:  # any byte string: only an exact magic number counts
        return False


def read_legacy(path, f):
    """``{name: (shape, dtype, load)}`` of a legacy (non-zip) ``.pth``; ``f`` is open at
    its start. The storages' places are found by skipping over them (each within the
    file); ``load()`` reads one tensor's bytes (opening ``path`` again)."""

    size = os.fstat(f.fileno()).st_size

    def plain():
        scan_pickle(f, size)
        try:
            return _NoGlobalsUnpickler(f, path).load()
        except (UnsafeWeightsError, CorruptError):
            raise
        except Exception as err:  # noqa: BLE001 - any failure of a header pickle is corruption
            raise CorruptError(f"{type(err).__name__}: {err}") from err

    if plain() != MAGIC_NUMBER:
        raise CorruptError("bad magic number")
    version = plain()
    if version != PROTOCOL_VERSION:
        raise CorruptError(f"protocol version {version!r} (expected {PROTOCOL_VERSION})")
    sys_info = plain()
    if not isinstance(sys_info, dict):
        raise CorruptError("sys_info is not a dict")
    storages = {}
    scan_pickle(f, size)
    obj = _load_state(f, path, storages)
    keys = plain()
    if not isinstance(keys, list):
        raise CorruptError("the storage key list is missing")
    places = {}
    for key in keys:
        key = key.decode("ascii", "replace") if isinstance(key, bytes) else str(key)
        root = storages.get(key)
        if root is None:
            raise CorruptError(f"storage {key} is not referenced by the pickle")
        head = f.read(8)
        if len(head) != 8:
            raise CorruptError(f"storage {key} is cut off")
        (numel,) = struct.unpack("<q", head)
        if numel != root.numel:
            raise CorruptError(
                f"storage {key} holds {numel} elements, the pickle says {root.numel}"
            )
        start = f.tell()
        nbytes = numel * root.stype.itemsize
        if start + nbytes > size:
            raise CorruptError(f"storage {key} is cut off ({nbytes} bytes at {start} of {size})")
        places[key] = start
        f.seek(start + nbytes)
    tensors = _unwrap(obj, path)
    for lazy in tensors.values():
        _check_tensor(lazy)
        if lazy.ref.root.key not in places:
            raise CorruptError(f"storage {lazy.ref.root.key} has no data")

    def read_span(root, start, length):
        with open(path, "rb") as again:
            again.seek(places[root.key] + start)
            return again.read(length)

    return _entries(tensors, "<", read_span)
