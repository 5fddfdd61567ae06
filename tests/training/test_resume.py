"""Nothing lost: a run killed at any stage finishes, when the
same command runs again, with the final metrics of an uninterrupted run.

Kill points are deterministic: the test watches the run's folders with inotify and
sends SIGKILL the moment a file of the stage appears (the backup's temporary weights
file, ``trained.json`` before the test evaluation, the export's temporary folder),
then checks on disk that the kill came where it was meant to. A full disk is a small
tmpfs mounted on the run's ``backup/`` folder.

Only the killed runs are processes of their own (the kill is what they test): each a
child forked by one process that imported TensorFlow and kerascnn once
(``tinyrun.ForkServer``), running ``kerascnn.cli.main`` as ``python -m kerascnn.cli``
would. The uninterrupted references and the second runs, which read what a killed run
left on disk, run the same command in this process."""

import contextlib
import ctypes
import ctypes.util
import csv
import io
import json
import os
import select
import signal
import struct
import subprocess
import time

import pytest

from tinyrun import TINY, ForkServer, make_folder

pytestmark = pytest.mark.tf_only  # tf.data / SavedModel

IN_CREATE, IN_MOVED_TO = 0x100, 0x80
# lr 0.002: the validation error of the reference improves at epoch 3 (66.7, 25, 0, 0 %),
# which the last test needs
RECIPE = dict(epochs=4, steps=2, batch=4, lr=0.002)
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
TIMEOUT = 400


class _Watch:
    """inotify on one folder: the names created or moved into it, as they happen."""

    def __init__(self, folder, mask=IN_CREATE | IN_MOVED_TO):
        self.libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_NONBLOCK)
        if self.fd < 0 or self.libc.inotify_add_watch(self.fd, os.fsencode(folder), mask) < 0:
            raise OSError(ctypes.get_errno(), "inotify")

    def events(self, timeout):
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return []
        data, out, i = os.read(self.fd, 65536), [], 0
        while i < len(data):
            _, mask, _, length = struct.unpack_from("iIII", data, i)
            name = data[i + 16:i + 16 + length].rstrip(b"\0").decode()
            out.append((name, mask))
            i += 16 + length
        return out

    def close(self):
        os.close(self.fd)


def _cmd(recipe, run, export_dir, *extra):
    """The ``kerascnn train`` command line of a run (after ``python -m kerascnn.cli``)."""
    return ["train", recipe, "--output-dir", run, "--export-dir", export_dir,
            "--verbose", "2", *extra]


class _Ran:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def _here(cmd, check=True):
    """``cmd`` run by ``kerascnn.cli.main`` in this process (umask 022, its output
    captured), as ``subprocess.run`` would give it."""
    from kerascnn.cli import main

    out, err = io.StringIO(), io.StringIO()
    umask = os.umask(0o022)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(cmd))
    finally:
        os.umask(umask)
    ran = _Ran(code, out.getvalue(), err.getvalue())
    if check:
        assert code == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    return ran


@pytest.fixture(scope="module")
def server():
    """The process the killed runs are forked from (umask 022, ``ENV``)."""
    forks = ForkServer(env=ENV)
    yield forks
    forks.close()


def _kill_when(server, cmd, cwd, folder, match, delay=0.0):
    """Starts ``cmd`` (a forked child of ``server``); SIGKILLs it when ``match(name)``
    for a name appearing in ``folder`` (created by the test beforehand). Returns the
    name."""
    os.makedirs(folder, exist_ok=True)
    watch = _Watch(folder)
    log = os.path.join(cwd, "killed.log")
    pid = server.start(cmd, cwd, log)
    deadline, seen = time.time() + TIMEOUT, None
    try:
        while seen is None and time.time() < deadline and server.running(pid):
            for name, _ in watch.events(0.5):
                if match(name):
                    seen = name
                    break
        if seen is not None:
            if delay:
                time.sleep(delay)
            os.kill(pid, signal.SIGKILL)
    finally:
        watch.close()
        returncode = server.wait(pid, timeout=0)
    assert seen is not None, open(log).read()[-3000:]
    assert returncode == -signal.SIGKILL
    return seen


