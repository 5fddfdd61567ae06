"""The assembly of an experiment from a recipe: everything ``model.fit`` needs.

:func:`check_paths` (before any data is read: ``--data-dir``, ``--init-from``, a
writable ``--export-dir``), then :func:`assemble`: the data sources, the mean (one
meaning: an array, or None for no subtraction), the PCA for the lighting noise, the
policy, and the run's one :class:`~kerascnn.data.preprocessing.Preprocessing`, which
training (its mean), the validation and test evaluation and the export all read.
:func:`build_model` (under the strategy: network, warm start, compile) and
:func:`build_callbacks` complete it. :mod:`kerascnn.training.trainer` runs the result
through the run folder's stages.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile

import numpy as np

from kerascnn._io import atomic_path
from kerascnn.training.recipe import Recipe, policy_options
from kerascnn.training.run_dir import log as _log

__all__ = [
    "Experiment",
    "SetupError",
    "assemble",
    "build_callbacks",
    "build_model",
    "check_paths",
    "check_splits",
    "resolve_mean",
    "run_preprocessing",
]


class SetupError(ValueError):
    """A user's mistake found before training (a path, a folder): one line."""


# -- checks before any data is read ---------------------------------------------------
def check_paths(recipe: Recipe, *, data_dir=None, init_from=None, export_dir=None,
                export=True) -> None:
    """Refuses, before the first image is read, what would fail after the training
    or give wrong numbers: a data folder that does not exist, an image folder
    without a split the recipe asks for (:func:`check_splits`), a missing
    warm-start file, an export folder that cannot be written (tried by writing a
    file there)."""
    for flag, value in (("--data-dir", data_dir), ("data.data_dir", recipe.data.data_dir)):
        if value and not os.path.isdir(os.path.expanduser(value)):
            raise SetupError(f"{flag} {value} does not exist; give the folder that holds "
                             "the data (or leave it out to use the default).")
    check_splits(recipe)
    init = init_from or recipe.training.init_from
    if init and not os.path.isfile(os.path.expanduser(init)):
        raise SetupError(f"--init-from {init}: no such file; give a trained .keras file.")
    if export:
        try:
            os.makedirs(export_dir, exist_ok=True)
            with tempfile.TemporaryFile(dir=export_dir):
                pass
        except OSError as err:
            raise SetupError(
                f"--export-dir {export_dir} cannot be written ({err.strerror}); give a "
                "writable folder, or --no-export.") from None


# -- the experiment -------------------------------------------------------------------
@dataclasses.dataclass
class Experiment:
    """What a recipe resolves to before the network is built."""

    recipe: Recipe
    train_source: object
    val_source: object
    test_source: object
    mean: np.ndarray | None
    pca: tuple | None
    policy: object
    preprocessing: object
    global_batch: int
    eval_batch: int
    steps_per_epoch: int  # training.steps_per_epoch, or the steps of one pass (0: unknown)
    repeat: bool  # training.steps_per_epoch > 0: the data repeat, fit counts the steps

    def start_step(self, initial_epoch: int) -> int:
        """The global step an epoch starts at (what ``train_dataset`` skips to)."""
        if initial_epoch and not self.steps_per_epoch:
            _log("the training split's size is unknown: the resumed epochs do not "
                 "continue the interrupted data order")
        return initial_epoch * self.steps_per_epoch

    @property
    def class_names(self):
        return self.train_source.class_names

    def train_dataset(self, *, start_step=0, input_context=None):
        from kerascnn.data import train_dataset

        r = self.recipe
        ds = train_dataset(self.train_source, self.policy, batch_size=self.global_batch,
                           seed=r.training.seed, preprocessing=self.preprocessing,
                           pca=self.pca, input_context=input_context,
                           cache=r.data.cache,
                           shuffle_buffer=r.data.shuffle_buffer or None,
                           repeat=self.repeat, start_step=start_step)
        if self.repeat or not self.steps_per_epoch:
            return ds
        ds = _exact_steps(ds, self.steps_per_epoch, input_context)
        if input_context is not None:
            # tf.distribute reports the per-worker cardinality (per-replica batches)
            # to Keras as the steps: distributed, the passes follow one another and
            # fit is given the steps (fit_steps_per_epoch), one pass per epoch.
            ds = ds.repeat()
        return ds

    def fit_steps_per_epoch(self, distributed: bool):
        """``steps_per_epoch`` for ``fit``: the recipe's (repeating data), the steps
        of one pass when the input is distributed (:meth:`train_dataset` repeats its
        passes there), else None (the data declare their size)."""
        steps = self.recipe.training.steps_per_epoch
        if steps or not distributed:
            return steps or None
        return self.steps_per_epoch or None

    def eval_dataset(self, source):
        import tensorflow as tf

        from kerascnn.data import eval_dataset

        ds = eval_dataset(source, batch_size=self.eval_batch,
                          preprocessing=self.preprocessing)
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = \
            tf.data.experimental.AutoShardPolicy.DATA
        return ds.with_options(options)


