"""Hostile weight files: each a few hundred bytes to a megabyte that
declares gigabytes, and a subprocess that reads one and reports its peak memory.

Nothing here imports kerascnn (the child does). ``torch`` and ``h5py`` are test tools.
"""

from __future__ import annotations

import collections
import json
import os
import pickle
import struct
import subprocess
import sys
import textwrap
import zlib

import numpy as np

GIB = 1 << 30


# -- PyTorch -----------------------------------------------------------------------------
def stride0_pth(path, zip_format=True):
    """A state dict whose one tensor is ``zeros(1).expand(2**30)``: one float of
    storage, 2**30 elements of stride 0 (what ``torch.save`` writes for an expand)."""
    import torch

    state = {"w": torch.zeros(1).expand(2**30)}
    torch.save(state, path, _use_new_zipfile_serialization=zip_format)
    return path


class _Stub:
    def __init__(self, key, numel):
        self.key, self.numel = key, numel


class _Tensor:
    def __init__(self, storage, size):
        self.args = (storage, 0, (size,), (1,), False, collections.OrderedDict())

    def __reduce__(self):
        import torch

        return (torch._utils._rebuild_tensor_v2, self.args)


def state_pickle(tensors):
    """``data.pkl`` of a zip ``.pth``: ``{name: float32 tensor of n elements}`` for
    ``tensors = {name: n}``, storage keys "0", "1", ..."""
    import io

    import torch

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, _Stub):
                return ("storage", torch.FloatStorage, obj.key, "cpu", obj.numel)
            return None

    state = collections.OrderedDict(
        (name, _Tensor(_Stub(str(i), n), n)) for i, (name, n) in enumerate(tensors.items())
    )
    buf = io.BytesIO()
    Pickler(buf, protocol=2).dump(state)
    return buf.getvalue()


def _zeros_deflated(nbytes):
    """A raw deflate stream of ``nbytes`` zeros (a multiple of 1 MiB), made in
    milliseconds: a fully flushed block of 1 MiB zeros repeats as it is."""
    assert nbytes % (1 << 20) == 0
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(bytes(1 << 20)) + c.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    zeros = bytes(1 << 20)
    for _ in range(nbytes >> 20):
        crc = zlib.crc32(zeros, crc)
    return block * (nbytes >> 20) + c.flush(), crc


def write_zip(path, members):
    """A zip file of ``members``: ``[(name, data, method, crc, uncompressed size)]``
    written as given (``data`` already compressed for method 8)."""
    local, central = bytearray(), bytearray()
    for name, data, method, crc, size in members:
        offset = len(local)
        fname = name.encode()
        local += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0x21, crc,
                             len(data), size, len(fname), 0) + fname + data
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0, 0x21, crc,
                               len(data), size, len(fname), 0, 0, 0, 0, 0, offset) + fname
    eocd = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members),
                       len(central), len(local), 0)
    with open(path, "wb") as f:
        f.write(bytes(local) + bytes(central) + eocd)
    return path


def deflate_bomb_pth(path, nbytes=GIB // 2):
    """A zip ``.pth`` whose one storage record is ``nbytes`` of zeros deflated ~1000
    times (a 1/2 GiB tensor in half a megabyte); the zip and its CRC are valid."""
    pkl = state_pickle({"w": nbytes // 4})
    data, crc = _zeros_deflated(nbytes)
    return write_zip(path, [
        ("archive/data.pkl", pkl, 0, zlib.crc32(pkl), len(pkl)),
        ("archive/data/0", data, 8, crc, nbytes),
    ])


# -- Keras-2 HDF5 ------------------------------------------------------------------------
def empty_dataset_h5(path, elements):
    """keras.applications' layout (``layer_names``, ``weight_names``) whose one dataset
    declares ``elements`` float32 and was never written (HDF5 stores nothing for it)."""
    import h5py

    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [b"dense"]
        group = f.create_group("dense")
        group.attrs["weight_names"] = [b"dense/kernel:0"]
        group.create_dataset("dense/kernel:0", shape=(elements,), dtype="f4")
    return path


def empty_dataset_keras3_h5(path, elements):
    """Keras 3's ``.weights.h5`` layout (``layers/<name>/vars/<i>``) whose one variable
    declares ``elements`` float32 and was never written."""
    import h5py

    with h5py.File(path, "w") as f:
        f.create_group("layers/dense/vars").create_dataset("0", shape=(elements,), dtype="f4")
        f.create_group("optimizer/vars")
    return path


# -- safetensors ---------------------------------------------------------------------------
def safetensors_file(path, header, data=b""):
    raw = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw + data)
    return path


def overflow_safetensors(path):
    """A shape whose product, 2**64, wraps to 0 in int64 (and offsets of 0 bytes)."""
    return safetensors_file(path, {"w": {"dtype": "F32", "shape": [2**32, 2**32],
                                         "data_offsets": [0, 0]}})


# -- the reading child -----------------------------------------------------------------------
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def peak_kb():
    """This process's peak resident memory (VmHWM), in KiB. getrusage's ru_maxrss would
    keep the forking parent's peak across exec, hiding the child's own."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))


def cap_address_space(extra):
    """Caps this process's address space at what it maps now plus ``extra`` bytes: the
    machine is shared, so a runaway allocation fails instead of swapping."""
    import resource

    with open("/proc/self/statm") as f:
        mapped = int(f.read().split()[0]) * resource.getpagesize()
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (mapped + extra, hard))


_CHILD = textwrap.dedent("""
    import json, sys
    from _crafted import cap_address_space, peak_kb
    from kerascnn.weights.readers import read_weights_file
    import h5py, numpy
    cap_address_space(int(sys.argv[3]))
    base = peak_kb()
    kind, message, read = "read", "", []
    try:
        wf = read_weights_file(sys.argv[1])
        names = list(wf.tensors) if sys.argv[2] == "*" else sys.argv[2].split(",")
        for name in names:
            read.append([name, list(wf.tensors[name].shape)])
    except BaseException as err:
        kind, message = type(err).__name__, str(err)
    print(json.dumps({"kind": kind, "message": message, "read": read,
                      "grew_mb": (peak_kb() - base) / 1024}))
""")


def run_child(code, *args, timeout=120):
    """Runs ``code`` in a fresh Python with the worktree and this folder on its path;
    returns the JSON object its last line prints."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (ROOT, HERE, os.environ.get("PYTHONPATH")) if p))
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    done = subprocess.run([sys.executable, "-c", code, *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def read_in_child(path, names="*", address_space=3 * GIB):
    """Reads ``path`` (and the tensors ``names``, "*" for all) in a fresh Python; returns
    ``{"kind", "message", "read", "grew_mb"}``, ``grew_mb`` the child's peak resident
    memory over its peak after importing the reader, h5py and numpy."""
    return run_child(_CHILD, os.fspath(path), names, address_space)


def make_big_and_small_safetensors(path, big_bytes):
    """One tensor ``big`` of ``big_bytes`` float32 zeros, then a small ``small``."""
    small = np.arange(6, dtype="<f4")
    n = big_bytes // 4
    header = {"big": {"dtype": "F32", "shape": [n], "data_offsets": [0, big_bytes]},
              "small": {"dtype": "F32", "shape": [2, 3],
                        "data_offsets": [big_bytes, big_bytes + small.nbytes]}}
    raw = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        f.seek(big_bytes, 1)  # a sparse run of zeros
        f.write(small.tobytes())
    return path
