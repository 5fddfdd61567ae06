"""Callbacks of the fit driver: schedules, fault tolerance, logs and curves.

- :class:`PlateauSchedule`: the papers' "divide the learning rate by 10 when the
  validation error stops improving" (``keras.callbacks.ReduceLROnPlateau``) whose
  counters survive a resume.

A resume reads one consistent state, that of the epoch it resumes at: the weights,
optimizer and learning rate of the backup (or ``last.keras``), the data position
(``epoch x steps``), and the plateau counters and best value kept per epoch and read
back at that epoch (a kill during the end-of-epoch writes leaves newer entries, which
are not read).
- :func:`epoch_schedule`: GoogLeNet's −4 % every 8 epochs, or fixed steps (ResNet
  CIFAR), as ``keras.callbacks.LearningRateScheduler``.
- :class:`Divergence`: the one record of whether the run diverged (a non-finite loss),
  shared by the three callbacks that act on it.
- :class:`SafeBackupAndRestore`: ``BackupAndRestore`` whose epoch-end backup is
  written elsewhere then renamed, never holds non-finite weights, and, when it cannot
  be read, falls back to ``checkpoints/last.keras`` with a one-line message.
- :class:`AtomicCheckpoint`: ``last.keras`` / ``best.keras`` written elsewhere, then
  renamed; a crash never leaves half a checkpoint (``best.keras`` is a copy of the
  epoch's ``last.keras``, not a second serialisation).
- :class:`NaNGuard`: stops at a non-finite loss, naming the last good checkpoint.
- :class:`HistoryCSV`: the epoch history, continuous across resumes (rows of
  epochs that are trained again are dropped).
- :class:`EpochSummary`: one line per epoch: lr, top-1/top-5 error.
- :class:`CurvePlot`: ``curves.png`` (:mod:`kerascnn.training.plots`), redrawn from
  the CSV each epoch.

Every file is written through :mod:`kerascnn._io` (elsewhere, then renamed, with the
modes the user's umask gives an ordinary file).
"""

from __future__ import annotations

import csv
import math
import os
import shutil

import keras
import numpy as np

from kerascnn._io import atomic_path, atomic_write, read_json, write_json
from kerascnn.data.carried import save_model
from kerascnn.training.plots import plot_history
from kerascnn.training.run_dir import log as _log

__all__ = [
    "AtomicCheckpoint",
    "CurvePlot",
    "Divergence",
    "EpochSummary",
    "HistoryCSV",
    "NaNGuard",
    "PlateauSchedule",
    "SafeBackupAndRestore",
    "StepDeadline",
    "epoch_schedule",
    "plot_history",
]


def _finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return True


def _lr(model) -> float:
    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


class PlateauSchedule(keras.callbacks.ReduceLROnPlateau):
    """``ReduceLROnPlateau`` (``factor=0.1`` on ``val_top1_error`` by default) whose
    ``wait``/``best``/``cooldown`` counters survive a resume.

    ``state_path`` keeps the counters after every epoch, one entry per epoch
    (``{"epochs": {"<n>": state after n epochs}}``, the newest also at the top), and
    a resumed run takes the entry of the epoch it resumes at, at its first
    ``on_epoch_begin``: the epoch of the backup (or checkpoint) whose weights,
    optimizer and learning rate it restores. A kill between this file's write and the
    backup's commit leaves a newer entry, which is not read (the counters of a later
    epoch would reduce the learning rate an epoch early); entries of epochs trained
    again are replaced."""

    def __init__(self, state_path=None, monitor="val_top1_error", factor=0.1, **kwargs):
        super().__init__(monitor=monitor, factor=factor, mode="min", **kwargs)
        self.state_path = state_path
        self._resume_pending = False

    def _states(self) -> dict:
        doc = read_json(self.state_path) if self.state_path else None
        if not isinstance(doc, dict):
            return {}
        if isinstance(doc.get("epochs"), dict):
            return {k: v for k, v in doc["epochs"].items()
                    if str(k).isdigit() and isinstance(v, dict)}
        if isinstance(doc.get("epoch"), int):  # one state, as written before
            return {str(doc["epoch"]): doc}
        return {}

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._resume_pending = bool(self.state_path)

    def on_epoch_begin(self, epoch, logs=None):
        super().on_epoch_begin(epoch, logs)
        if not self._resume_pending:
            return
        self._resume_pending = False
        if not epoch:
            return
        state = self._states().get(str(epoch))
        if state is None:
            _log(f"{self.state_path} holds no plateau state for epoch {epoch}: the "
                 "plateau counters start afresh")
            return
        self.best = state["best"] if state.get("best") is not None else self.best
        self.wait = int(state["wait"])
        self.cooldown_counter = int(state["cooldown_counter"])

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        if self.state_path:
            best = None if self.best is None else float(self.best)
            if best is not None and not math.isfinite(best):
                best = None
            state = {"best": best, "wait": int(self.wait),
                     "cooldown_counter": int(self.cooldown_counter)}
            states = {k: v for k, v in self._states().items() if int(k) <= epoch}
            states[str(epoch + 1)] = state
            write_json(self.state_path, {"epoch": epoch + 1, **state, "epochs": states})


