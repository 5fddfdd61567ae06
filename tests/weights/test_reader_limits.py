"""A tiny weights file that declares gigabytes is refused before
anything is allocated, with one line naming the file, in a process whose peak memory
is measured; and a file's tensors are read one at a time, when looked up.

Each hostile file is made here (``_crafted``): a few hundred bytes, a deflate bomb of
half a megabyte. The child process caps its address space (the machine is shared), so
a reader that allocates what the file declares shows up as a MemoryError or as memory
grown, never as a swapping machine.
"""

from __future__ import annotations

import json
import os
import struct

import numpy as np
import pytest
from _crafted import (
    GIB,
    deflate_bomb_pth,
    empty_dataset_h5,
    empty_dataset_keras3_h5,
    make_big_and_small_safetensors,
    overflow_safetensors,
    read_in_child,
    state_pickle,
    stride0_pth,
    write_zip,
)

torch = pytest.importorskip("torch")  # test tools: torch writes the .pth files
h5py = pytest.importorskip("h5py")

BOUND_MB = 600  # over the child's memory after importing the reader

CASES = {
    # name: (maker, largest file size, what the message says)
    "stride0_zip_pth": (lambda p: stride0_pth(p, zip_format=True), 4096, "stride-0"),
    "stride0_legacy_pth": (lambda p: stride0_pth(p, zip_format=False), 4096, "stride-0"),
    "deflate_bomb_pth": (deflate_bomb_pth, 1 << 20, "zip bomb"),
    "empty_2gib_h5": (lambda p: empty_dataset_h5(p, 2 * GIB // 4), 16384, "stores 0"),
    "empty_4tib_h5": (lambda p: empty_dataset_h5(p, 4096 * GIB // 4), 16384, "stores 0"),
    "empty_2gib_keras3_weights_h5": (lambda p: empty_dataset_keras3_h5(p, 2 * GIB // 4), 16384,
                                     "stores 0"),
    "overflowing_safetensors": (overflow_safetensors, 512, "needs 73786976294838206464"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_tiny_file_declaring_gigabytes_is_refused_in_bounded_memory(tmp_path, case):
    make, largest, reason = CASES[case]
    path = make(tmp_path / f"{case}.weights")
    assert os.path.getsize(path) <= largest
    got = read_in_child(path)
    assert got["kind"] == "WeightsFileError", got
    message = got["message"]
    assert message.startswith(str(path)) and "\n" not in message, message
    assert reason in message, message
    assert "MemoryError" not in message, message
    assert got["grew_mb"] < BOUND_MB, got


def test_tensors_are_read_one_at_a_time_when_looked_up(tmp_path):
    """A file with a 128 MiB tensor and a small one: reading the small one takes
    almost nothing (a model that uses part of a file pays for that part); reading the
    big one takes its size, so the measure sees what a reader allocates."""
    big = 128 << 20
    path = make_big_and_small_safetensors(tmp_path / "big_and_small.safetensors", big)
    small = read_in_child(path, "small")
    assert (small["kind"], small["read"]) == ("read", [["small", [2, 3]]]), small
    assert small["grew_mb"] < 32, small
    both = read_in_child(path, "big,small")
    assert both["kind"] == "read", both
    assert both["grew_mb"] > 0.9 * big / 2**20, both


def test_loading_a_model_reads_only_the_tensors_it_uses(tmp_path):
    """ResNet18(include_top=False) from a torchvision-layout safetensors file whose
    classifier declares 1 GiB (a sparse file): loading (``loading.apply``, what
    ``weights=`` runs after the build) allocates about the model's own size, not the
    file's classifier. Measured in this process with tracemalloc, which sees numpy's
    allocations (the readers' and the mappers'), so no TensorFlow child is started."""
    import tracemalloc

    from kerascnn.applications import ResNet18
    from kerascnn.weights.loading import WeightsPlan, apply

    from _torch_references import randomize_torch, torch_modules

    m = torch_modules()
    state = randomize_torch(m["ResNet"](m["BasicBlock"], [2, 2, 2, 2]), seed=2).state_dict()
    arrays = {k: v.numpy() for k, v in state.items() if not k.startswith("fc.")}
    header, offset = {}, 0
    for name, array in arrays.items():
        dtype = {"float32": "F32", "int64": "I64"}[str(array.dtype)]
        header[name] = {"dtype": dtype, "shape": list(array.shape),
                        "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
    rows = GIB // (512 * 4)
    header["fc.bias"] = {"dtype": "F32", "shape": [rows],
                         "data_offsets": [offset, offset + rows * 4]}
    offset += rows * 4
    header["fc.weight"] = {"dtype": "F32", "shape": [rows, 512],
                           "data_offsets": [offset, offset + GIB]}
    raw = json.dumps(header).encode()
    path = tmp_path / "resnet18_with_a_1gib_classifier.safetensors"
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        for array in arrays.values():
            f.write(np.ascontiguousarray(array).tobytes())
        f.truncate(8 + len(raw) + offset + GIB)  # the classifier: a hole, no disk
    model = ResNet18(include_top=False, input_shape=(32, 32, 3))
    model_mb = sum(int(np.prod(w.shape)) for w in model.weights) * 4 / 2**20
    tracemalloc.start()
    try:
        apply(model, WeightsPlan("resnet18", "resnet", str(path), None, include_top=False))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    want = arrays["layer1.0.conv1.weight"].transpose(2, 3, 1, 0)
    np.testing.assert_array_equal(model.get_layer("conv2_block1_1_conv").kernel.numpy(), want)
    peak_mb = peak / 2**20
    print(f"load peak {peak_mb:.1f} MB, model {model_mb:.1f} MB")
    assert 0 < peak_mb < 2 * model_mb + 16, (peak_mb, model_mb)  # 1 GiB if the file were read


def test_membership_and_shapes_read_no_tensor(tmp_path):
    """``name in tensors``, ``shape`` and ``dtype`` answer from the header alone (a
    mapper asks them of every tensor); only a lookup reads, and every lookup reads."""
    from kerascnn.weights.readers import read_weights_file

    path = make_big_and_small_safetensors(tmp_path / "big_and_small.safetensors", 1 << 20)
    tensors = read_weights_file(path).tensors
    reads = []
    for name, (shape, dtype, load) in list(tensors._entries.items()):
        tensors._entries[name] = (shape, dtype, lambda n=name, f=load: reads.append(n) or f())
    assert "small" in tensors and "missing" not in tensors
    assert (tensors.shape("big"), tensors.dtype("small")) == ((1 << 18,), np.float32)
    assert tensors.nbytes("big") == 1 << 20 and list(tensors) == ["big", "small"]
    assert reads == []
    np.testing.assert_array_equal(tensors["small"], np.arange(6, dtype=np.float32).reshape(2, 3))
    tensors["small"]
    assert reads == ["small", "small"]


# A deflate stream whose first block has the reserved type 3 (the first byte's bits 1-2):
# zlib refuses it at once ("invalid block type"), whatever follows.
BAD_DEFLATE = b"\x07" + bytes(range(40))


@pytest.mark.parametrize("broken", ["the pickle record", "a storage record"])
def test_a_broken_deflate_stream_is_one_line_naming_the_file(tmp_path, broken):
    """A zip .pth whose deflated record does not inflate (found by test_reader_fuzz.py):
    zlib's error, at reading the file or at reading the tensor, is the one-line
    WeightsFileError naming the file, not a traceback."""
    import zlib

    from kerascnn.weights.readers import WeightsFileError, read_weights_file

    pkl = state_pickle({"w": 4})
    path = tmp_path / "broken.pth"
    if broken == "the pickle record":
        members = [("archive/data.pkl", BAD_DEFLATE, 8, 0, len(pkl)),
                   ("archive/data/0", bytes(16), 0, zlib.crc32(bytes(16)), 16)]
    else:
        members = [("archive/data.pkl", pkl, 0, zlib.crc32(pkl), len(pkl)),
                   ("archive/data/0", BAD_DEFLATE, 8, 0, 16)]
    write_zip(path, members)
    with pytest.raises(WeightsFileError) as caught:
        wf = read_weights_file(str(path))
        wf.tensors["w"]
    message = str(caught.value)
    assert str(path) in message and "\n" not in message, message
    assert "error" in message.lower() or "invalid" in message.lower(), message
