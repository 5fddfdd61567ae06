"""Every reader, on any mutation of a valid file, either returns
tensors or raises :class:`~kerascnn.weights.readers.WeightsFileError` naming the file:
no other exception, no hang, bounded memory.

Seeds: small valid files of each format, made by their producers here (``torch.save``
zip and legacy, ``safetensors``, keras.applications' HDF5 layout through ``h5py``,
Caffe's messages through ``protobuf``). ``hypothesis`` (derandomised, a fixed number of
examples) mutates them: bit flips, 1/2/4/8-byte fields overwritten with boundary
integers, truncations, inserted, deleted and duplicated bytes, and header fields edited
where the format has them (safetensors' JSON entries, zip headers' sizes, offsets and
compression method). The fuzz loop runs in one child process (this file run as a
script, without torch) whose address space is capped and whose peak memory is
measured; each example has a hang guard (an interval timer) and a deadline.
"""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MAX_EXAMPLES = 600
BOUND_MB = 600  # the child's peak over its peak after imports
HANG_S = 10  # one example


# -- seeds (made by the parent, which has the producers) ------------------------------------
def make_seeds(folder):
    import h5py
    import torch
    from _weights_helpers import write_caffemodel
    from safetensors.numpy import save_file

    os.makedirs(folder, exist_ok=True)
    torch.manual_seed(0)
    base = torch.randn(6, 4)
    state = {
        "conv.weight": torch.randn(2, 3, 3, 3),
        "conv.bias": torch.randn(2).half(),
        "bn.num_batches_tracked": torch.tensor(7),
        "fc.weight": base.t(),  # non-contiguous
        "fc.bias": base[1],  # a view into the same storage
        "emb": torch.randn(3).to(torch.bfloat16),
    }
    torch.save(state, os.path.join(folder, "zip.pth"))
    torch.save(state, os.path.join(folder, "legacy.pth"), _use_new_zipfile_serialization=False)
    arrays = {"w": np.arange(12, dtype=np.float32).reshape(3, 4),
              "b": np.ones(3, np.float16), "n": np.array([5], np.int64)}
    save_file(arrays, os.path.join(folder, "st.safetensors"))
    with h5py.File(os.path.join(folder, "keras2.h5"), "w") as f:
        f.attrs["layer_names"] = [b"conv1", b"fc"]
        for layer, shapes in (("conv1", [(3, 3, 3, 2), (2,)]), ("fc", [(4, 3), (3,)])):
            group = f.create_group(layer)
            names = [f"{layer}/{k}:0".encode() for k in ("kernel", "bias")]
            group.attrs["weight_names"] = names
            for name, shape in zip(names, shapes):
                group.create_dataset(name.decode(), data=np.ones(shape, np.float32))
    rng = np.random.default_rng(0)
    layers = [("conv1", "Convolution", [rng.random((2, 3, 3, 3), np.float32),
                                        rng.random(2, np.float32)]),
              ("relu1", "ReLU", []),
              ("fc", "InnerProduct", [rng.random((3, 4), np.float32), rng.random(3, np.float32)])]
    write_caffemodel(os.path.join(folder, "layer.caffemodel"), layers, encoding="layer",
                     shape="shape", packed=True)
    write_caffemodel(os.path.join(folder, "v1.caffemodel"), layers, encoding="layers",
                     shape="legacy", packed=False)
    return folder


# -- the fuzz loop (in the child) -----------------------------------------------------------
INTERESTING = [0, 1, 2, 3, 7, 8, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0xFFFF, 2**31 - 1, 2**31,
               2**32 - 1, 2**32, 2**40, 2**62, 2**63 - 1, 2**64 - 1]


class Hang(BaseException):
    """An example ran past HANG_S (a BaseException: no reader's handler catches it)."""


def _edit_safetensors(data, draw, st):
    (length,) = struct.unpack("<Q", bytes(data[:8]))
    try:
        header = json.loads(bytes(data[8 : 8 + length]))
    except ValueError:
        return data
    names = [k for k in header if k != "__metadata__"] if isinstance(header, dict) else []
    if not names:
        return data
    entry = header[draw(st.sampled_from(names))]
    if not isinstance(entry, dict):
        return data
    field = draw(st.sampled_from(["shape", "data_offsets", "dtype", "shape_item", "drop"]))
    big = st.sampled_from(INTERESTING + [-1, 1.5, "3", None, True])
    if field == "shape":
        entry["shape"] = draw(st.lists(big, max_size=4))
    elif field == "data_offsets":
        entry["data_offsets"] = draw(st.lists(big, min_size=0, max_size=3))
    elif field == "dtype":
        entry["dtype"] = draw(st.sampled_from(["F32", "BF16", "F8", "", 4, "BOOL", "U8"]))
    elif field == "shape_item" and isinstance(entry.get("shape"), list) and entry["shape"]:
        entry["shape"][0] = draw(big)
    else:
        entry.pop(draw(st.sampled_from(["shape", "data_offsets", "dtype"])), None)
    raw = json.dumps(header).encode()
    return bytearray(struct.pack("<Q", len(raw)) + raw + bytes(data[8 + length :]))


# (signature, offsets of the fields worth editing: name -> (offset, width))
_ZIP_FIELDS = {
    b"PK\x03\x04": {"method": (8, 2), "crc": (14, 4), "csize": (18, 4), "usize": (22, 4),
                    "name_len": (26, 2), "extra_len": (28, 2)},
    b"PK\x01\x02": {"method": (10, 2), "crc": (16, 4), "csize": (20, 4), "usize": (24, 4),
                    "name_len": (28, 2), "offset": (42, 4)},
    b"PK\x05\x06": {"count": (10, 2), "cd_size": (12, 4), "cd_offset": (16, 4)},
}


