"""Writing files so that a reader never sees half of one.

Every file or folder that another process may pick up (a checkpoint, ``history.csv``,
``preprocessing.json``, an export's version folder, ``models.config``) is written
under a temporary name in the same folder and renamed into place: ``os.replace`` is
atomic on one file system, so a reader sees the old file or the new one, never a
truncated one, and a kill or a full disk leaves the old file whole.

Temporary files from ``tempfile`` are created private (0600 files, 0700 folders);
what lands under the final name gets the modes that the user's umask gives an
ordinary file or folder (0644 / 0755 with umask 022), so that a TF Serving container
running as another user can read an export.

A temporary's name says which process made it (``.tmp-<host><pid>-…``: a hash of the
host name, then the process id). A process that is killed mid-write (SIGKILL, power
loss) cannot remove its own; the next write into the same folder removes those whose
process no longer exists on this host, so a killed export leaves no half-written
SavedModel behind for good. Temporaries of other hosts (a shared file system) and of
live processes are never touched.

Used by training, evaluation and export alike; it imports nothing of kerascnn.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import tempfile
import zlib

__all__ = [
    "atomic_dir",
    "atomic_path",
    "atomic_write",
    "default_mode",
    "read_json",
    "remove_stale_temporaries",
    "write_json",
]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def default_mode(directory: bool = False) -> int:
    """The mode ``open()``/``mkdir`` would give a new file (0666) or folder (0777)
    under the current umask."""
    return (0o777 if directory else 0o666) & ~_umask()


def _chmod_tree(path: str) -> None:
    """Ordinary modes for ``path`` and, when it is a folder, everything below it."""
    if os.path.isdir(path) and not os.path.islink(path):
        dir_mode, file_mode = default_mode(True), default_mode(False)
        for root, dirs, files in os.walk(path):
            os.chmod(root, dir_mode)
            for name in files:
                full = os.path.join(root, name)
                if not os.path.islink(full):
                    os.chmod(full, file_mode)
    else:
        os.chmod(path, default_mode(False))


_HOST = f"{zlib.crc32(socket.gethostname().encode()) & 0xFFFFFFFF:08x}"
_STALE = re.compile(r"^\.tmp-([0-9a-f]{8})(\d+)-")


def _prefix(name: str = "") -> str:
    return f".tmp-{_HOST}{os.getpid()}-{name}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OverflowError, OSError):
        return True              # exists (another user's) or cannot tell: keep
    return True


def remove_stale_temporaries(folder: str) -> list[str]:
    """Removes the temporaries in ``folder`` left by processes of this host that no
    longer exist; returns their names."""
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        m = _STALE.match(name)
        if not m or m[1] != _HOST or _alive(int(m[2])):
            continue
        full = os.path.join(folder, name)
        try:
            if os.path.isdir(full) and not os.path.islink(full):
                shutil.rmtree(full)
            else:
                os.remove(full)
            removed.append(name)
        except OSError:
            pass                 # another process removed it first
    return removed


def _fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str, *, suffix: str | None = None):
    """Yields a temporary path next to ``path`` (same folder, same suffix unless
    ``suffix`` is given: Keras picks the format from it) for the caller to write;
    on success it gets ordinary modes and is renamed to ``path``; on any error,
    including ``KeyboardInterrupt``, it is removed and ``path`` is untouched::

        with atomic_path("run/checkpoints/last.keras") as tmp:
            model.save(tmp)
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    if suffix is None:
        base = os.path.basename(path)
        suffix = base[base.index("."):] if "." in base.lstrip(".") else ""
        if base.startswith(".") and base.count(".") == 1:
            suffix = ""
    remove_stale_temporaries(folder)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=_prefix(), suffix=suffix)
    os.close(fd)
    try:
        yield tmp
        _chmod_tree(tmp)
        os.replace(tmp, path)
        _fsync_dir(folder)
    except BaseException:
        if os.path.isdir(tmp) and not os.path.islink(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        elif os.path.lexists(tmp):
            os.remove(tmp)
        raise


@contextlib.contextmanager
def atomic_dir(path: str):
    """Yields a temporary hidden folder next to ``path`` to fill; on success its tree
    gets ordinary modes and it is renamed to ``path`` (which must not exist: an
    existing folder is never replaced, ``FileExistsError``); on error it is removed."""
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    remove_stale_temporaries(parent)
    tmp = tempfile.mkdtemp(dir=parent, prefix=_prefix(f"{os.path.basename(path)}-"))
    try:
        yield tmp
        if os.path.exists(path):
            raise FileExistsError(f"{path} exists; it is never overwritten.")
        _chmod_tree(tmp)
        os.rename(tmp, path)
        _fsync_dir(parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_write(path: str, data: str | bytes) -> None:
    """Writes ``data`` (text or bytes) to ``path`` atomically, with ordinary modes."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def write_json(path: str, obj, **kwargs) -> None:
    """``json.dumps(obj, indent=1)`` written atomically."""
    kwargs.setdefault("indent", 1)
    atomic_write(path, json.dumps(obj, **kwargs))


def read_json(path: str):
    """The JSON in ``path``; None when it is missing or cannot be parsed (an
    unreadable state file means: no state)."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
