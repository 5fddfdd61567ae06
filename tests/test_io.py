"""kerascnn._io: a reader never sees half a file, and a killed writer's temporaries
do not stay behind."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from kerascnn import _io


def test_atomic_write_replaces_whole_and_leaves_nothing(tmp_path):
    path = tmp_path / "a.json"
    _io.write_json(str(path), {"x": 1})
    _io.write_json(str(path), {"x": 2})
    assert _io.read_json(str(path)) == {"x": 2}
    assert os.listdir(tmp_path) == ["a.json"]


def test_an_error_mid_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with _io.atomic_path(str(path)) as tmp:
            open(tmp, "w").write("half")
            raise RuntimeError("disk full")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["a.txt"]


def _killed_mid_write(folder):
    """A real process that dies by SIGKILL while filling an export folder."""
    code = textwrap.dedent(f"""
        import os, signal
        from kerascnn._io import atomic_dir
        with atomic_dir({str(folder / "1")!r}) as tmp:
            open(os.path.join(tmp, "saved_model.pb"), "wb").write(b"half")
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    left = [n for n in os.listdir(folder) if n.startswith(".tmp-")]
    assert len(left) == 1, os.listdir(folder)
    return left[0]


def test_a_killed_writers_temporary_is_removed_by_the_next_write(tmp_path):
    stale = _killed_mid_write(tmp_path)
    other_host = ".tmp-0000000012-1-abc"                    # a shared file system's
    live = f".tmp-{_io._HOST}{os.getpid()}-1-def"           # a write in progress
    for name in (other_host, live):
        os.mkdir(tmp_path / name)
    with _io.atomic_dir(str(tmp_path / "2")) as tmp:
        open(os.path.join(tmp, "saved_model.pb"), "wb").write(b"whole")
    assert sorted(os.listdir(tmp_path)) == sorted(["2", other_host, live])
    assert stale not in os.listdir(tmp_path)


def test_remove_stale_temporaries_names_what_it_removed(tmp_path):
    stale = _killed_mid_write(tmp_path)
    (tmp_path / "1.keras").write_text("a user's file")       # not a temporary
    assert _io.remove_stale_temporaries(str(tmp_path)) == [stale]
    assert os.listdir(tmp_path) == ["1.keras"]
