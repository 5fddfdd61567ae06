"""The fit driver: a recipe in, a trained, evaluated and exported network out.

``train(recipe)`` builds the recipe's network and input pipelines under the chosen
``tf.distribute`` strategy, compiles it with :class:`~kerascnn.training.optimizers.L2SGD`
and the top-k metrics, runs ``model.fit`` with the callbacks of
:mod:`kerascnn.training.callbacks`, evaluates the test split and exports the
inference graph to ``saved_models/<recipe>/<version>/``.

The run directory (default ``runs/<recipe>/``) holds everything::

    recipe.json       the resolved recipe (after overrides)
    mean.npy          the mean subtracted from the inputs (computed once)
    backup/           BackupAndRestore state (deleted when training completes)
    checkpoints/      last.keras, best.keras (atomic)
    history.csv       one row per epoch (continuous across resumes)
    curves.png        loss and top-1 error, learning-rate drops marked
    logs/             TensorBoard
    test_metrics.json final evaluation on the test split
    completed.json    written last; marks the run as done

Running the same command again after a crash resumes from the last completed epoch.
After a *completed* run it starts a fresh run in the next free ``runs/<recipe>-<n>/``
(a finished run is never overwritten).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time

import numpy as np

from kerascnn.training.recipe import Recipe

__all__ = ["TrainResult", "resolve_run_dir", "train"]


@dataclasses.dataclass
class TrainResult:
    run_dir: str
    history: dict
    test_metrics: dict | None
    export_path: str | None
    diverged: bool = False
    message: str = ""
    model: object = None


def resolve_run_dir(recipe_name: str, output_dir: str | None = None, base="runs") -> str:
    """``output_dir`` (or ``runs/<recipe>``) unless it holds a completed run, then
    the next free ``<dir>-2``, ``<dir>-3``, ..."""
    first = output_dir or os.path.join(base, recipe_name)
    candidate, n = first, 1
    while os.path.exists(os.path.join(candidate, "completed.json")):
        n += 1
        candidate = f"{first.rstrip(os.sep)}-{n}"
    return candidate


def _log(msg):
    print(f"[kerascnn] {msg}", flush=True)


def _is_chief(strategy) -> bool:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    return resolver.task_type == "chief" or (
        resolver.task_type == "worker" and resolver.task_id == 0)


def _split_validation(source, n):
    from kerascnn.data import from_arrays

    if source.images is None:
        raise ValueError(
            "data.validation_from_train needs an in-memory source (e.g. fashion_mnist); "
            f"use data.validation_split instead. Received: source={source.name!r}")
    if not 0 < n < len(source.images):
        raise ValueError(f"data.validation_from_train must be in (0, {len(source.images)}). "
                         f"Received: validation_from_train={n}")
    train = from_arrays(source.images[:-n], source.labels[:-n], source.class_names,
                        name=source.name + "-train")
    val = from_arrays(source.images[-n:], source.labels[-n:], source.class_names,
                      name=source.name + "-val")
    return train, val


def _load_sources(recipe: Recipe, data_dir):
    from kerascnn.data import load_source

    d = recipe.data
    kwargs = {}
    if d.manual_dir:
        kwargs["manual_dir"] = os.path.expanduser(d.manual_dir)
    data_dir = data_dir or d.data_dir or None

    def load(split):
        return load_source(d.source, split, data_dir=data_dir, **kwargs)

    train = load(d.train_split)
    val = None
    if d.validation_from_train:
        train, val = _split_validation(train, d.validation_from_train)
    elif d.validation_split:
        val = load(d.validation_split)
    test = load(d.test_split) if d.test_split else None
    return train, val, test


def _mean(recipe: Recipe, source, run_dir):
    """The mean to subtract (False: none; None: the data package's ImageNet default)."""
    kind = recipe.data.mean
    if kind == "none":
        return False
    if kind == "imagenet":
        return None
    path = os.path.join(run_dir, "mean.npy")
    if os.path.exists(path):
        return np.load(path)
    from kerascnn.data import stats

    size = recipe.data.image_size
    _log(f"computing the {kind.replace('_', '-')} mean of {source.name} "
         f"({source.num_examples or '?'} images)")
    mean = stats.compute_mean(source, per_pixel=(kind == "per_pixel"),
                              image_size=(size, size) if kind == "per_pixel" else None)
    mean = np.asarray(mean, np.float32)
    tmp = path + ".tmp.npy"
    np.save(tmp, mean)
    os.replace(tmp, path)
    return mean


def _pca(recipe: Recipe, source):
    if recipe.data.pca == "compute" and source.channels == 3:
        from kerascnn.data import stats

        return stats.compute_pca(source)
    return None


def _policy(recipe: Recipe):
    from kerascnn.data import get_policy

    options = dict(recipe.data.policy_options)
    if recipe.data.pca == "none":
        options["lighting"] = 0.0
    return get_policy(recipe.data.policy, **options)


def _eval_ds(source, recipe, batch_size, mean):
    import tensorflow as tf

    from kerascnn.data import eval_dataset

    size = recipe.data.image_size
    ds = eval_dataset(source, batch_size=batch_size, image_size=(size, size),
                      resize=recipe.data.eval_resize or None, mean=mean,
                      pad=recipe.data.eval_pad)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options)


