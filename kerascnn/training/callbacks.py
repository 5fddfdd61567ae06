"""Callbacks of the fit driver: schedules, fault tolerance, logs and curves.

- :class:`PlateauSchedule`: the papers' "divide the learning rate by 10 when the
  validation error stops improving" (``keras.callbacks.ReduceLROnPlateau``) whose
  counters survive a resume.
- :func:`epoch_schedule`: GoogLeNet's −4 % every 8 epochs, or fixed steps (ResNet
  CIFAR), as ``keras.callbacks.LearningRateScheduler``.
- :class:`SafeBackupAndRestore`: ``BackupAndRestore`` that never backs up
  non-finite weights and keeps its backup when the run diverged.
- :class:`AtomicCheckpoint`: ``last.keras`` / ``best.keras`` written to a temporary
  file, then ``os.replace``d; a crash never leaves half a checkpoint.
- :class:`NaNGuard`: stops at a non-finite loss, naming the last good checkpoint.
- :class:`HistoryCSV`: the epoch history, continuous across resumes (rows of
  epochs that are trained again are dropped).
- :class:`EpochSummary`: one line per epoch: lr, top-1/top-5 error.
- :class:`CurvePlot`: ``curves.png`` (loss and top-1 error, train/val, learning-rate
  drops marked), redrawn from the CSV each epoch.
"""

from __future__ import annotations

import csv
import json
import math
import os
import tempfile

import keras
import numpy as np

__all__ = [
    "AtomicCheckpoint",
    "CurvePlot",
    "EpochSummary",
    "HistoryCSV",
    "NaNGuard",
    "PlateauSchedule",
    "SafeBackupAndRestore",
    "StepDeadline",
    "atomic_write_text",
    "epoch_schedule",
    "plot_history",
]


def atomic_write_text(path: str, text: str) -> None:
    """Writes ``text`` to a temporary file next to ``path``, then renames it."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return True


def _lr(model) -> float:
    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


class PlateauSchedule(keras.callbacks.ReduceLROnPlateau):
    """``ReduceLROnPlateau`` (``factor=0.1`` on ``val_top1_error`` by default) whose
    ``wait``/``best``/``cooldown`` counters are kept in ``state_path`` so a resumed run
    continues the same plateau (the learning rate itself is restored with the
    optimizer by ``BackupAndRestore``)."""

    def __init__(self, state_path=None, monitor="val_top1_error", factor=0.1, **kwargs):
        super().__init__(monitor=monitor, factor=factor, mode="min", **kwargs)
        self.state_path = state_path

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        state = _read_json(self.state_path) if self.state_path else None
        if state:
            self.best = state["best"] if state["best"] is not None else self.best
            self.wait = state["wait"]
            self.cooldown_counter = state["cooldown_counter"]

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        if self.state_path:
            best = None if self.best is None else float(self.best)
            if best is not None and not math.isfinite(best):
                best = None
            atomic_write_text(self.state_path, json.dumps(
                {"epoch": epoch + 1, "best": best, "wait": int(self.wait),
                 "cooldown_counter": int(self.cooldown_counter)}))


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


class SafeBackupAndRestore(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` that skips the backup of an epoch whose loss is not
    finite and keeps the backup (for inspection or a retry with other settings)
    when the run stopped on one."""

    def __init__(self, backup_dir, **kwargs):
        super().__init__(backup_dir, **kwargs)
        self.diverged = False

    def on_train_batch_end(self, batch, logs=None):
        if logs and not _finite(logs.get("loss", 0.0)):
            self.diverged = True
            return
        super().on_train_batch_end(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.diverged or (logs and not _finite(logs.get("loss", 0.0))):
            self.diverged = True
            return
        super().on_epoch_end(epoch, logs)

    def on_train_end(self, logs=None):
        if not self.diverged:
            super().on_train_end(logs)


class AtomicCheckpoint(keras.callbacks.Callback):
    """Saves ``<dir>/last.keras`` every epoch and ``<dir>/best.keras`` when
    ``monitor`` improves (mode ``min``), each written to a temporary ``.keras`` file
    in the same folder and ``os.replace``d into place. Epochs whose loss is not finite
    are never saved. ``last_good`` is the path of the newest complete checkpoint."""

    def __init__(self, directory, monitor="val_top1_error", save_best=True):
        super().__init__()
        self.directory = directory
        self.monitor = monitor
        self.save_best = save_best
        self.last_path = os.path.join(directory, "last.keras")
        self.best_path = os.path.join(directory, "best.keras")
        self.state_path = os.path.join(directory, "state.json")
        self.best = math.inf
        self.last_good = None

    def on_train_begin(self, logs=None):
        os.makedirs(self.directory, exist_ok=True)
        state = _read_json(self.state_path)
        if state:
            self.best = state.get("best", math.inf) if state.get("best") is not None else math.inf
        if os.path.exists(self.last_path):
            self.last_good = self.last_path

    def _save(self, path):
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".keras")
        os.close(fd)
        try:
            self.model.save(tmp)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if not _finite(logs.get("loss", 0.0)) or getattr(self.model, "_kerascnn_diverged", False):
            return
        self._save(self.last_path)
        self.last_good = self.last_path
        current = logs.get(self.monitor)
        if self.save_best and current is not None and float(current) < self.best:
            self.best = float(current)
            self._save(self.best_path)
        atomic_write_text(self.state_path, json.dumps(
            {"epoch": epoch + 1, "best": None if math.isinf(self.best) else self.best,
             "monitor": self.monitor}))