def epoch_schedule(name, base_lr, *, decay_rate=0.96, decay_epochs=8, boundaries=()):
    """A ``LearningRateScheduler`` for ``"exponential"`` (GoogLeNet: ``base_lr ·
    decay_rate^(epoch // decay_epochs)``) or ``"steps"`` (÷10 at each boundary epoch)."""
    if name == "exponential":
        def fn(epoch, lr):
            return float(base_lr * decay_rate ** (epoch // decay_epochs))
    elif name == "steps":
        bounds = sorted(int(b) for b in boundaries)

        def fn(epoch, lr):
            return float(base_lr * 0.1 ** sum(epoch >= b for b in bounds))
    else:
        raise ValueError(
            f"Expected schedule 'exponential' or 'steps'. Received: name={name!r}")
    return keras.callbacks.LearningRateScheduler(fn)


class StepDeadline(keras.callbacks.Callback):
    """Caps the learning rate at ``base_lr · 0.1^k`` from the k-th boundary epoch on:
    with :class:`PlateauSchedule` the plateau decides when to divide by 10, and the
    boundaries (the fixed steps of the ResNet paper's CIFAR schedule) are the latest
    epochs at which each division happens in a short run."""

    def __init__(self, base_lr, boundaries):
        super().__init__()
        self.base_lr = float(base_lr)
        self.boundaries = sorted(int(b) for b in boundaries)

    def on_epoch_begin(self, epoch, logs=None):
        cap = self.base_lr * 0.1 ** sum(epoch >= b for b in self.boundaries)
        if _lr(self.model) > cap * (1 + 1e-6):
            self.model.optimizer.learning_rate = cap
            print(f"\nEpoch {epoch + 1}: learning rate capped at {cap:.4g} "
                  "(step deadline)", flush=True)


class Divergence:
    """Whether the run diverged: the one fact that :class:`NaNGuard`,
    :class:`AtomicCheckpoint` and :class:`SafeBackupAndRestore` share (the first
    non-finite loss sets it; nothing of that epoch is saved afterwards)."""

    def __init__(self):
        self.diverged = False
        self.message = ""

    def seen(self, logs) -> bool:
        """Records a non-finite ``loss`` in ``logs``; True once the run diverged."""
        if not self.diverged and logs and not _finite(logs.get("loss", 0.0)):
            self.diverged = True
        return self.diverged


class SafeBackupAndRestore(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` whose backup a kill or a full disk cannot break.

    Keras 3.15 overwrites ``backup/latest.weights.h5`` in place, then
    ``training_metadata.json``: a kill or ``ENOSPC`` in between leaves a truncated
    file that every later run fails to open. Here each epoch's weights go to a new
    file, ``backup/epoch-<n>.weights.h5``, written elsewhere and renamed
    (:func:`kerascnn._io.atomic_path`); then ``training_metadata.json`` (``epoch``,
    ``batch`` and the name of that file) is replaced atomically: that rename is the
    commit, and the older weights file is removed only after it. A kill at any point
    leaves a metadata file that names a whole weights file.

    :meth:`resume_point` decides once, before the data pipeline is built, where the
    run resumes: the backup when it reads, else ``fallback`` (an
    :class:`AtomicCheckpoint`: ``checkpoints/last.keras`` and its epoch), with a
    one-line message; ``on_train_begin`` restores that state. An epoch whose loss is
    not finite is never backed up, and the backup is kept when the run diverged.
    """

    def __init__(self, backup_dir, divergence: Divergence | None = None,
                 fallback: "AtomicCheckpoint | None" = None, **kwargs):
        super().__init__(backup_dir, **kwargs)
        self.divergence = divergence or Divergence()
        self.fallback = fallback
        self._plan = None

    @property
    def diverged(self) -> bool:
        return self.divergence.diverged

    # -- where to resume -------------------------------------------------------------
    def resume_point(self):
        """``(epoch, weights file or None)``: the epoch to resume at and the file to
        restore (None: a fresh start). Decided once; the message printed once."""
        if self._plan is None:
            self._plan = self._decide()
        return self._plan

    def _decide(self):
        folder = self.backup_dir
        if os.path.isdir(folder):
            for name in os.listdir(folder):  # a write that a kill interrupted
                if name.startswith(".tmp-"):
                    os.remove(os.path.join(folder, name))
        has_backup = os.path.isdir(folder) and bool(os.listdir(folder))
        problem = None
        if has_backup:
            meta = read_json(self._training_metadata_path)
            if not isinstance(meta, dict) or not isinstance(meta.get("epoch"), int):
                problem = "training_metadata.json is missing or unreadable"
            else:
                weights = os.path.join(folder, os.path.basename(
                    str(meta.get("weights", "latest.weights.h5"))))
                problem = _h5_problem(weights)
                if problem is None:
                    return int(meta["epoch"]), weights
        epoch = self.fallback.saved_epoch() if self.fallback is not None else None
        if epoch is not None:
            why = (f"the backup in {folder} cannot be read ({problem})" if problem
                   else f"there is no backup in {folder}")
            _log(f"{why}; resuming from {self.fallback.last_path} (epoch {epoch})")
            return epoch, self.fallback.last_path
        if problem:
            _log(f"the backup in {folder} cannot be read ({problem}) and there is no "
                 "checkpoint: training starts at epoch 1")
        return 0, None

    def on_train_begin(self, logs=None):
        self._load_model()

    def _load_model(self):
        epoch, path = self.resume_point()
        if path is None:
            return
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        try:
            self.model.load_weights(path)
        except (OSError, ValueError, KeyError) as err:
            raise ValueError(
                f"Cannot restore {path} into this run's network ({err}). The recipe "
                "must be the one the run started with; start afresh with another "
                "--output-dir.") from None
        self.model._initial_epoch = epoch

    # -- backing up ------------------------------------------------------------------
    def on_train_batch_end(self, batch, logs=None):
        if self.divergence.seen(logs):
            return
        super().on_train_batch_end(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.divergence.seen(logs):
            return
        super().on_epoch_end(epoch, logs)

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        name = f"epoch-{self._current_epoch:04d}"
        if self.save_freq != "epoch":
            name += f"-batch-{self._last_batch_seen:06d}"
        name += ".weights.h5"
        with atomic_path(os.path.join(self.backup_dir, name), suffix=".weights.h5") as tmp:
            self.model.save_weights(tmp, overwrite=True)
        write_json(self._training_metadata_path,
                   {"epoch": self._current_epoch, "batch": self._last_batch_seen,
                    "weights": name})
        for old in os.listdir(self.backup_dir):
            if old.endswith(".weights.h5") and old != name and not old.startswith(".tmp-"):
                os.remove(os.path.join(self.backup_dir, old))

    def on_train_end(self, logs=None):
        if not self.diverged:
            super().on_train_end(logs)


def _h5_problem(path):
    """None when ``path`` is an HDF5 file whose every dataset reads, else why not."""
    import h5py

    if not os.path.exists(path):
        return f"{os.path.basename(path)} is missing"
    try:
        with h5py.File(path, "r") as f:
            def read(_, obj):
                if isinstance(obj, h5py.Dataset):
                    obj[()]
            f.visititems(read)
    except (OSError, RuntimeError, KeyError, ValueError) as err:
        return f"{os.path.basename(path)}: {str(err).splitlines()[0]}"
    return None


class AtomicCheckpoint(keras.callbacks.Callback):
    """Saves ``<dir>/last.keras`` every epoch and ``<dir>/best.keras`` when
    ``monitor`` improves (mode ``min``), each written elsewhere and renamed into place
    (:func:`kerascnn._io.atomic_path`), then ``<dir>/state.json`` (the epochs
    ``last.keras`` holds, the best value, and the best value after each epoch: a
    resumed run takes the one of the epoch it resumes at). Nothing is saved once the
    run diverged. ``last_good`` is the path of the newest complete checkpoint."""

    def __init__(self, directory, monitor="val_top1_error", save_best=True,
                 divergence: Divergence | None = None):
        super().__init__()
        self.directory = directory
        self.monitor = monitor
        self.save_best = save_best
        self.divergence = divergence or Divergence()
        self.last_path = os.path.join(directory, "last.keras")
        self.best_path = os.path.join(directory, "best.keras")
        self.state_path = os.path.join(directory, "state.json")
        self.best = math.inf
        self.last_good = None

    def saved_epoch(self) -> int | None:
        """How many epochs ``last.keras`` holds; None when there is none."""
        state = read_json(self.state_path)
        if not isinstance(state, dict) or not os.path.exists(self.last_path):
            return None
        epoch = state.get("epoch")
        return epoch if isinstance(epoch, int) and epoch > 0 else None

    def on_train_begin(self, logs=None):
        os.makedirs(self.directory, exist_ok=True)
        self.best = math.inf
        self._resume_pending = True
        if os.path.exists(self.last_path):
            self.last_good = self.last_path

    def _bests(self) -> dict:
        state = read_json(self.state_path)
        if not isinstance(state, dict):
            return {}
        if isinstance(state.get("best_by_epoch"), dict):
            return {k: v for k, v in state["best_by_epoch"].items() if str(k).isdigit()}
        if isinstance(state.get("epoch"), int):  # one value, as written before
            return {str(state["epoch"]): state.get("best")}
        return {}

    def on_epoch_begin(self, epoch, logs=None):
        # The best value after the epoch the run resumes at (that of its backup), not
        # a later one that a kill left behind.
        if getattr(self, "_resume_pending", False):
            self._resume_pending = False
            best = self._bests().get(str(epoch)) if epoch else None
            self.best = float(best) if best is not None else math.inf

    def _save(self, path):
        save_model(self.model, path)  # atomic, with the preprocessing the model carries

    def on_epoch_end(self, epoch, logs=None):
        if self.divergence.seen(logs):
            return
        logs = logs or {}
        self._save(self.last_path)
        self.last_good = self.last_path
        current = logs.get(self.monitor)
        if self.save_best and current is not None and float(current) < self.best:
            self.best = float(current)
            # the state just written to last.keras: copied, not serialised again
            with atomic_path(self.best_path, suffix=".keras") as tmp:
                shutil.copyfile(self.last_path, tmp)
        best = None if math.isinf(self.best) else self.best
        bests = {k: v for k, v in self._bests().items() if int(k) <= epoch}
        bests[str(epoch + 1)] = best
        write_json(self.state_path, {"epoch": epoch + 1, "best": best,
                                     "monitor": self.monitor, "best_by_epoch": bests})


class NaNGuard(keras.callbacks.Callback):
    """Stops training at the first non-finite loss and says which checkpoint is the
    last good one (``message``; ``diverged`` is True afterwards)."""

    def __init__(self, checkpoint: AtomicCheckpoint | None = None, backup_dir=None,
                 divergence: Divergence | None = None):
        super().__init__()
        self.checkpoint = checkpoint
        self.backup_dir = backup_dir
        self.divergence = divergence or (checkpoint.divergence if checkpoint else Divergence())

    @property
    def diverged(self) -> bool:
        return self.divergence.diverged

    @property
    def message(self) -> str:
        return self.divergence.message

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or _finite(loss) or self.divergence.message:
            return
        self.divergence.diverged = True
        self.model.stop_training = True
        good = self.checkpoint.last_good if self.checkpoint else None
        where = (f"the last good checkpoint is {good}" if good
                 else "no checkpoint was written yet")
        if self.backup_dir and os.path.isdir(self.backup_dir):
            where += f" (the resumable backup of the last good epoch is in {self.backup_dir})"
        self.divergence.message = (
            f"Training stopped: the loss became {loss} at batch {batch}; {where}. Lower "
            "the learning rate (--set optimizer.learning_rate=...) and run again.")
        print("\n" + self.divergence.message, flush=True)


class HistoryCSV(keras.callbacks.Callback):
    """``history.csv``: one row per epoch (``epoch`` first). On a resume from epoch
    ``e`` the rows of epochs ``>= e`` (trained again) are dropped, so the history is
    continuous. Rows are written atomically."""

    def __init__(self, path):
        super().__init__()
        self.path = path
        self._rows = None

    def _load(self):
        if os.path.exists(self.path):
            with open(self.path, newline="") as f:
                return list(csv.DictReader(f))
        return []

    def on_epoch_begin(self, epoch, logs=None):
        if self._rows is None:
            self._rows = [r for r in self._load() if int(r["epoch"]) < epoch]
            self._write()

    def _write(self):
        keys = ["epoch"]
        for row in self._rows:
            keys += [k for k in row if k not in keys]
        lines = [",".join(keys)]
        for row in self._rows:
            lines.append(",".join(str(row.get(k, "")) for k in keys))
        atomic_write(self.path, "\n".join(lines) + "\n")

    def on_epoch_end(self, epoch, logs=None):
        if self._rows is None:
            self.on_epoch_begin(epoch)
        logs = dict(logs or {})
        if "learning_rate" not in logs:
            logs["learning_rate"] = _lr(self.model)
        row = {"epoch": epoch}
        row.update({k: repr(float(np.asarray(v))) for k, v in sorted(logs.items())
                    if np.asarray(v).size == 1})
        self._rows.append(row)
        self._write()


class EpochSummary(keras.callbacks.Callback):
    """Prints, after Keras' progress bar, the epoch's learning rate and top-1/top-5
    error on the training batches and the validation split."""

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        lr = logs.get("learning_rate", _lr(self.model))
        parts = [f"Epoch {epoch + 1}: lr {lr:.4g}"]
        for prefix, label in (("", "train"), ("val_", "val")):
            if f"{prefix}top1_error" in logs:
                parts.append(f"{label} top-1 error {logs[f'{prefix}top1_error']:.2f}% "
                             f"top-5 error {logs[f'{prefix}top5_error']:.2f}%")
        print("\n" + " | ".join(parts), flush=True)


class CurvePlot(keras.callbacks.Callback):
    """Redraws ``png_path`` from ``csv_path`` after every epoch."""

    def __init__(self, csv_path, png_path, title=None):
        super().__init__()
        self.csv_path, self.png_path, self.title = csv_path, png_path, title

    def on_epoch_end(self, epoch, logs=None):
        if os.path.exists(self.csv_path):
            plot_history(self.csv_path, self.png_path, self.title)