def _jit(value):
    return {"auto": "auto", "true": True, "false": False}[value]


def _callbacks(recipe, run_dir, val_available, verbose):
    import keras

    from kerascnn.training import callbacks as cb

    sched = recipe.schedule
    monitor = sched.monitor if val_available else sched.monitor.replace("val_", "")
    checkpoint = cb.AtomicCheckpoint(os.path.join(run_dir, "checkpoints"), monitor=monitor,
                                     save_best=recipe.training.checkpoint_best)
    backup_dir = os.path.join(run_dir, "backup")
    guard = cb.NaNGuard(checkpoint, backup_dir=backup_dir)
    out = [guard]
    if sched.name == "plateau":
        out.append(cb.PlateauSchedule(
            state_path=os.path.join(run_dir, "plateau_state.json"), monitor=monitor,
            factor=sched.factor, patience=sched.patience, min_delta=sched.min_delta,
            cooldown=sched.cooldown, min_lr=sched.min_lr, verbose=int(bool(verbose))))
        if sched.boundaries:
            out.append(cb.StepDeadline(recipe.optimizer.learning_rate, sched.boundaries))
    elif sched.name in ("exponential", "steps"):
        out.append(cb.epoch_schedule(sched.name, recipe.optimizer.learning_rate,
                                     decay_rate=sched.decay_rate,
                                     decay_epochs=sched.decay_epochs,
                                     boundaries=sched.boundaries))
    csv_path = os.path.join(run_dir, "history.csv")
    out += [
        checkpoint,
        cb.HistoryCSV(csv_path),
        cb.EpochSummary(),
        cb.CurvePlot(csv_path, os.path.join(run_dir, "curves.png"), title=recipe.name),
        *_tensorboard(os.path.join(run_dir, "logs")),
        # Last, so that its backup holds the learning rate the schedule just set.
        cb.SafeBackupAndRestore(backup_dir),
    ]
    return out, guard, checkpoint


def _tensorboard(log_dir):
    """``keras.callbacks.TensorBoard`` when the ``tensorboard`` package (which
    writes the summaries) is installed; TensorFlow >= 2.21 no longer pulls it in."""
    import importlib.util

    import keras

    if importlib.util.find_spec("tensorboard") is None:
        _log("tensorboard is not installed: no TensorBoard logs (pip install tensorboard)")
        return []
    return [keras.callbacks.TensorBoard(log_dir, write_graph=False, profile_batch=0)]