def _edit_zip(data, draw, st):
    places = [(i, sig) for sig in _ZIP_FIELDS for i in _find_all(data, sig)]
    if not places:
        return data
    start, sig = draw(st.sampled_from(sorted(places)))
    offset, width = _ZIP_FIELDS[sig][draw(st.sampled_from(sorted(_ZIP_FIELDS[sig])))]
    value = draw(st.sampled_from(INTERESTING + [8, 12, 14, 99]))
    at = start + offset
    data[at : at + width] = (value % 2 ** (8 * width)).to_bytes(width, "little")
    return data


def _find_all(data, sub):
    found, at = [], data.find(sub)
    while at >= 0:
        found.append(at)
        at = data.find(sub, at + 1)
    return found


def mutations(seeds):
    from hypothesis import strategies as st

    @st.composite
    def mutated(draw):
        name = draw(st.sampled_from(sorted(seeds)))
        data = bytearray(seeds[name])
        for _ in range(draw(st.integers(1, 3))):
            if not data:
                break
            op = draw(st.sampled_from(["flip", "int", "truncate", "insert", "duplicate",
                                       "delete", "field"]))
            pos = draw(st.integers(0, len(data) - 1))
            if op == "flip":
                data[pos] ^= 1 << draw(st.integers(0, 7))
            elif op == "int":
                width = draw(st.sampled_from([1, 2, 4, 8]))
                value = draw(st.sampled_from(INTERESTING))
                data[pos : pos + width] = (value % 2 ** (8 * width)).to_bytes(width, "little")
            elif op == "truncate":
                del data[pos:]
            elif op == "insert":
                data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
            elif op == "duplicate":
                data[pos:pos] = data[pos : pos + draw(st.integers(1, 64))]
            elif op == "delete":
                del data[pos : pos + draw(st.integers(1, 16))]
            elif name.endswith(".safetensors"):
                data = _edit_safetensors(data, draw, st)
            elif name.endswith(".pth"):
                data = _edit_zip(data, draw, st)
            else:
                data[pos] = draw(st.sampled_from([0x08, 0x0A, 0x12, 0x1A, 0x2A, 0x3A, 0xFF]))
        return name, bytes(data)

    return mutated()


def check_one(path):
    """Reads ``path`` and every tensor; the one allowed failure is WeightsFileError
    naming the file, in one line."""
    from kerascnn.weights.readers import WeightsFileError, read_weights_file

    try:
        wf = read_weights_file(path)
        for name in wf.tensors:
            array = wf.tensors[name]
            assert isinstance(array, np.ndarray), (name, type(array))
            assert array.shape == wf.tensors.shape(name), name
            assert array.dtype == wf.tensors.dtype(name), name
    except WeightsFileError as err:
        message = str(err)
        assert str(path) in message, message
        assert "\n" not in message, message


def fuzz(seed_dir, work_dir):
    from datetime import timedelta

    from hypothesis import HealthCheck, given, settings

    seeds = {}
    for name in sorted(os.listdir(seed_dir)):
        with open(os.path.join(seed_dir, name), "rb") as f:
            seeds[name] = f.read()
    for name in seeds:  # the seeds themselves read
        check_one(os.path.join(seed_dir, name))

    def on_alarm(signum, frame):
        raise Hang(f"one example ran past {HANG_S} s")

    signal.signal(signal.SIGALRM, on_alarm)
    counts = {}

    @settings(max_examples=MAX_EXAMPLES, derandomize=True, database=None,
              deadline=timedelta(seconds=5),
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(mutations(seeds))
    def run(case):
        name, data = case
        counts[name] = counts.get(name, 0) + 1
        path = os.path.join(work_dir, "mutated-" + name)
        with open(path, "wb") as f:
            f.write(data)
        signal.setitimer(signal.ITIMER_REAL, HANG_S)
        try:
            check_one(path)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)

    run()
    return counts


def main(seed_dir, work_dir, address_space):
    import h5py  # noqa: F401 - imported before the baseline, as the readers import it
    import hypothesis  # noqa: F401
    from _crafted import cap_address_space, peak_kb

    import kerascnn.weights.readers  # noqa: F401

    cap_address_space(address_space)
    base = peak_kb()
    counts = fuzz(seed_dir, work_dir)
    print(json.dumps({"counts": counts, "grew_mb": (peak_kb() - base) / 1024,
                      "torch_imported": "torch" in sys.modules}))


# -- the test ---------------------------------------------------------------------------
def test_mutated_files_read_or_are_refused_naming_the_file(tmp_path):
    pytest.importorskip("hypothesis")
    pytest.importorskip("torch")  # a producer of the seeds
    seeds = make_seeds(tmp_path / "seeds")
    work = tmp_path / "work"
    work.mkdir()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (ROOT, HERE, os.environ.get("PYTHONPATH")) if p))
    env.setdefault("OMP_NUM_THREADS", "1")
    done = subprocess.run(
        [sys.executable, __file__, str(seeds), str(work), str(2 << 30)],
        capture_output=True, text=True, timeout=240, env=env,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-6000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert sum(got["counts"].values()) >= MAX_EXAMPLES, got
    assert len(got["counts"]) == len(os.listdir(seeds)), got  # every format fuzzed
    assert got["grew_mb"] < BOUND_MB, got
    assert not got["torch_imported"], got


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
