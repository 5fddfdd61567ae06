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

Tensors are rebuilt from (storage, offset, size, stride) with numpy's ``as_strided``
and copied, so non-contiguous tensors and tensors sharing one storage come out as the
values PyTorch would show. Floating tensors are returned as float32 (float16 and
bfloat16 exactly, float64 rounded); integer and bool tensors keep their type.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile

import numpy as np

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001

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


class UnsafeWeightsError(ValueError):
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
    return UnsafeWeightsError(
        f"{path}: refusing to unpickle the global '{module}.{name}': a PyTorch state dict "
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
        raise ValueError(
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
            raise ValueError(
                f"{path}: holds the tensor {name!r} twice (with and without 'module.')"
            )
        tensors[name] = value
    if not tensors:
        raise ValueError(f"{path}: the pickled dict holds no tensors (keys: {list(obj)[:5]})")
    return tensors


def _to_numpy(lazy):
    root = lazy.ref.root
    if root.data is None:
        raise CorruptError(f"storage {root.key} has no data")
    stype = root.stype
    base = root.data[lazy.ref.offset : lazy.ref.offset + lazy.ref.numel]
    if lazy.ref.offset + lazy.ref.numel > root.data.size:
        raise CorruptError(f"storage {root.key} is shorter than its view")
    count = int(np.prod(lazy.size, dtype=np.int64))
    if count == 0:
        array = np.empty(lazy.size, dtype=base.dtype)
    else:
        last = lazy.offset + sum((n - 1) * s for n, s in zip(lazy.size, lazy.stride))
        if last >= base.size:
            raise CorruptError(
                f"a tensor of size {lazy.size} (stride {lazy.stride}, offset {lazy.offset}) "
                f"overruns storage {root.key} of {base.size} elements"
            )
        view = np.lib.stride_tricks.as_strided(
            base[lazy.offset :],
            shape=lazy.size,
            strides=tuple(s * base.itemsize for s in lazy.stride),
            writeable=False,
        )
        array = np.array(view, copy=True)
    array = array.astype(array.dtype.newbyteorder("="), copy=False)
    if stype.bf16:
        return (array.astype(np.uint32) << 16).view(np.float32)
    if array.dtype.kind == "f":
        return array.astype(np.float32, copy=False)
    return array


def read_zip(path, archive: zipfile.ZipFile):
    """The state dict of a zip-format ``.pth`` (``archive`` is open)."""
    pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pickles) != 1:
        raise CorruptError("no <archive>/data.pkl record")
    prefix = pickles[0][: -len("data.pkl")]
    order = "<"
    if prefix + "byteorder" in archive.namelist():
        mark = archive.read(prefix + "byteorder").strip()
        if mark not in (b"little", b"big"):
            raise CorruptError(f"byteorder record {mark!r}")
        order = "<" if mark == b"little" else ">"
    storages = {}
    obj = _load_state(io.BytesIO(archive.read(pickles[0])), path, storages)
    tensors = _unwrap(obj, path)
    for lazy in tensors.values():
        root = lazy.ref.root
        if root.data is None:
            record = f"{prefix}data/{root.key}"
            try:
                raw = archive.read(record)
            except KeyError:
                raise CorruptError(f"no record {record}") from None
            dtype = root.stype.dtype(order)
            if len(raw) != root.numel * dtype.itemsize:
                raise CorruptError(
                    f"record {record} holds {len(raw)} bytes for {root.numel} elements"
                )
            root.data = np.frombuffer(raw, dtype=dtype)
    return {name: _to_numpy(lazy) for name, lazy in tensors.items()}


def is_legacy(head: bytes) -> bool:
    """Whether ``head`` (the first bytes of a file) starts with the legacy magic number."""
    if not head or head[:1] not in (b"\x80", b"L", b"I"):
        return False
    try:
        return _NoGlobalsUnpickler(io.BytesIO(head), "").load() == MAGIC_NUMBER
    except Exception:  # any byte string: only an exact magic number counts
        return False


def read_legacy(path, f):
    """The state dict of a legacy (non-zip) ``.pth``; ``f`` is open at its start."""

    def plain():
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
    obj = _load_state(f, path, storages)
    keys = plain()
    if not isinstance(keys, list):
        raise CorruptError("the storage key list is missing")
    order = "<"
    for key in keys:
        key = key.decode("ascii") if isinstance(key, bytes) else str(key)
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
        dtype = root.stype.dtype(order)
        raw = f.read(numel * dtype.itemsize)
        if len(raw) != numel * dtype.itemsize:
            raise CorruptError(f"storage {key} is cut off")
        root.data = np.frombuffer(raw, dtype=dtype)
    tensors = _unwrap(obj, path)
    return {name: _to_numpy(lazy) for name, lazy in tensors.items()}