def _rows(run):
    with open(os.path.join(run, "history.csv"), newline="") as f:
        return list(csv.DictReader(f))


def _final(run):
    metrics = json.load(open(os.path.join(run, "test_metrics.json")))
    last = _rows(run)[-1]
    return metrics, {k: float(v) for k, v in last.items()}


def _same_as_reference(run, reference, backup_removed=True):
    metrics, last = _final(run)
    ref_metrics, ref_last = reference
    assert metrics == pytest.approx(ref_metrics, rel=1e-4, abs=1e-4)
    assert last == pytest.approx(ref_last, rel=1e-4, abs=1e-4)
    assert [int(r["epoch"]) for r in _rows(run)] == list(range(RECIPE["epochs"]))
    done = json.load(open(os.path.join(run, "completed.json")))
    assert done["epochs"] == RECIPE["epochs"] and done["export"]
    if backup_removed:
        assert not os.path.exists(os.path.join(run, "backup"))
    assert not os.path.exists(os.path.join(run, "run.lock"))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    folder = make_folder(str(root / "data"), per_class_train=8, per_class_test=4)
    recipe = root / "tiny.toml"
    recipe.write_text(TINY.format(source=folder, **RECIPE))
    return root, str(recipe)


@pytest.fixture(scope="module")
def reference(setup):
    """An uninterrupted run (umask 022, in this process): its final metrics and its
    folders."""
    root, recipe = setup
    run, export_dir = str(root / "ref"), str(root / "ref_sm")
    _here(_cmd(recipe, run, export_dir))
    return _final(run), run, export_dir


def test_modes_under_umask_022(reference):
    """What the run and the export write is readable by others."""
    _, run, export_dir = reference
    wrong = []
    for top in (run, export_dir):
        for folder, dirs, files in os.walk(top):
            mode = os.stat(folder).st_mode & 0o777
            if mode != 0o755:
                wrong.append((folder, oct(mode)))
            for name in files:
                path = os.path.join(folder, name)
                mode = os.stat(path).st_mode & 0o777
                if mode != 0o644:
                    wrong.append((path, oct(mode)))
    assert not wrong
    for name in ("checkpoints/last.keras", "history.csv", "preprocessing.json",
                 "trained.json", "test_metrics.json", "completed.json", "curves.png"):
        assert os.path.exists(os.path.join(run, name)), name
    assert os.path.exists(os.path.join(export_dir, "models.config"))
    assert os.path.exists(os.path.join(export_dir, "tiny", "1", "saved_model.pb"))


def test_kill_mid_epoch_then_resume(setup, reference, tmp_path, server):
    root, recipe = setup
    run, export_dir = str(tmp_path / "run"), str(tmp_path / "sm")
    cmd = _cmd(recipe, run, export_dir)
    # the first backup commit (the metadata's rename) ends epoch 1; a moment later the
    # run is inside epoch 2 (0.05 s: the tiny net's epoch of two steps and its saves take
    # longer; 0.3 s let epoch 2's own backup commit first, now and then)
    _kill_when(server, cmd, str(tmp_path), os.path.join(run, "backup"),
               lambda name: name == "training_metadata.json", delay=0.05)
    assert json.load(open(os.path.join(run, "backup", "training_metadata.json")))["epoch"] == 1
    assert not os.path.exists(os.path.join(run, "trained.json"))
    rows_before = _rows(run)
    second = _here(cmd)
    assert f"resuming tiny in {run} at the train stage" in second.stdout
    epochs = [line for line in second.stdout.splitlines() if line.startswith("Epoch ")]
    assert epochs[0].startswith(f"Epoch 2/{RECIPE['epochs']}"), epochs[:2]
    _same_as_reference(run, reference[0])
    assert _rows(run)[0] == rows_before[0]  # the epoch finished before the kill is kept