def train(recipe: Recipe, *, output_dir=None, strategy="auto", precision=None,
          init_from=None, data_dir=None, export_dir="saved_models", export=True,
          verbose="auto") -> TrainResult:
    """Trains, evaluates and exports ``recipe`` (a parsed :class:`Recipe`)."""
    import keras
    import tensorflow as tf

    from kerascnn.applications import get_model
    from kerascnn.data import train_dataset
    from kerascnn.training.metrics import default_metrics
    from kerascnn.training.optimizers import build_optimizer
    from kerascnn.training.strategy import select_strategy, set_precision

    start = time.time()
    t = recipe.training
    set_precision(precision or t.precision)
    strategy = select_strategy(strategy)
    chief = _is_chief(strategy)
    run_dir = resolve_run_dir(recipe.name, output_dir)
    if run_dir != (output_dir or os.path.join("runs", recipe.name)):
        _log(f"{output_dir or os.path.join('runs', recipe.name)} holds a completed run; "
             f"starting a fresh run in {run_dir}")
    os.makedirs(run_dir, exist_ok=True)
    resuming = os.path.isdir(os.path.join(run_dir, "backup"))
    _log(("resuming" if resuming else "starting") + f" {recipe.name} in {run_dir}")
    from kerascnn.training.callbacks import atomic_write_text

    atomic_write_text(os.path.join(run_dir, "recipe.json"),
                      json.dumps(recipe.to_dict(), indent=1, default=str))

    train_src, val_src, test_src = _load_sources(recipe, data_dir)
    mean = _mean(recipe, train_src, run_dir)
    pca = _pca(recipe, train_src)
    policy = _policy(recipe)
    replicas = strategy.num_replicas_in_sync
    global_batch = t.batch_size * replicas
    eval_batch = (t.eval_batch_size or t.batch_size) * replicas
    size = recipe.data.image_size
    repeat = t.steps_per_epoch > 0
    _log(f"strategy {type(strategy).__name__} with {replicas} replica(s): global batch "
         f"{global_batch} = {t.batch_size} x {replicas}")

    def make_train(ctx=None):
        return train_dataset(train_src, policy, batch_size=global_batch, seed=t.seed,
                             image_size=(size, size), mean=mean, pca=pca,
                             input_context=ctx, cache=recipe.data.cache,
                             shuffle_buffer=recipe.data.shuffle_buffer or None,
                             repeat=repeat)

    if replicas > 1 or tf_config_multi():
        train_ds = strategy.distribute_datasets_from_function(make_train)
    else:
        train_ds = make_train()
    val_ds = _eval_ds(val_src, recipe, eval_batch, mean) if val_src is not None else None

    keras.utils.set_random_seed(t.seed)
    with strategy.scope():
        model = get_model(recipe.model.name, input_shape=(size, size, train_src.channels),
                          classes=train_src.num_classes, **recipe.model.options)
        init = init_from or t.init_from
        if init and not resuming:
            from kerascnn.training.warm_start import warm_start_from

            copied = warm_start_from(model, init)
            _log(f"warm start from {init}: copied {', '.join(copied)}")
        model.compile(optimizer=build_optimizer(recipe.optimizer),
                      loss=keras.losses.SparseCategoricalCrossentropy(),
                      metrics=default_metrics(), jit_compile=_jit(t.jit_compile),
                      steps_per_execution=t.steps_per_execution)
    if chief:
        from kerascnn.export.predict import write_preprocessing

        write_preprocessing(run_dir, _preprocessing(recipe, train_src, mean),
                            train_src.class_names)
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        _build_for_multi_worker(model, strategy, make_train)
    callbacks, guard, checkpoint = _callbacks(recipe, run_dir, val_ds is not None, verbose)
    history = model.fit(
        train_ds, epochs=t.epochs, validation_data=val_ds,
        steps_per_epoch=t.steps_per_epoch or None,
        validation_steps=t.validation_steps or None,
        callbacks=callbacks, verbose=verbose,
        shuffle=False)  # the tf.data pipeline shuffles (seeded); silences Keras' warning
    if guard.diverged:
        if chief:
            _report_skipped((train_src, val_src))
        return TrainResult(run_dir, history.history, None, None, True, guard.message, model)

    test_metrics = None
    if test_src is not None:
        _log(f"evaluating on the {recipe.data.test_split} split of {recipe.data.source}")
        test_ds = _eval_ds(test_src, recipe, eval_batch, mean)
        test_metrics = model.evaluate(test_ds, return_dict=True, verbose=verbose)
        test_metrics = {k: float(v) for k, v in test_metrics.items()}
        test_metrics["num_examples"] = int(test_src.num_examples or 0)
        atomic_write_text(os.path.join(run_dir, "test_metrics.json"),
                          json.dumps(test_metrics, indent=1))
        _log(f"test top-1 error {test_metrics['top1_error']:.2f}% "
             f"(accuracy {100 - test_metrics['top1_error']:.2f}%), "
             f"top-5 error {test_metrics['top5_error']:.2f}%")

    export_path = None
    if export and chief:
        from kerascnn.export import export_model

        export_path = export_model(model, recipe.name, base_dir=export_dir,
                                   preprocessing=_preprocessing(recipe, train_src, mean),
                                   class_names=train_src.class_names,
                                   metadata={"recipe": recipe.name, "run_dir": run_dir,
                                             "test_metrics": test_metrics},
                                   verbose=False)
    elapsed = time.time() - start
    atomic_write_text(os.path.join(run_dir, "completed.json"), json.dumps(
        {"recipe": recipe.name, "epochs": t.epochs, "wall_seconds": elapsed,
         "test_metrics": test_metrics, "export": export_path}, indent=1))
    if chief:
        _report_skipped((train_src, val_src, test_src))
        _print_outputs(run_dir, checkpoint, export_path, elapsed)
    return TrainResult(run_dir, history.history, test_metrics, export_path, model=model)


