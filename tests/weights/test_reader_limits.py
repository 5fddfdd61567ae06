"""Issue 17, item 7: a tiny weights file that declares gigabytes is refused before
anything is allocated, with one line naming the file, in a process whose peak memory
is measured; and a file's tensors are read one at a time, when looked up.

Each hostile file is made here (``_crafted``): a few hundred bytes, a deflate bomb of
half a megabyte. The child process caps its address space (the machine is shared), so
a reader that allocates what the file declares shows up as a MemoryError or as memory
grown, never as a swapping machine.
"""

from __future__ import annotations

import os

import pytest
from _crafted import (
    GIB,
    deflate_bomb_pth,
    empty_dataset_h5,
    make_big_and_small_safetensors,
    overflow_safetensors,
    read_in_child,
    stride0_pth,
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