def _exact_steps(ds, steps, input_context=None):
    """A one-pass training dataset of exactly ``steps`` batches per iteration, with
    that cardinality declared.

    Keras 3.15 fits a dataset of unknown size (the pass is a generator, and bad files
    are dropped by ``ignore_errors``) until it runs out, and with a static batch
    dimension (``drop_remainder``) it then runs one empty step whose batch still counts
    in every metric: a 3-class folder reported a training top-5 error of 12.5-25 %
    ("Your input ran out of data"). With the number of steps declared Keras stops at
    the last real batch. A pass one batch short (an image that fails to decode) is
    completed with the first batches of the next pass, so the declared size holds;
    that second iterator is only made when it is needed (``take`` stops first)."""
    import tensorflow as tf

    per_pipeline = steps
    if input_context is not None:  # each pipeline gives its replicas' batches
        per_pipeline = steps * max(1, input_context.num_replicas_in_sync
                                   // input_context.num_input_pipelines)
    return ds.concatenate(ds).take(per_pipeline).apply(
        tf.data.experimental.assert_cardinality(per_pipeline))


def assemble(recipe: Recipe, run_dir: str, *, replicas=1, data_dir=None) -> Experiment:
    """Sources, mean, PCA, policy and the run's preprocessing, resolved once."""
    from kerascnn.data import get_policy

    train, val, test = load_sources(recipe, data_dir)
    if recipe.data.validation_fraction:
        _record_holdout(recipe, train, val, run_dir)
    mean = resolve_mean(recipe, train, run_dir)
    pca = None
    if recipe.data.pca == "compute" and train.channels == 3:
        from kerascnn.data import stats

        pca = stats.compute_pca(train)
    policy = get_policy(recipe.data.policy, **policy_options(recipe.data))
    t = recipe.training
    global_batch = t.batch_size * replicas
    steps, repeat = t.steps_per_epoch, t.steps_per_epoch > 0
    if not repeat and train.num_examples:
        steps = train.num_examples // global_batch  # one pass, drop_remainder
        if not steps:
            raise SetupError(
                f"training.batch_size {t.batch_size} x {replicas} replica(s) is larger "
                f"than the {train.num_examples} training examples; lower it.")
    return Experiment(recipe, train, val, test, mean, pca, policy,
                      run_preprocessing(recipe, train, mean), global_batch,
                      (t.eval_batch_size or t.batch_size) * replicas, steps, repeat)


def _split_validation(source, n):
    from kerascnn.data import from_arrays

    if source.images is None:
        raise SetupError(
            "data.validation_from_train needs an in-memory source (e.g. fashion_mnist); "
            f"use data.validation_split instead. Received: source={source.name!r}")
    if not 0 < n < len(source.images):
        raise SetupError(f"data.validation_from_train must be in (0, {len(source.images)}). "
                         f"Received: validation_from_train={n}")
    train = from_arrays(source.images[:-n], source.labels[:-n], source.class_names,
                        name=source.name + "-train")
    val = from_arrays(source.images[-n:], source.labels[-n:], source.class_names,
                      name=source.name + "-val")
    return train, val


def _evaluated_splits(d):
    """The validation and test splits that are read from the source (not held out)."""
    out = []
    if d.validation_split and not (d.validation_fraction or d.validation_from_train):
        out.append(d.validation_split)
    if d.test_split and not (d.validation_fraction and d.test_split == d.validation_split):
        out.append(d.test_split)
    return out


def check_splits(recipe: Recipe) -> None:
    """For an image-folder source, without reading an image: every split the recipe
    reads has its folder (``<source>/<split>``), and no validation or test split is
    the training images themselves (a folder of class folders is one split: its
    validation needs ``data.validation_fraction``)."""
    from kerascnn.data.sources import check_folder_splits

    d = recipe.data
    try:
        check_folder_splits(d.source, d.train_split,
                            _evaluated_splits(d),
                            hint=", or hold out part of the training images: --set "
                                 "data.validation_fraction=0.1")
    except ValueError as err:
        raise SetupError(str(err)) from None


def load_sources(recipe: Recipe, data_dir=None):
    """``(train, validation or None, test or None)`` sources of the recipe."""
    from kerascnn.data import load_source

    d = recipe.data
    check_splits(recipe)
    kwargs = dict(d.source_options)
    if d.manual_dir:
        kwargs["manual_dir"] = os.path.expanduser(d.manual_dir)
    data_dir = data_dir or d.data_dir or None

    def load(split):
        return load_source(d.source, split, data_dir=data_dir, **kwargs)

    train = load(d.train_split)
    val = None
    if d.validation_from_train:
        train, val = _split_validation(train, d.validation_from_train)
    elif d.validation_fraction:
        from kerascnn.data.sources import hold_out

        try:
            train, val = hold_out(train, d.validation_fraction, recipe.training.seed)
        except ValueError as err:
            raise SetupError(f"data.validation_fraction: {err}") from None
        _log(f"data.validation_fraction = {d.validation_fraction:g}: the validation split "
             f"is {val.num_examples} of the {val.num_examples + train.num_examples} "
             f"training examples of {d.source}, held out per class with seed "
             f"{recipe.training.seed}; training uses the other {train.num_examples}")
    elif d.validation_split:
        val = load(d.validation_split)
    if d.test_split and d.validation_fraction and d.test_split == d.validation_split:
        test = val
    else:
        test = load(d.test_split) if d.test_split else None
    # the first N of each split (0: all)
    test = _first(test, d.test_examples) if test is not None else None
    val = _first(val, d.validation_examples) if val is not None else None
    return _first(train, d.train_examples), val, test


def _first(source, n):
    """The first ``n`` examples of ``source`` (0: all). An image folder lists its files
    class by class, so its first ``n`` would be the first classes only: there they
    are taken in turn from each class (the first of each, then the second, ...)."""
    if not n or source.paths is None or n >= (source.num_examples or 0):
        return source.take(n or None)
    labels = np.asarray(source.labels)
    rank = np.zeros(labels.size, np.int64)  # the example's place within its class
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        rank[members] = np.arange(members.size)
    chosen = np.sort(np.lexsort((np.arange(labels.size), rank))[:n])
    return source.subset(chosen, name=f"{source.name}[:{n} by class]")


def _record_holdout(recipe: Recipe, train, val, run_dir: str) -> None:
    """``<run>/holdout.json``: what data.validation_fraction held out (the files of
    an image folder), so the split can be checked and repeated."""
    from kerascnn._io import write_json

    d = recipe.data
    write_json(os.path.join(run_dir, "holdout.json"), {
        "source": d.source, "split": d.train_split,
        "validation_fraction": d.validation_fraction, "seed": recipe.training.seed,
        "train_examples": train.num_examples, "heldout_examples": val.num_examples,
        "used_as": ["validation"] + (["test"] if d.test_split
                                      and d.test_split == d.validation_split else []),
        "heldout_files": list(val.paths) if val.paths is not None else None,
    })


def resolve_mean(recipe: Recipe, source, run_dir: str):
    """The recipe's ``data.mean`` as the array to subtract, or None for none:
    ``"none"`` -> None; ``"imagenet"`` -> the published ImageNet mean RGB (None for
    a gray source: there is no gray ImageNet mean); ``"rgb"`` / ``"per_pixel"`` ->
    computed from the training split once and kept in ``<run>/mean.npy``. A
    fine-tuning run (``model.weights``) uses the mean of its weights instead: the
    pretrained network expects it."""
    if recipe.model.weights:
        from kerascnn.applications.pretrained import preprocessing_for

        mean = preprocessing_for(recipe.model.name, recipe.model.weights).mean
        _log(f"model.weights = {recipe.model.weights!r}: the mean RGB of those weights "
             f"({', '.join(f'{m:.3f}' for m in mean)}) replaces data.mean")
        return np.asarray(mean, np.float32)
    kind = recipe.data.mean
    if kind == "none":
        return None
    if kind == "imagenet":
        from kerascnn.data import stats

        if source.channels != 3:
            _log("data.mean = 'imagenet' on a gray source: no mean is subtracted")
            return None
        return np.asarray(stats.IMAGENET_MEAN_RGB, np.float32)
    path = os.path.join(run_dir, "mean.npy")
    if os.path.exists(path):
        return np.load(path, allow_pickle=False)
    from kerascnn.data import stats

    size = recipe.data.image_size
    _log(f"computing the {kind.replace('_', '-')} mean of {source.name} "
         f"({source.num_examples or '?'} images)")
    mean = stats.compute_mean(source, per_pixel=(kind == "per_pixel"),
                              image_size=(size, size) if kind == "per_pixel" else None)
    mean = np.asarray(mean, np.float32)
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, mean)
    return mean