def _build_for_multi_worker(model, strategy, make_train):
    """Workaround for Keras 3.15 under ``MultiWorkerMirroredStrategy``: ``fit``'s
    ``_maybe_symbolic_build`` reduces a distributed *(images, labels)* batch with
    ``strategy.reduce``, which the collective strategy cannot do for a nested value
    ("Attempt to convert a value (PerReplica...) to a Tensor"). We build the model,
    loss and metrics from one local batch instead and skip that step."""
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


def tf_config_multi() -> bool:
    from kerascnn.training.strategy import tf_config_workers

    return tf_config_workers() > 1


def _preprocessing(recipe, source, mean):
    from kerascnn.export import Preprocessing

    size = recipe.data.image_size
    return Preprocessing(image_size=(size, size), channels=source.channels,
                         resize=recipe.data.eval_resize or None, pad=recipe.data.eval_pad,
                         mean=_export_mean(mean, source.channels))


def _export_mean(mean, channels):
    if mean is False:
        return None
    if mean is None:
        from kerascnn.data.pipeline import resolve_mean

        return resolve_mean(None, channels)
    return mean


def _report_skipped(sources):
    """The run's closing count of the bad image files its folders' listings skipped
    (each was named in a warning then, before training)."""
    for src in sources:
        skipped = (src.info or {}).get("skipped") if src is not None else None
        if skipped:
            total = len(skipped) + int(src.num_examples or 0)
            _log(f"skipped {len(skipped)} bad image file(s) of {total} in "
                 f"{src.info.get('root', src.name)} (each named in a warning when the "
                 f"folder was listed)")


def _print_outputs(run_dir, checkpoint, export_path, elapsed):
    rows = [
        ("run directory", run_dir),
        ("TensorBoard logs", os.path.join(run_dir, "logs") + "  (tensorboard --logdir "
         + os.path.join(run_dir, "logs") + ")"),
        ("history CSV", os.path.join(run_dir, "history.csv")),
        ("training curves", os.path.join(run_dir, "curves.png")),
        ("checkpoints", f"{checkpoint.last_path}, {checkpoint.best_path}"),
        ("test metrics", os.path.join(run_dir, "test_metrics.json")),
        ("preprocessing", os.path.join(run_dir, "preprocessing.json")),
        ("SavedModel (TF Serving)", export_path or "(not exported)"),
    ]
    _log(f"done in {elapsed / 60:.1f} min. Outputs:")
    for label, path in rows:
        print(f"  {label:<24} {path}", flush=True)
