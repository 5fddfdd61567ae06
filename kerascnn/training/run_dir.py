"""The run folder's lifecycle: where a run lives, who holds it, how far it got.

A run goes through three stages, each marked by a file written atomically when the
stage is over, so that running the same command again resumes at the first
unfinished one (nothing is lost to a kill, an error or a full disk)::

    trained.json       training finished (checkpoints/last.keras is the trained net;
                       written before backup/ is removed)
    test_metrics.json  the test split was evaluated (absent when the recipe has no
                       test split)
    completed.json     the export is done; the run is complete

``run.lock`` holds the PID of the ``kerascnn train`` process that owns the folder
(an advisory ``flock``: a killed process's lock is released by the kernel, so a stale
``run.lock`` is taken over; a live holder makes a second run into the same folder
fail at once, naming its PID).

Names that make paths stay inside their base folder: ``runs/<name>`` with a name that
is one plain path component (``kerascnn.training.recipe`` refuses others at parse
time; :func:`resolve_run_dir` checks again).
"""

from __future__ import annotations

import errno
import os

from kerascnn import _io

__all__ = [
    "COMPLETED",
    "TEST_METRICS",
    "TRAINED",
    "RunDir",
    "RunLocked",
    "log",
    "resolve_run_dir",
]

TRAINED = "trained.json"
TEST_METRICS = "test_metrics.json"
COMPLETED = "completed.json"
LOCK = "run.lock"


class RunLocked(OSError):
    """Another live process holds the run folder (an ``OSError``, as a busy file is:
    the command line prints it as one line)."""


def inside(base: str, name: str) -> str:
    """``base/name``, refusing a ``name`` that is not one plain path component
    (``..``, ``a/b``, an absolute path) so the result stays inside ``base``."""
    if (not name or name in (".", "..") or os.sep in name
            or (os.altsep and os.altsep in name) or os.path.isabs(name)):
        raise ValueError(f"`name` must be one plain folder name inside {base}/. "
                         f"Received: name={name!r}")
    return os.path.join(base, name)


def resolve_run_dir(recipe_name: str, output_dir: str | None = None, base="runs") -> str:
    """``output_dir`` (or ``runs/<recipe>``) unless it holds a completed run, then
    the next free ``<dir>-2``, ``<dir>-3``, ... (a finished run is never overwritten)."""
    first = output_dir or inside(base, recipe_name)
    candidate, n = first, 1
    while os.path.exists(os.path.join(candidate, COMPLETED)):
        n += 1
        candidate = f"{first.rstrip(os.sep)}-{n}"
    return candidate


class RunDir:
    """One run folder: its paths, its lock and its stage markers."""

    def __init__(self, path: str):
        self.path = path
        self._lock_fd = None

    def file(self, *names) -> str:
        return os.path.join(self.path, *names)

    @property
    def backup_dir(self) -> str:
        return self.file("backup")

    @property
    def checkpoint_dir(self) -> str:
        return self.file("checkpoints")

    def create(self) -> None:
        os.makedirs(self.path, mode=_io.default_mode(directory=True), exist_ok=True)

    # -- the lock --------------------------------------------------------------------
    def lock(self) -> "RunDir":
        """Takes ``run.lock`` (creating the folder); :class:`RunLocked` naming the
        holder's PID when a live process has it. Use as ``with run.lock(): ...``."""
        import fcntl

        self.create()
        path = self.file(LOCK)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)  # the umask applies
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                holder = _read_pid(fd)
                os.close(fd)
                if err.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                raise RunLocked(
                    f"{self.path} is in use by process {holder or '(unknown)'} (another "
                    f"`kerascnn train` holds {path}); wait for it to finish, stop it, or "
                    "give this run another --output-dir.") from None
            try:  # the holder may have removed the file between our open and flock
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        stale = _read_pid(fd)
        if stale and stale != str(os.getpid()):
            log(f"taking over {path} from process {stale}, which no longer runs")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd
        return self

    def unlock(self) -> None:
        if self._lock_fd is None:
            return
        try:
            os.remove(self.file(LOCK))
        except FileNotFoundError:
            pass
        os.close(self._lock_fd)  # closing releases the flock
        self._lock_fd = None

    def __enter__(self):
        if self._lock_fd is None:
            self.lock()
        return self

    def __exit__(self, *exc):
        self.unlock()
        return False

    # -- stages ------------------------------------------------------------------------
    def read(self, name: str):
        """The JSON of a stage marker (or any JSON file of the run); None if absent."""
        return _io.read_json(self.file(name))

    def write(self, name: str, obj) -> str:
        path = self.file(name)
        _io.write_json(path, obj, default=str)
        return path

    def trained(self):
        return self.read(TRAINED)

    def test_metrics(self):
        return self.read(TEST_METRICS)

    def completed(self):
        return self.read(COMPLETED)

    def stage(self) -> str:
        """``"train"``, ``"test"``, ``"export"`` or ``"done"``: the first unfinished
        stage (the test stage is skipped by the caller when there is no test split)."""
        if self.completed() is not None:
            return "done"
        if self.trained() is None:
            return "train"
        if self.test_metrics() is None:
            return "test"
        return "export"

    def checkpoint_epoch(self) -> int | None:
        """How many epochs ``checkpoints/last.keras`` holds (from its state file)."""
        state = _io.read_json(os.path.join(self.checkpoint_dir, "state.json"))
        if not state or not os.path.exists(os.path.join(self.checkpoint_dir, "last.keras")):
            return None
        try:
            return int(state["epoch"])
        except (KeyError, TypeError, ValueError):
            return None


def _read_pid(fd) -> str:
    try:
        return os.pread(fd, 32, 0).decode(errors="replace").strip()
    except OSError:
        return ""


def log(msg, who="kerascnn"):
    """One line of what a run is doing, on stdout, flushed (``[kerascnn] ...``; a
    study's own lines say ``[reproduce]``): the one console voice of training's
    modules and of the studies built on them."""
    print(f"[{who}] {msg}", flush=True)