def _fixed_shorter_side(source):
    """The shorter side of a source whose images all have one size (in-memory
    arrays; a decoded tfds split with a static shape), else None."""
    if getattr(source, "images", None) is not None:
        return int(min(source.images.shape[1:3]))
    if source.encoded:
        return None
    try:
        shape = source.dataset.element_spec[0].shape
    except (AttributeError, IndexError, TypeError):
        return None
    if shape.rank == 3 and shape[0] is not None and shape[1] is not None:
        return int(min(shape[0], shape[1]))
    return None


def run_preprocessing(recipe: Recipe, source, mean):
    """The run's evaluation and serving preprocessing: the network's input size,
    the source's channels, ``data.eval_resize`` / ``data.eval_pad`` and ``mean``.

    When the recipe gives no ``eval_resize`` and the training images all have one
    size (Fashion-MNIST's 28x28), ``resize`` is that shorter side: evaluation is
    unchanged (a bilinear resize to the same size is the identity) and a served image
    of any size is brought to what the network was trained on instead of cropped.
    """
    from kerascnn.data.preprocessing import Preprocessing

    size = recipe.data.image_size
    resize = recipe.data.eval_resize or _fixed_shorter_side(source)
    if recipe.model.weights and not recipe.data.eval_resize:
        from kerascnn.applications.pretrained import preprocessing_for

        # the weights' publisher's shorter side for this crop (256 for 224)
        resize = preprocessing_for(recipe.model.name, recipe.model.weights,
                                   image_size=(size, size)).resize
    return Preprocessing(image_size=(size, size), channels=source.channels,
                         resize=resize or None, pad=recipe.data.eval_pad, mean=mean)