def test_kill_during_the_backup_write_falls_back_to_the_checkpoint(setup, reference,
                                                                   tmp_path, server):
    """Killed while epoch 1's weights go to the backup: the temporary file is
    removed, the backup has no commit, and the next run resumes from
    ``checkpoints/last.keras`` (written before the backup) at epoch 2."""
    root, recipe = setup
    run, export_dir = str(tmp_path / "run"), str(tmp_path / "sm")
    cmd = _cmd(recipe, run, export_dir)
    _kill_when(server, cmd, str(tmp_path), os.path.join(run, "backup"),
               lambda name: name.startswith(".tmp-") and name.endswith(".weights.h5"))
    left = os.listdir(os.path.join(run, "backup"))
    assert "training_metadata.json" not in left  # killed inside the write
    assert [n for n in left if n.startswith(".tmp-")]
    second = _here(cmd)
    assert (f"there is no backup in {run}/backup; resuming from "
            f"{run}/checkpoints/last.keras (epoch 1)") in second.stdout
    _same_as_reference(run, reference[0])


def test_kill_during_the_test_evaluation_keeps_the_training(setup, reference, tmp_path,
                                                           server):
    root, recipe = setup
    run, export_dir = str(tmp_path / "run"), str(tmp_path / "sm")
    cmd = _cmd(recipe, run, export_dir)
    _kill_when(server, cmd, str(tmp_path), run, lambda name: name == "trained.json")
    assert not os.path.exists(os.path.join(run, "test_metrics.json"))
    history = open(os.path.join(run, "history.csv")).read()
    second = _here(cmd)
    assert "at the test stage" in second.stdout and "training finished before" in second.stdout
    assert "Epoch " not in second.stdout  # no epoch trained again
    assert open(os.path.join(run, "history.csv")).read() == history
    _same_as_reference(run, reference[0])


def test_kill_during_the_export_exports_once(setup, reference, tmp_path, server):
    root, recipe = setup
    run, export_dir = str(tmp_path / "run"), str(tmp_path / "sm")
    cmd = _cmd(recipe, run, export_dir)
    _kill_when(server, cmd, str(tmp_path), os.path.join(export_dir, "tiny"),
               lambda name: name.startswith(".tmp-"))
    assert os.path.exists(os.path.join(run, "test_metrics.json"))
    assert not os.path.exists(os.path.join(export_dir, "tiny", "1"))
    second = _here(cmd)
    assert "at the export stage" in second.stdout and "Epoch " not in second.stdout
    assert "the test split was evaluated before" in second.stdout
    _same_as_reference(run, reference[0])
    assert [d for d in os.listdir(os.path.join(export_dir, "tiny")) if d.isdigit()] == ["1"]
    # the same command again: a completed run is kept, a fresh one starts beside it
    from kerascnn.training.run_dir import resolve_run_dir

    assert resolve_run_dir("tiny", run) == run + "-2"


def test_full_disk_during_the_backup_then_the_next_run_finishes(setup, reference, tmp_path,
                                                               server):
    root, recipe = setup
    run, export_dir = str(tmp_path / "run"), str(tmp_path / "sm")
    backup = os.path.join(run, "backup")
    os.makedirs(backup)
    # smaller than one backup of the network's weights and momenta (~640 KB)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", backup],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"mounting a tmpfs is refused here: {mounted.stderr.strip()}")
    try:
        cmd = _cmd(recipe, run, export_dir)
        # a process of its own: the run that fails leaves HDF5's file of the full disk
        # open (closed at its exit, while the tmpfs is still mounted)
        log = tmp_path / "first.log"
        returncode = server.wait(server.start(cmd, tmp_path, log), timeout=TIMEOUT)
        printed = log.read_text()
        assert returncode != 0, printed[-3000:]
        assert "No space left on device" in printed, printed[-3000:]
        assert os.listdir(backup) == []  # no truncated file left behind
        assert os.path.exists(os.path.join(run, "checkpoints", "last.keras"))
        subprocess.run(["mount", "-o", "remount,size=64m", backup], check=True)
        second = _here(cmd)
        assert f"resuming from {run}/checkpoints/last.keras (epoch 1)" in second.stdout
        _same_as_reference(run, reference[0], backup_removed=False)
        assert os.listdir(backup) == []  # emptied (a mount point cannot be removed)
    finally:
        subprocess.run(["umount", backup], capture_output=True)


