"""A study's plan: how many iterations each network trains, from a budget in minutes
by a measured calibration, or from ``--iterations`` / ``--epochs``.

The calibration builds and compiles each network as training does
(:func:`kerascnn.training.experiment.assemble` and ``build_model`` on the variant's
recipe), times ten training steps (the mean time from the end of one to the end of
the next: a whole cycle, with Keras' and the input pipeline's share), one pass over
the curve's test subset and one save of the network, and the iteration count is the
largest multiple of the number of curve points that fits ``budget × 0.8`` after the
time already spent and each run's fixed costs (its compilation, which every run
pays again; its evaluations; a checkpoint per point). The calibration and the plan
are written to ``plan.json`` and read back when the study is run again, so a resumed
study trains exactly what the first run planned; other settings in that folder are
refused, naming the setting that differs.
"""

from __future__ import annotations

import os
import time
import warnings

import numpy as np

from kerascnn._io import read_json, write_json
from kerascnn.reproduce.recipes import Settings, lr_boundaries, variant_recipe

__all__ = ["SAFETY", "plan_study", "calibrate"]

SAFETY = 0.8  # fraction of the budget that the plan fills
RUN_OVERHEAD_S = 3.0  # per run: loading the sources, the run folder's files (not timed)


def _step_timer():
    """The time between the ends of consecutive training steps."""
    import keras

    class StepTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.ends = []

        def on_train_batch_end(self, batch, logs=None):
            self.ends.append(time.perf_counter())

    return StepTimer()


def _time(model, train, test):
    """Compilation and first steps, a training step, a curve evaluation, a save."""
    import tempfile

    from kerascnn.training.strategy import evaluation_callbacks

    t = time.time()
    model.fit(train, epochs=1, steps_per_epoch=2, verbose=0)
    model.evaluate(test, verbose=0, callbacks=evaluation_callbacks())
    first = time.time() - t
    timer = _step_timer()
    model.fit(train, epochs=1, steps_per_epoch=11, verbose=0, callbacks=[timer])
    # the mean of whole cycles, not the median of step calls: on a shared machine the
    # load's bursts are part of what a long run pays (timing the step calls only, with
    # their median and 90 % of the budget, the runs of docs/reproductions.md took
    # 1.1-1.7x the predicted time per iteration)
    step = float(np.mean(np.diff(timer.ends)))
    t = time.time()
    model.evaluate(test, verbose=0, callbacks=evaluation_callbacks())
    evaluation = time.time() - t
    t = time.time()
    with tempfile.TemporaryDirectory() as folder:  # what every checkpoint costs
        model.save(os.path.join(folder, "calibration.keras"))
    return {"compile_and_first_steps_s": first, "step_s": step,
            "curve_eval_s": evaluation, "save_s": time.time() - t}


def calibrate(study, settings: Settings, plan: dict, output_dir, strategy, log) -> dict:
    """Times each network of ``study`` built from its recipe (``plan``: the image size
    and augmentation), as training builds it. Also leaves the training images' mean
    in ``output_dir``."""
    from kerascnn.training import experiment
    from kerascnn.training.strategy import select_strategy

    strategy = select_strategy(strategy or settings.strategy)
    out = {}
    probe = dict(plan, points=1, iterations_per_point=1)
    for net in study.networks:
        recipe = variant_recipe(study, net, settings, probe, seed=0)
        exp = experiment.assemble(recipe, output_dir,
                                  replicas=strategy.num_replicas_in_sync)
        model = experiment.build_model(exp, strategy, warm_start=False)
        with warnings.catch_warnings():
            # as in training: Keras 3.15 says "ran out of data" at the end of an
            # evaluation whose size it cannot know (kerascnn.training.trainer)
            warnings.filterwarnings("ignore", message="Your input ran out of data")
            out[net.key] = c = _time(model, exp.train_dataset(),
                                     exp.eval_dataset(exp.val_source))
        log(f"calibration {net.key}: {c['step_s']:.3f} s/iteration, curve evaluation "
            f"{c['curve_eval_s']:.1f} s, save {c['save_s']:.1f} s, compilation and "
            f"first steps {c['compile_and_first_steps_s']:.1f} s")
        del model
    return out