# -- model and callbacks ----------------------------------------------------------------
def _jit(value):
    return {"auto": "auto", "true": True, "false": False}[value]


def build_model(exp: Experiment, strategy, *, init_from=None, warm_start=True):
    """The recipe's network under ``strategy``, warm-started, compiled with
    :class:`~kerascnn.training.optimizers.L2SGD` and the top-k metrics."""
    import keras

    from kerascnn.applications import get_model
    from kerascnn.training.metrics import default_metrics
    from kerascnn.training.optimizers import build_optimizer

    r, t = exp.recipe, exp.recipe.training
    size = r.data.image_size
    head = ()
    with strategy.scope():
        if r.model.weights:
            from kerascnn.training.finetune import finetune_model, head_patterns

            model = finetune_model(r.model.name, r.model.weights, exp.train_source.num_classes,
                                   (size, size, exp.train_source.channels), **r.model.options)
            head = head_patterns(model)
            _log(f"fine-tuning {r.model.name} from weights={r.model.weights!r}: new "
                 f"classifier(s) {', '.join(p.strip('^/') for p in head)}"
                 if exp.train_source.num_classes != 1000 else
                 f"fine-tuning {r.model.name} from weights={r.model.weights!r}")
        else:
            model = get_model(r.model.name, input_shape=(size, size, exp.train_source.channels),
                              classes=exp.train_source.num_classes, **r.model.options)
        init = init_from or t.init_from
        if init and warm_start:
            from kerascnn.training.warm_start import warm_start_from

            copied = warm_start_from(model, init)
            _log(f"warm start from {init}: copied {', '.join(copied)}")
        model.compile(optimizer=build_optimizer(r.optimizer, head=head),
                      loss=keras.losses.SparseCategoricalCrossentropy(),
                      metrics=default_metrics(), jit_compile=_jit(t.jit_compile),
                      steps_per_execution=t.steps_per_execution,
                      run_eagerly=t.run_eagerly)
        # The optimizer's slots now, not inside the first trace of the train step:
        # tf.function traces a function that creates variables twice (once to lift
        # them out, once more without), which doubled the first step's tracing.
        model.optimizer.build(model.trainable_variables)
    return model


