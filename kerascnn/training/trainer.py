"""The fit driver: a recipe in, a trained, evaluated and exported network out.

``train(recipe)`` is a short orchestration of three stages over the run folder
(:mod:`kerascnn.training.run_dir`), each resumed where it stopped:

1. **train**: :func:`kerascnn.training.experiment.assemble` resolves the recipe once
   (sources, mean, policy, the run's ``Preprocessing``); the network is built and
   compiled under the ``tf.distribute`` strategy; ``model.fit`` runs with the
   callbacks of :mod:`kerascnn.training.callbacks`, starting at the epoch the backup
   (or, when it cannot be read, ``checkpoints/last.keras``) holds, on the batches an
   uninterrupted run would see from that step on. ``trained.json`` marks the end.
2. **test**: the test split evaluated with the same ``Preprocessing``;
   ``test_metrics.json`` marks it (no test split: no file, and none listed).
3. **export**: the inference graph to ``saved_models/<recipe>/<version>/`` with that
   ``Preprocessing``; ``completed.json`` marks the run complete.

The run directory (default ``runs/<recipe>/``) holds::

    run.lock          the PID of the process that owns the run (while it runs)
    recipe.json       the resolved recipe (after overrides)
    mean.npy          the computed mean (data.mean = "rgb" / "per_pixel")
    holdout.json      what data.validation_fraction held out of the training split
    preprocessing.json the evaluation / serving preprocessing and the class names
    backup/           the resumable state of the last epoch (removed once trained)
    checkpoints/      last.keras, best.keras (each stores the preprocessing and class
                      names too: kerascnn.data.carried), state.json (best value per epoch)
    plateau_state.json the plateau schedule's counters after each epoch
    history.csv       one row per epoch (continuous across resumes)
    curves.png        loss and top-1 error, learning-rate drops marked
    logs/             TensorBoard
    trained.json      training is over
    test_metrics.json the final evaluation on the test split
    completed.json    the export is done: written last

Running the same command again after a kill, an error or a full disk resumes at the
first unfinished stage. After a *completed* run it starts a fresh run in the next free
``runs/<recipe>-<n>/`` (a finished run is never overwritten). Everything is checked
before the first image is read: the recipe when it is parsed, the paths by
:func:`~kerascnn.training.experiment.check_paths`.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import shutil
import time
import warnings

from kerascnn.training import run_dir as rd
from kerascnn.training.recipe import Recipe
from kerascnn.training.strategy import precision_scope

__all__ = ["TrainResult", "read_history", "train"]


@dataclasses.dataclass
class TrainResult:
    run_dir: str
    history: dict
    test_metrics: dict | None
    export_path: str | None
    diverged: bool = False
    message: str = ""
    model: object = None


def _is_chief(strategy) -> bool:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    return resolver.task_type == "chief" or (
        resolver.task_type == "worker" and resolver.task_id == 0)


def train(recipe: Recipe, *, output_dir=None, strategy="auto", precision=None,
          init_from=None, data_dir=None, export_dir="saved_models", export=True,
          verbose="auto") -> TrainResult:
    """Trains, evaluates and exports ``recipe`` (a parsed :class:`Recipe`). Keras'
    global dtype policy is the recipe's precision during the run and the caller's
    again after it (the returned model keeps the one it was built with)."""
    with precision_scope():
        return _train(recipe, output_dir=output_dir, strategy=strategy,
                      precision=precision, init_from=init_from, data_dir=data_dir,
                      export_dir=export_dir, export=export, verbose=verbose)


def _train(recipe, *, output_dir, strategy, precision, init_from, data_dir, export_dir,
           export, verbose):
    from kerascnn.training import experiment as ex
    from kerascnn.training.strategy import JaxDataParallel, select_strategy, set_precision

    start = time.time()
    strategy = select_strategy(strategy)
    chief = _is_chief(strategy)
    export = export and chief
    ex.check_paths(recipe, data_dir=data_dir, init_from=init_from, export_dir=export_dir,
                   export=export)
    default = output_dir or rd.inside("runs", recipe.name)
    run = rd.RunDir(rd.resolve_run_dir(recipe.name, output_dir))
    if run.path != default:
        rd.log(f"{default} holds a completed run; starting a fresh run in {run.path}")
    with run.lock():
        stage = run.stage()
        begun = os.path.exists(run.file("recipe.json"))
        rd.log(f"starting {recipe.name} in {run.path}" if not begun else
             f"resuming {recipe.name} in {run.path} at the {stage} stage")
        run.write("recipe.json", recipe.to_dict())
        set_precision(precision or recipe.training.precision)
        replicas = strategy.num_replicas_in_sync
        exp = ex.assemble(recipe, run.path, replicas=replicas, data_dir=data_dir)
        if isinstance(strategy, JaxDataParallel):  # evaluation is replicated: one device's batch
            exp.eval_batch //= replicas
        if chief:
            exp.preprocessing.save(run.path, exp.class_names)
        rd.log(f"strategy {type(strategy).__name__} with {replicas} replica(s): global batch "
             f"{exp.global_batch} = {recipe.training.batch_size} x {replicas}")

        history, model, checkpoint, diverged = _train_stage(exp, run, strategy, stage,
                                                            init_from, verbose)
        if diverged:
            if chief:
                _report_skipped((exp.train_source, exp.val_source))
            return TrainResult(run.path, history, None, None, True, diverged, model)
        test_metrics = _test_stage(exp, run, model, verbose)
        export_path = None
        if isinstance(strategy, JaxDataParallel):
            model = strategy.end(model)  # the export is process 0's alone
        if export:
            export_path = _export_stage(exp, run, model, export_dir, test_metrics)
        elapsed = time.time() - start
        run.write(rd.COMPLETED, {"recipe": recipe.name, "epochs": recipe.training.epochs,
                                 "wall_seconds": elapsed, "test_metrics": test_metrics,
                                 "export": export_path})
        if chief:
            _report_skipped((exp.train_source, exp.val_source, exp.test_source))
            _print_outputs(run, checkpoint, export_path, test_metrics, elapsed)
    return TrainResult(run.path, history, test_metrics, export_path, model=model)


def _train_stage(exp, run, strategy, stage, init_from, verbose):
    """``(history, model, checkpoint, message)``: ``message`` is empty unless the
    training diverged (then nothing is marked trained and the backup is kept)."""
    import keras
    import tensorflow as tf

    from kerascnn.data.carried import attach
    from kerascnn.training import experiment as ex
    from kerascnn.training.strategy import evaluation_callbacks

    t = exp.recipe.training
    trained = stage != "train"
    resuming = os.path.isdir(run.backup_dir) or run.checkpoint_epoch() is not None
    keras.utils.set_random_seed(t.seed)
    model = ex.build_model(exp, strategy, init_from=init_from,
                           warm_start=not (resuming or trained))
    # the run's preprocessing travels in every .keras file the checkpoints write
    attach(model, exp.preprocessing, exp.class_names, where=run.file("preprocessing.json"))
    val_ds = exp.eval_dataset(exp.val_source) if exp.val_source is not None else None
    cbs = ex.build_callbacks(exp.recipe, run, val_ds is not None, verbose)
    if trained:
        shutil.rmtree(run.backup_dir, ignore_errors=True)  # a kill after trained.json
        _load_trained(model, cbs.checkpoint.last_path)
        rd.log(f"training finished before ({rd.TRAINED}); the network is "
             f"{cbs.checkpoint.last_path}")
        return read_history(run.file("history.csv")), model, cbs.checkpoint, ""

    initial_epoch, _ = cbs.backup.resume_point()
    start_step = exp.start_step(initial_epoch)

    def make_train(ctx=None):
        return exp.train_dataset(start_step=start_step, input_context=ctx)

    distributed = strategy.num_replicas_in_sync > 1 or _tf_config_multi()
    if distributed:
        train_ds = strategy.distribute_datasets_from_function(make_train)
    else:
        train_ds = make_train()
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        _build_for_multi_worker(model, strategy, make_train)
    with warnings.catch_warnings():
        # The training data declare their steps (experiment._exact_steps); Keras 3.15
        # says "ran out of data" at the end of the first validation pass, whose size
        # it cannot know (an unreadable image is dropped), though nothing is wrong.
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        history = model.fit(
            train_ds, epochs=t.epochs, initial_epoch=initial_epoch,
            validation_data=val_ds, steps_per_epoch=exp.fit_steps_per_epoch(distributed),
            validation_steps=t.validation_steps or None,
            callbacks=cbs.all + evaluation_callbacks(), verbose=verbose,
            shuffle=False)  # the tf.data pipeline shuffles (seeded); silences a warning
    if cbs.guard.diverged:
        return history.history, model, cbs.checkpoint, cbs.guard.message
    run.write(rd.TRAINED, {"epochs": t.epochs, "checkpoint": cbs.checkpoint.last_path})
    shutil.rmtree(run.backup_dir, ignore_errors=True)  # only now: trained.json holds
    return read_history(run.file("history.csv")), model, cbs.checkpoint, ""


def _load_trained(model, path):
    """The trained state of ``checkpoints/last.keras`` into the compiled ``model``,
    as ``fit`` left it (``finalize_variable_values``: the Polyak average, if any)."""
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    model.load_weights(path)
    model.optimizer.finalize_variable_values(model.trainable_weights)


def read_history(path) -> dict:
    """``history.csv`` as ``{column: [one float per epoch]}`` (an empty cell: NaN;
    no file: ``{}``)."""
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError:
        return {}
    keys = [k for k in (rows[0] if rows else {}) if k != "epoch"]
    return {k: [float(r[k]) if r.get(k) not in (None, "") else float("nan") for r in rows]
            for k in keys}


def _test_stage(exp, run, model, verbose):
    recipe = exp.recipe
    if exp.test_source is None:
        return None
    done = run.test_metrics()
    if done is not None:
        rd.log(f"the test split was evaluated before ({rd.TEST_METRICS})")
        return done
    from kerascnn.training.strategy import evaluation_callbacks

    held = " (held out of the training split: holdout.json)" \
        if exp.test_source is exp.val_source and recipe.data.validation_fraction else ""
    rd.log(f"evaluating on the {recipe.data.test_split} split of {recipe.data.source}{held}")
    metrics = model.evaluate(exp.eval_dataset(exp.test_source), return_dict=True,
                             verbose=verbose, callbacks=evaluation_callbacks())
    metrics = {k: float(v) for k, v in metrics.items()}
    metrics["num_examples"] = int(exp.test_source.num_examples or 0)
    if held:  # the test examples are the training split's hold-out (holdout.json)
        metrics["heldout_fraction"] = float(recipe.data.validation_fraction)
    run.write(rd.TEST_METRICS, metrics)
    rd.log(f"test top-1 error {metrics['top1_error']:.2f}% "
         f"(accuracy {100 - metrics['top1_error']:.2f}%), "
         f"top-5 error {metrics['top5_error']:.2f}%")
    return metrics


def _export_stage(exp, run, model, export_dir, test_metrics):
    """The export of this run: an existing version that names this run folder (a kill
    after the export's rename, before ``completed.json``), else a new one."""
    from kerascnn import _io
    from kerascnn.export import export_model
    from kerascnn.export.serving_config import versions

    name = exp.recipe.name
    me = os.path.abspath(run.path)
    model_dir = os.path.join(export_dir, name)
    for version in reversed(versions(model_dir)):
        meta = _io.read_json(os.path.join(model_dir, str(version), "assets.extra",
                                          "kerascnn.json"))
        if isinstance(meta, dict) and meta.get("run_path") == me:
            path = os.path.join(model_dir, str(version))
            rd.log(f"this run was exported before: {path}")
            return path
    return export_model(model, name, base_dir=export_dir, preprocessing=exp.preprocessing,
                        class_names=exp.class_names,
                        metadata={"recipe": name, "run_dir": run.path, "run_path": me,
                                  "test_metrics": test_metrics},
                        verbose=False)


# Keras versions whose ``fit`` cannot build a model from a distributed batch under
# MultiWorkerMirroredStrategy (checked on 3.15.1; see _build_for_multi_worker).
_MULTI_WORKER_WORKAROUND = ("3.15",)


def _build_for_multi_worker(model, strategy, make_train):
    """Workaround for Keras 3.15 under ``MultiWorkerMirroredStrategy``: ``fit``'s
    ``_maybe_symbolic_build`` reduces a distributed *(images, labels)* batch with
    ``strategy.reduce``, which the collective strategy cannot do for a nested value
    ("Attempt to convert a value (PerReplica...) to a Tensor"). We build the model,
    loss and metrics from one local batch instead and skip that step.

    Applied only to the Keras versions in ``_MULTI_WORKER_WORKAROUND``, where the bug
    was seen; on any other version it is not applied (Keras' own code runs, and a line
    says so, naming the error to look for if that version has the bug too)."""
    import keras

    version = ".".join(keras.__version__.split(".")[:2])
    if version not in _MULTI_WORKER_WORKAROUND:
        rd.log(f"Keras {keras.__version__}: the multi-worker build workaround (for Keras "
             f"{', '.join(_MULTI_WORKER_WORKAROUND)}) is not applied; if fit fails with "
             "'Attempt to convert a value (PerReplica...)', add this version to "
             "kerascnn.training.trainer._MULTI_WORKER_WORKAROUND")
        return
    local = next(iter(make_train(None).take(1)))
    with strategy.scope():
        model._symbolic_build(data_batch=local)
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None
    # Keras then reduces the per-step logs (scalars) with ``strategy.reduce("MEAN",
    # v, axis=0)``, which fails on rank-0 values: reduce those with axis=None.
    reduce = strategy.reduce

    def scalar_safe_reduce(reduce_op, value, axis=None):
        if axis is not None:
            local_values = strategy.experimental_local_results(value)
            if local_values and getattr(local_values[0], "shape", None) is not None \
                    and local_values[0].shape.rank == 0:
                axis = None
        return reduce(reduce_op, value, axis=axis)

    strategy.reduce = scalar_safe_reduce


def _tf_config_multi() -> bool:
    from kerascnn.training.strategy import tf_config_workers

    return tf_config_workers() > 1


def _report_skipped(sources):
    """The run's closing count of the bad image files its folders' listings skipped
    (each was named in a warning then, before training)."""
    for src in sources:
        skipped = src.skipped if src is not None else None
        if skipped:
            total = len(skipped) + int(src.num_examples or 0)
            rd.log(f"skipped {len(skipped)} bad image file(s) of {total} in "
                 f"{src.root or src.name} (each named in a warning when the "
                 f"folder was listed)")


def _print_outputs(run, checkpoint, export_path, test_metrics, elapsed):
    logs = run.file("logs")
    rows = [
        ("run directory", run.path),
        ("TensorBoard logs", f"{logs}  (tensorboard --logdir {logs})"),
        ("history CSV", run.file("history.csv")),
        ("training curves", run.file("curves.png")),
        ("checkpoints", f"{checkpoint.last_path}, {checkpoint.best_path}"),
    ]
    if test_metrics is not None:
        rows.append(("test metrics", run.file(rd.TEST_METRICS)))
    rows += [
        ("preprocessing", run.file("preprocessing.json")),
        ("SavedModel (TF Serving)", export_path or "(not exported)"),
    ]
    rd.log(f"done in {elapsed / 60:.1f} min. Outputs:")
    for label, path in rows:
        print(f"  {label:<24} {path}", flush=True)