def _check_same(plan, key, study, output_dir, path, log):
    old = plan["settings"]
    diff = [k for k in key if k in old and old[k] != key[k]]
    if diff:
        k = diff[0]
        raise ValueError(
            f"{output_dir} holds a {study.name} run with other settings ({k} "
            f"{old[k]!r}, now {key[k]!r}); use another --output-dir or delete that "
            f"folder. Received: {k}={key[k]!r}")
    log(f"plan: {plan['iterations']} iterations per network (from {path})")
    return plan


def plan_study(study, settings: Settings, data: dict, output_dir, *, started=None,
               strategy=None, log=print) -> dict:
    """The study's plan: read from ``plan.json`` or made (and written) now.

    ``data``: ``image_size``, ``augment``, ``train_examples``, ``test_examples``,
    ``final_test_examples`` of the sources as the study reads them."""
    path = os.path.join(output_dir, "plan.json")
    key = settings.plan_key()
    if os.path.exists(path):
        return _check_same(read_json(path), key, study, output_dir, path, log)
    seeds = settings.seeds or study.seeds
    train_n = data["train_examples"]
    calibration = None
    if settings.iterations:
        iterations, how = int(settings.iterations), "--iterations"
    elif settings.epochs:
        if not train_n:
            raise ValueError("--epochs needs a source whose size is known; use "
                             f"--iterations. Received: epochs={settings.epochs}")
        iterations = int(settings.epochs) * (train_n // settings.batch_size)
        how = f"--epochs {settings.epochs} x {train_n // settings.batch_size} iterations"
    else:
        budget = 60.0 * (settings.budget_minutes or study.budget_minutes)
        t0 = time.time()
        log(f"calibrating the step time of {len(study.networks)} networks for a "
            f"{budget / 60:.1f}-minute budget")
        measured = calibrate(study, settings, data, output_dir, strategy, log)
        spent = time.time() - (started or t0)
        curve_n = data["test_examples"] or 1  # unknown sizes: the same subset
        final_ratio = (data["final_test_examples"] or curve_n) / curve_n
        # each run compiles its network again, evaluates the curve's subset at every
        # point and the test split at the end, and saves a checkpoint per point
        fixed = seeds * sum(c["compile_and_first_steps_s"] + RUN_OVERHEAD_S
                            + (settings.points + final_ratio) * c["curve_eval_s"]
                            + settings.points * c["save_s"] for c in measured.values())
        per_iteration = seeds * sum(c["step_s"] for c in measured.values())
        left = SAFETY * budget - spent - fixed
        iterations = int(max(0.0, left) / per_iteration)
        how = (f"calibrated: {SAFETY:.0%} of {budget:.0f} s, minus {spent:.0f} s spent "
               f"and {fixed:.0f} s of fixed costs, at {per_iteration:.2f} s per "
               f"iteration of all {seeds * len(study.networks)} runs")
        calibration = {"networks": measured, "spent_s": spent, "fixed_s": fixed,
                       "per_iteration_s": per_iteration, "budget_s": budget,
                       "safety": SAFETY}
    points = min(settings.points, max(1, iterations))
    iterations = max(points, iterations - iterations % points)
    per_point = iterations // points
    plan = {
        "study": study.name,
        "settings": key,
        "seeds": seeds,
        "iterations": iterations,
        "points": points,
        "iterations_per_point": per_point,
        "lr_boundaries": [b * per_point for b in lr_boundaries(points)],
        "how": how,
        "calibration": calibration,
        **data,
        "epochs_equivalent": (iterations * settings.batch_size / train_n) if train_n else None,
    }
    if iterations < 50 and not (settings.iterations or settings.epochs):
        log(f"warning: the budget leaves only {iterations} iterations per network; the "
            "curves will say little (raise --budget-minutes)")
    write_json(path, plan)
    log(f"plan: {iterations} iterations per network ({how}); written to {path}")
    return plan