class NaNGuard(keras.callbacks.Callback):
    """Stops training at the first non-finite loss and says which checkpoint is the
    last good one (``message``; ``diverged`` is True afterwards)."""

    def __init__(self, checkpoint: AtomicCheckpoint | None = None, backup_dir=None):
        super().__init__()
        self.checkpoint = checkpoint
        self.backup_dir = backup_dir
        self.diverged = False
        self.message = ""

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or _finite(loss) or self.diverged:
            return
        self.diverged = True
        self.model._kerascnn_diverged = True
        self.model.stop_training = True
        good = self.checkpoint.last_good if self.checkpoint else None
        where = (f"the last good checkpoint is {good}" if good
                 else "no checkpoint was written yet")
        if self.backup_dir and os.path.isdir(self.backup_dir):
            where += f" (the resumable backup of the last good epoch is in {self.backup_dir})"
        self.message = (f"Training stopped: the loss became {loss} at batch {batch}; "
                        f"{where}. Lower the learning rate (--set "
                        f"optimizer.learning_rate=...) and run again.")
        print("\n" + self.message, flush=True)


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
        atomic_write_text(self.path, "\n".join(lines) + "\n")

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


def plot_history(csv_path, png_path, title=None):
    """Draws loss and top-1 error (train and validation) per epoch from a history
    CSV, with a dashed line where the learning rate dropped; written atomically."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return None

    def col(name):
        return np.array([float(r[name]) if r.get(name) not in (None, "") else np.nan
                         for r in rows])

    epochs = col("epoch") + 1
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, label in ((axes[0], "loss", "loss"),
                           (axes[1], "top1_error", "top-1 error (%)")):
        for prefix, style in (("", "-"), ("val_", "--")):
            if prefix + key in rows[0]:
                ax.plot(epochs, col(prefix + key), style, marker="o", markersize=3,
                        label=("train" if not prefix else "validation"))
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    if "learning_rate" in rows[0]:
        lr = col("learning_rate")
        for i in range(1, len(lr)):
            if lr[i] < lr[i - 1]:
                for ax in axes:
                    ax.axvline(epochs[i] - 0.5, color="gray", linestyle=":")
                axes[1].annotate(f"lr {lr[i]:.3g}", (epochs[i] - 0.5, 0.95),
                                 xycoords=("data", "axes fraction"), fontsize=8,
                                 rotation=90, va="top", ha="right", color="gray")
    axes[0].legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    folder = os.path.dirname(os.path.abspath(png_path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".png")
    os.close(fd)
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, png_path)
    return png_path


class CurvePlot(keras.callbacks.Callback):
    """Redraws ``png_path`` from ``csv_path`` after every epoch."""

    def __init__(self, csv_path, png_path, title=None):
        super().__init__()
        self.csv_path, self.png_path, self.title = csv_path, png_path, title

    def on_epoch_end(self, epoch, logs=None):
        if os.path.exists(self.csv_path):
            plot_history(self.csv_path, self.png_path, self.title)