@dataclasses.dataclass
class Callbacks:
    all: list
    guard: object
    checkpoint: object
    backup: object


def build_callbacks(recipe: Recipe, run, val_available: bool, verbose) -> Callbacks:
    """The fit callbacks, sharing one :class:`~kerascnn.training.callbacks.Divergence`.
    The backup is not deleted by ``fit``: the trainer removes it after writing
    ``trained.json``, so a kill in between loses nothing."""
    import keras

    from kerascnn.training import callbacks as cb

    sched = recipe.schedule
    monitor = sched.monitor if val_available else sched.monitor.replace("val_", "")
    divergence = cb.Divergence()
    checkpoint = cb.AtomicCheckpoint(run.checkpoint_dir, monitor=monitor,
                                     save_best=recipe.training.checkpoint_best,
                                     divergence=divergence)
    backup = cb.SafeBackupAndRestore(run.backup_dir, divergence=divergence,
                                     fallback=checkpoint, delete_checkpoint=False)
    guard = cb.NaNGuard(checkpoint, backup_dir=run.backup_dir, divergence=divergence)
    out = [guard]
    if recipe.model.weights and recipe.training.head_epochs:
        from kerascnn.training.finetune import FineTuneSchedule

        out.append(FineTuneSchedule(recipe.training.head_epochs,
                                    recipe.optimizer.finetune_lr_factor))
    if sched.name == "plateau":
        out.append(cb.PlateauSchedule(
            state_path=run.file("plateau_state.json"), monitor=monitor,
            factor=sched.factor, patience=sched.patience, min_delta=sched.min_delta,
            cooldown=sched.cooldown, min_lr=sched.min_lr, verbose=int(bool(verbose))))
        if sched.boundaries:
            out.append(cb.StepDeadline(recipe.optimizer.learning_rate, sched.boundaries))
    elif sched.name in ("exponential", "steps"):
        out.append(cb.epoch_schedule(sched.name, recipe.optimizer.learning_rate,
                                     decay_rate=sched.decay_rate,
                                     decay_epochs=sched.decay_epochs,
                                     boundaries=sched.boundaries))
    csv_path = run.file("history.csv")
    out += [
        checkpoint,
        cb.HistoryCSV(csv_path),
        cb.EpochSummary(),
        cb.CurvePlot(csv_path, run.file("curves.png"), title=recipe.name),
        keras.callbacks.TensorBoard(run.file("logs"), write_graph=False, profile_batch=0),
        # Last, so that its backup holds the learning rate the schedule just set.
        backup,
    ]
    return Callbacks(out, guard, checkpoint, backup)