def test_one_pass_epochs_resume_on_the_same_batches(setup, tmp_path, server):
    """Item 5 with ``steps_per_epoch = 0`` (an epoch is one pass, 48 images in 6
    batches of 8): killed after epoch 1, the resumed epoch 2 sees the batches of an
    uninterrupted run's epoch 2 (the same final numbers), not epoch 1's again."""
    root, _ = setup
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(TINY.format(source=str(root / "data"), lr=0.05, epochs=2, steps=0,
                                  batch=8))
    ref = str(tmp_path / "ref")
    _here(_cmd(str(recipe), ref, str(tmp_path / "sm"), "--no-export"))
    run = str(tmp_path / "run")
    cmd = _cmd(str(recipe), run, str(tmp_path / "sm"), "--no-export")
    _kill_when(server, cmd, str(tmp_path), os.path.join(run, "backup"),
               lambda name: name == "training_metadata.json")
    assert not os.path.exists(os.path.join(run, "trained.json"))
    second = _here(cmd)
    assert "Epoch 2/2" in second.stdout and "Epoch 1/2" not in second.stdout
    for got, want in zip(_final(run), _final(ref)):
        assert got == pytest.approx(want, rel=1e-4, abs=1e-4)


def test_kill_during_the_epoch_end_backup_resumes_one_consistent_state(setup, reference,
                                                                       tmp_path, server):
    """Killed while epoch 3's backup is written (the plateau's
    counters and the checkpoint's best value of epoch 3 are on disk, the backup still
    holds epoch 2), the run resumes at epoch 3 with the counters of epoch 2: its
    history (learning rates included) is the uninterrupted run's, row for row. Epoch 3
    improves on the best validation error (checked on the reference), so the counters
    of epoch 3 would count its replay as a plateau and divide the learning rate of
    epoch 4 by 10."""
    root, recipe = setup
    want = _rows(reference[1])
    errors = [float(r["val_top1_error"]) for r in want]
    assert errors[2] < min(errors[:2])  # what makes the counters of epoch 3 differ
    run, export_dir = str(tmp_path / "run"), str(tmp_path / "sm")
    cmd = _cmd(recipe, run, export_dir)
    seen = []

    def third_backup_write(name):
        if name.startswith(".tmp-") and name.endswith(".weights.h5"):
            seen.append(name)
        return len(seen) == 3

    _kill_when(server, cmd, str(tmp_path), os.path.join(run, "backup"), third_backup_write)
    meta = json.load(open(os.path.join(run, "backup", "training_metadata.json")))
    assert meta["epoch"] == 2  # the backup of epoch 2; epoch 3's was being written
    assert [int(r["epoch"]) for r in _rows(run)] == [0, 1, 2]  # epoch 3 had ended
    assert json.load(open(os.path.join(run, "plateau_state.json")))["epoch"] == 3
    second = _here(cmd)
    epochs = [line for line in second.stdout.splitlines() if line.startswith("Epoch ")]
    assert epochs[0].startswith(f"Epoch 3/{RECIPE['epochs']}"), epochs[:2]
    got = _rows(run)
    assert [sorted(r) for r in got] == [sorted(r) for r in want]
    for g, w in zip(got, want):
        assert {k: float(v) for k, v in g.items()} == pytest.approx(
            {k: float(v) for k, v in w.items()}, rel=1e-4, abs=1e-4), (got, want)
    _same_as_reference(run, reference[0])
