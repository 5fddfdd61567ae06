"""The runs of a study: each variant and seed trained by ``kerascnn train``'s code
(:func:`kerascnn.training.trainer.train` on its recipe,
:func:`~kerascnn.reproduce.recipes.variant_recipe`) in its own run folder,
``<study folder>/nets/<key>-s<seed>/``, and read back from the files that run writes.

The run folder is a training run folder (``recipe.json``, ``mean.npy``,
``history.csv``, ``checkpoints/last.keras``, ``backup/``, ``test_metrics.json``,
``completed.json``, ...: :mod:`kerascnn.training.trainer`), so a study resumes as
training does: a run with ``completed.json`` (or ``diverged.json``, written here when
its loss became non-finite) is not trained again, a run killed mid-way continues from
its last backup, at the first unfinished curve point, on the batches an uninterrupted
run would have seen. The study's per-pixel mean (``<study folder>/mean.npy``) is
copied into each run folder, so it is computed once per study.
"""

from __future__ import annotations

import os
import shutil

from kerascnn._io import atomic_path
from kerascnn.reproduce.recipes import variant_recipe

__all__ = ["run_folder", "train_variant", "read_run", "finished"]

DIVERGED = "diverged.json"


def run_folder(output_dir, net, seed) -> str:
    return os.path.join(output_dir, "nets", f"{net.key}-s{seed}")


def finished(folder) -> bool:
    from kerascnn.training.run_dir import COMPLETED

    return any(os.path.exists(os.path.join(folder, n)) for n in (COMPLETED, DIVERGED))


def _share_mean(output_dir, folder):
    mean = os.path.join(output_dir, "mean.npy")
    target = os.path.join(folder, "mean.npy")
    if os.path.exists(mean) and not os.path.exists(target):
        os.makedirs(folder, exist_ok=True)
        with atomic_path(target, suffix=".npy") as tmp:
            shutil.copyfile(mean, tmp)


def train_variant(study, net, seed, settings, plan, output_dir, *, strategy, log) -> dict:
    """Trains ``net`` with ``seed`` (unless its run is finished) and reads it back."""
    from kerascnn.training.run_dir import RunDir
    from kerascnn.training.trainer import train

    folder = run_folder(output_dir, net, seed)
    tag = f"{net.key} seed {seed}"
    if finished(folder):
        log(f"{tag}: finished earlier ({folder}); not trained again")
        return read_run(folder, net, seed, plan)
    recipe = variant_recipe(study, net, settings, plan, seed)
    _share_mean(output_dir, folder)
    log(f"training {tag}: {plan['iterations']} iterations of {settings.batch_size} "
        f"({plan['points']} points of {plan['iterations_per_point']}) in {folder}")
    result = train(recipe, output_dir=folder, strategy=strategy, export=False, verbose=0)
    if result.diverged:
        RunDir(folder).write(DIVERGED, {"message": result.message})
        log(f"{tag}: the loss became non-finite; recorded as diverged")
    run = read_run(folder, net, seed, plan)
    log(f"{tag}: done: final training error {_percent(run['final_train_error'])}, "
        f"test error {_percent(run['final_test_error'])}")
    return run


def _percent(value) -> str:
    return "-" if value is None else f"{value:.2f}%"


def read_run(folder, net, seed, plan) -> dict:
    """A run as the study uses it: its curve (one point per epoch of ``history.csv``:
    training error over the point's batches, test error on the curve's subset) and
    its final test error (``test_metrics.json``)."""
    from kerascnn.training.run_dir import RunDir
    from kerascnn.training.trainer import read_history

    run = RunDir(folder)
    h = read_history(run.file("history.csv"))
    n = len(h.get("loss", []))
    columns = {"lr": "learning_rate", "loss": "loss", "train_error": "top1_error",
               "test_loss": "val_loss", "test_error": "val_top1_error"}
    values = {k: h.get(column) or [None] * n for k, column in columns.items()}
    per_point = plan["iterations_per_point"]
    history = [{"point": i + 1, "iteration": (i + 1) * per_point,
                **{k: v[i] for k, v in values.items()}} for i in range(n)]
    test = run.test_metrics() or {}
    completed = run.completed() or {}
    return {
        "network": net.key,
        "label": net.label,
        "family": net.family,
        "depth": net.depth,
        "options": net.kwargs(),
        "seed": seed,
        "run_dir": folder,
        "iterations": plan["iterations"],
        "points": plan["points"],
        "diverged": run.read(DIVERGED) is not None,
        "history": history,
        "final_train_error": history[-1]["train_error"] if history else None,
        "final_test_error": test.get("top1_error"),
        "final_test_loss": test.get("loss"),
        "final_test_examples": test.get("num_examples") or None,
        "seconds": completed.get("wall_seconds"),
    }
