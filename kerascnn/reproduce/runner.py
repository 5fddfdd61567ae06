"""Training the networks of a study to a budget, resumably, and writing its report.

Every network is trained with the paper's CIFAR recipe (He et al. 2016, §4.2) scaled
to the run: SGD, momentum 0.9, L2 weight decay 1e-4 (:class:`L2SGD`), batch 128,
learning rate 0.1 divided by 10 at 50 % and 75 % of the iterations (the paper's 32k
and 48k of 64k), per-pixel mean subtracted, the same iterations for every network of
a study.

The budget becomes iterations by a measured calibration at the start of a study: each
network is built and compiled, ten training steps (the mean time from the end of one
to the end of the next) and one pass over the curve's test subset are timed, and the iteration count is the largest multiple of the number
of curve points that fits ``budget × 0.8`` after the time already spent and each
network's fixed costs (compilation, evaluations, saving). The calibration and the
resulting plan are written to ``plan.json`` and reused when the study is run again,
so a resumed study trains exactly what the first run planned. ``--iterations`` or
``--epochs`` skip the calibration.

Layout of ``<output_dir>`` (default ``runs/reproduce/<study>/``)::

    plan.json                 settings, calibration, iterations (written once)
    mean.npy                  the per-pixel mean of the training images
    nets/<key>-s<seed>/       one folder per network and seed:
        checkpoint.keras, state.json   the last checkpoint of an unfinished run
        model.keras           the trained network (written before result.json)
        result.json           its curves and final numbers; marks it finished
    results.json              every number of the study, the claims
    results.md                the table and one line per claim
    claims.txt                one line per claim with its rule
    figure6.png / figure7.png the figures

A network whose ``result.json`` exists is never trained again. A network killed
mid-way resumes from its last checkpoint (written at most every
``checkpoint_seconds`` and at the end); its batches after a resume come from a
different shuffle, so a resumed run is not bit-identical to an uninterrupted one.
Every file is written elsewhere (a temporary name in the same folder) and renamed.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
import warnings

import numpy as np

from kerascnn._io import atomic_path, atomic_write
from kerascnn.reproduce import claims as claim_rules
from kerascnn.reproduce import plots
from kerascnn.reproduce.studies import PAPER_NUMBERS, Study

__all__ = ["Settings", "StudyData", "prepare_data", "run_study", "train_network",
           "default_output_dir", "load_network"]

SAFETY = 0.8  # fraction of the budget that the plan fills
LR_STEPS = (0.5, 0.75)  # the paper's 32k and 48k of 64k iterations


@dataclasses.dataclass
class Settings:
    """What a study trains with. ``None`` fields are resolved from the data or the
    budget (:func:`plan_study`)."""

    data: str = "fashion_mnist"
    data_dir: str | None = None
    budget_minutes: float | None = None
    iterations: int | None = None
    epochs: int | None = None
    points: int = 12
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    seeds: int | None = None
    augment: str | None = None  # none | flip | cifar (default: none for fashion_mnist)
    image_size: int | None = None
    train_examples: int | None = None
    test_examples: int = 1000
    final_test_examples: int | None = None  # None: the curve's test subset (its last point)
    eval_batch_size: int = 500
    precision: str = "mixed_bfloat16"
    strategy: str = "auto"
    checkpoint_seconds: float = 60.0
    run_eagerly: bool = False  # tests: skips graph tracing of tiny runs

    # keys that may differ when a study is resumed
    _RUNTIME = ("strategy", "checkpoint_seconds", "run_eagerly", "budget_minutes",
                "data_dir")

    def plan_key(self) -> dict:
        d = dataclasses.asdict(self)
        return {k: v for k, v in d.items() if k not in self._RUNTIME}


def default_output_dir(study_name: str) -> str:
    return os.path.join("runs", "reproduce", study_name)


def _log(msg):
    print(f"[reproduce] {msg}", flush=True)



def _clean(obj):
    """JSON-safe: numpy scalars to Python, non-finite floats to None."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        obj = float(obj)
        return obj if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def _write_json(path, obj):
    atomic_write(path, json.dumps(_clean(obj), indent=1, sort_keys=False) + "\n")


def _read_json(path):
    with open(path) as f:
        return json.load(f)


def _save_model(model, path):
    with atomic_path(path) as tmp:
        model.save(tmp)


# -- data ---------------------------------------------------------------------------
@dataclasses.dataclass
class StudyData:
    """The study's sources and preprocessing."""

    train: object
    test: object  # the curve's test subset
    final_test: object
    mean: np.ndarray
    image_size: int
    augment: str
    num_classes: int
    channels: int

    def policy(self):
        from kerascnn.data import get_policy

        size = (self.image_size, self.image_size)
        if self.augment == "cifar":
            return get_policy("cifar", image_size=size)
        if self.augment == "flip":
            return get_policy("cifar", image_size=size, pad=0, random_crop=False)
        return get_policy("cifar", image_size=size, pad=0, random_crop=False, flip=False)

    def train_dataset(self, batch_size, seed):
        from kerascnn.data import train_dataset

        cache = self.train.images is None and (self.train.num_examples or 0) <= 100_000
        return train_dataset(self.train, self.policy(), batch_size=batch_size, seed=seed,
                             image_size=self.image_size, mean=self.mean, repeat=True,
                             cache=cache)

    def eval_dataset(self, source, batch_size):
        from kerascnn.data import eval_dataset

        return eval_dataset(source, batch_size=batch_size, image_size=self.image_size,
                            mean=self.mean)


def _native_size(source):
    if source.images is not None:
        return int(source.images.shape[1])
    if not source.encoded:
        shape = source.dataset.element_spec[0].shape
        if shape.rank == 3 and shape[0] is not None:
            return int(shape[0])
    return 32


def prepare_data(settings: Settings, output_dir, *, train_source=None, test_source=None,
                 log=_log):
    """Loads (or takes) the sources, the subsets and the per-pixel mean
    (``<output_dir>/mean.npy``, computed once)."""
    from kerascnn.data import load_source, stats
    from kerascnn.data.sources import check_folder_splits

    if train_source is None and test_source is None:  # before any image is read
        check_folder_splits(settings.data, "train", ["test"])
    if train_source is None:
        train_source = load_source(settings.data, "train", data_dir=settings.data_dir)
    if test_source is None:
        test_source = load_source(settings.data, "test", data_dir=settings.data_dir)
    train = train_source.take(settings.train_examples)
    size = settings.image_size or _native_size(train)
    augment = settings.augment or ("none" if settings.data == "fashion_mnist" else "cifar")
    if augment not in ("none", "flip", "cifar"):
        raise ValueError("`augment` must be 'none', 'flip' or 'cifar'. "
                         f"Received: augment={augment!r}")
    mean_path = os.path.join(output_dir, "mean.npy")
    if os.path.exists(mean_path):
        mean = np.load(mean_path, allow_pickle=False)
    else:
        log(f"computing the per-pixel mean of {train.name} "
             f"({train.num_examples or '?'} images)")
        if train.images is not None and train.images.shape[1:3] == (size, size):
            total = np.zeros(train.images.shape[1:], np.float64)
            for i in range(0, len(train.images), 10_000):
                total += train.images[i:i + 10_000].sum(axis=0, dtype=np.float64)
            mean = (total / len(train.images)).astype(np.float32)
        else:
            mean = np.asarray(stats.compute_mean(train, per_pixel=True,
                                                 image_size=(size, size)), np.float32)
        with atomic_path(mean_path) as tmp:
            np.save(tmp, mean)
    test = test_source.take(settings.test_examples)
    return StudyData(
        train=train,
        test=test,
        final_test=(test if settings.final_test_examples is None
                    else test_source.take(settings.final_test_examples)),
        mean=mean,
        image_size=size,
        augment=augment,
        num_classes=train_source.num_classes,
        channels=train_source.channels,
    )


# -- models -------------------------------------------------------------------------
def _network(net, data: StudyData):
    from kerascnn.applications import get_model

    return get_model(net.model, input_shape=(data.image_size, data.image_size,
                                             data.channels),
                     classes=data.num_classes, name=net.key, **net.kwargs())


def _build(net, data: StudyData, settings: Settings):
    """The network, compiled with the paper's SGD (the learning rate is set per step
    by :func:`_lr_schedule`)."""
    import keras

    from kerascnn.training.metrics import TopKError
    from kerascnn.training.optimizers import L2SGD

    model = _network(net, data)
    model.compile(
        optimizer=L2SGD(learning_rate=settings.lr, momentum=settings.momentum,
                        l2=settings.weight_decay),
        loss="sparse_categorical_crossentropy",
        metrics=[TopKError(k=1)],
        # TensorFlow: oneDNN's kernels beat XLA's on CPU; JAX: always XLA (False would
        # run every op one at a time)
        jit_compile=False if keras.backend.backend() == "tensorflow" else "auto",
        run_eagerly=settings.run_eagerly,
    )
    return model


def _reinitialise(model, net, data, seed):
    """Gives a compiled ``model`` the initial weights a fresh build with ``seed`` has
    and a zeroed optimizer state, keeping its traced train/test functions (tracing a
    56-layer net costs a minute on the 2-core CPU)."""
    import keras

    keras.utils.set_random_seed(seed)
    model.set_weights(_network(net, data).get_weights())
    for v in model.optimizer.variables:
        v.assign(np.zeros(v.shape, v.dtype))


def _lr_schedule(base, bounds, per_point):
    """lr = base, /10 from iteration ``bounds[0]``, /100 from ``bounds[1]``."""
    import keras

    class StepLR(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epoch, self.current = 0, None

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_begin(self, batch, logs=None):
            it = self.epoch * per_point + batch
            lr = base * 0.1 ** sum(it >= b for b in bounds)
            if lr != self.current:
                self.model.optimizer.learning_rate = lr
                self.current = lr

    return StepLR()


def load_network(path):
    """A saved network of a study (``model.keras`` or ``checkpoint.keras``), with our
    layers, optimizer and metric registered first (safe mode: no code is run)."""
    import keras

    import kerascnn.layers  # noqa: F401  (registers the custom layers)
    import kerascnn.training.metrics  # noqa: F401
    import kerascnn.training.optimizers  # noqa: F401

    return keras.models.load_model(path)


def _current_lr(model):
    import keras

    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


def _make_recorder(tag, run_dir, history, iterations, per_point, points, settings, log):
    import keras

    class Recorder(keras.callbacks.Callback):
        """One line per curve point; the history and a checkpoint, atomically."""

        def __init__(self):
            super().__init__()
            self.start = time.time()
            self.last_save = time.time()
            self.diverged = False

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            row = {
                "point": epoch + 1,
                "iteration": (epoch + 1) * per_point,
                "lr": _current_lr(self.model),
                "loss": float(logs.get("loss", float("nan"))),
                "train_error": float(logs.get("top1_error", float("nan"))),
                "test_loss": float(logs.get("val_loss", float("nan"))),
                "test_error": float(logs.get("val_top1_error", float("nan"))),
                "seconds": time.time() - self.start,
            }
            history.append(row)
            log(f"{tag}: point {epoch + 1}/{points} (iteration {row['iteration']}/"
                f"{iterations}) lr {row['lr']:.3g} loss {row['loss']:.3f} train error "
                f"{row['train_error']:.2f}% test error {row['test_error']:.2f}% "
                f"[{row['seconds']:.0f}s]")
            if not math.isfinite(row["loss"]):
                self.diverged = True
                self.model.stop_training = True
                log(f"{tag}: the loss is {row['loss']}; stopped (recorded as diverged)")
                return
            if (epoch + 1 < points
                    and time.time() - self.last_save >= settings.checkpoint_seconds):
                _save_model(self.model, os.path.join(run_dir, "checkpoint.keras"))
                _write_json(os.path.join(run_dir, "state.json"),
                            {"points_done": epoch + 1, "history": history})
                self.last_save = time.time()

    return Recorder()


def train_network(net, seed, settings: Settings, iterations, data: StudyData, run_dir,
                  *, strategy=None, cache=None, log=_log) -> dict:
    """Trains ``net`` with ``seed`` for ``iterations`` into ``run_dir``, or returns the
    result a previous run wrote there (``result.json``: the network is not trained
    again). ``cache``: a dict of compiled models by network key, reused (with fresh
    initial weights) instead of compiling the same network again."""
    import keras

    from kerascnn.training.strategy import evaluation_callbacks, select_strategy

    tag = f"{net.key} seed {seed}"
    result_path = os.path.join(run_dir, "result.json")
    if os.path.exists(result_path):
        log(f"{tag}: finished earlier ({result_path}); not trained again")
        return _read_json(result_path)
    os.makedirs(run_dir, exist_ok=True)
    cache = {} if cache is None else cache
    strategy = select_strategy(strategy or settings.strategy)
    points = settings.points
    per_point = iterations // points
    ckpt = os.path.join(run_dir, "checkpoint.keras")
    state_path = os.path.join(run_dir, "state.json")
    started = time.time()
    with strategy.scope():
        if os.path.exists(ckpt) and os.path.exists(state_path):
            state = _read_json(state_path)
            model = load_network(ckpt)
            start, history = int(state["points_done"]), list(state["history"])
            log(f"{tag}: resuming from its checkpoint at point {start}/{points}")
        else:
            if net.key in cache:
                model = cache[net.key]
                _reinitialise(model, net, data, seed)
            else:
                keras.utils.set_random_seed(seed)
                model = _build(net, data, settings)
            start, history = 0, []
            log(f"training {tag}: {iterations} iterations of {settings.batch_size} "
                f"({points} points of {per_point}), {model.count_params():,} parameters")
        cache[net.key] = model
    bounds = [max(1, int(round(f * iterations))) for f in LR_STEPS]
    train_ds = data.train_dataset(settings.batch_size, seed=seed * 1009 + start)
    test_ds = data.eval_dataset(data.test, settings.eval_batch_size)
    recorder = _make_recorder(tag, run_dir, history, iterations, per_point, points,
                              settings, log)
    if start < points:
        model.fit(train_ds, epochs=points, initial_epoch=start,
                  steps_per_epoch=per_point, validation_data=test_ds, verbose=0,
                  callbacks=[_lr_schedule(settings.lr, bounds, per_point), recorder,
                             *evaluation_callbacks()])
    train_seconds = time.time() - started
    if data.final_test is data.test and history:  # the last curve point is the final
        final = {"top1_error": history[-1]["test_error"], "loss": history[-1]["test_loss"]}
    else:
        final = model.evaluate(data.eval_dataset(data.final_test,
                                                 settings.eval_batch_size),
                               return_dict=True, verbose=0, callbacks=evaluation_callbacks())
    _save_model(model, os.path.join(run_dir, "model.keras"))
    result = {
        "network": net.key,
        "label": net.label,
        "family": net.family,
        "depth": net.depth,
        "options": net.kwargs(),
        "seed": seed,
        "iterations": iterations,
        "points": points,
        "parameters": int(model.count_params()),
        "diverged": recorder.diverged,
        "history": history,
        "final_train_error": history[-1]["train_error"] if history else None,
        "final_test_error": float(final.get("top1_error", float("nan"))),
        "final_test_loss": float(final.get("loss", float("nan"))),
        "final_test_examples": data.final_test.num_examples,
        "seconds": time.time() - started,
        "train_seconds_this_run": train_seconds,
        "resumed_at_point": start,
    }
    _write_json(result_path, result)
    for path in (ckpt, state_path):
        if os.path.exists(path):
            os.remove(path)
    log(f"{tag}: done in {result['seconds']:.0f}s: final training error "
        f"{result['final_train_error']:.2f}%, test error {result['final_test_error']:.2f}% "
        f"({data.final_test.num_examples} test images)")
    return result


# -- the plan -----------------------------------------------------------------------
def _step_timer():
    """The time between the ends of consecutive training steps: a whole cycle, with
    Keras' and the input pipeline's share, not only the step function."""
    import keras

    class StepTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.ends = []

        def on_train_batch_end(self, batch, logs=None):
            self.ends.append(time.perf_counter())

        @property
        def times(self):
            return np.diff(self.ends)

    return StepTimer()


def _calibrate(study, settings, data, strategy, cache, log):
    """Times compilation, training steps and the curve evaluation of each network;
    the compiled models are kept in ``cache`` for the training."""
    from kerascnn.training.strategy import evaluation_callbacks, select_strategy

    strategy = select_strategy(strategy or settings.strategy)
    out = {}
    test_ds = data.eval_dataset(data.test, settings.eval_batch_size)
    for net in study.networks:
        with strategy.scope():
            model = _build(net, data, settings)
        ds = data.train_dataset(settings.batch_size, seed=12345)
        t = time.time()
        model.fit(ds, epochs=1, steps_per_epoch=2, verbose=0)
        model.evaluate(test_ds, verbose=0, callbacks=evaluation_callbacks())
        first = time.time() - t
        timer = _step_timer()
        model.fit(ds, epochs=1, steps_per_epoch=11, verbose=0, callbacks=[timer])
        # the mean of whole cycles, not the median of step calls: on a shared machine
        # the load's bursts are part of what a long run pays (timing the step calls
        # only, with their median and 90 % of the budget, the runs of
        # docs/reproductions.md took 1.1-1.7x the predicted time per iteration)
        step = float(np.mean(timer.times))
        t = time.time()
        model.evaluate(test_ds, verbose=0, callbacks=evaluation_callbacks())
        evaluation = time.time() - t
        out[net.key] = {"compile_and_first_steps_s": first, "step_s": step,
                        "curve_eval_s": evaluation}
        log(f"calibration {net.key}: {step:.3f} s/iteration, curve evaluation "
            f"{evaluation:.1f} s, compilation and first steps {first:.1f} s")
        cache[net.key] = model
    return out


def plan_study(study: Study, settings: Settings, data: StudyData, output_dir, *,
               started=None, strategy=None, cache=None, log=_log) -> dict:
    """The study's plan: read from ``plan.json`` or made (and written) now."""
    path = os.path.join(output_dir, "plan.json")
    key = settings.plan_key()
    if os.path.exists(path):
        plan = _read_json(path)
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
    seeds = settings.seeds or study.seeds
    train_n = data.train.num_examples
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
        calibration = _calibrate(study, settings, data, strategy,
                                 {} if cache is None else cache, log)
        spent = time.time() - (started or t0)
        runs = seeds
        final_ratio = (0.0 if data.final_test is data.test else
                       (data.final_test.num_examples or 10_000)
                       / max(1, data.test.num_examples or 1))
        # compiled once (in the calibration, already spent), reused by every seed
        fixed = runs * sum((settings.points + final_ratio) * c["curve_eval_s"] + 3.0
                           for c in calibration.values())
        per_iteration = runs * sum(c["step_s"] for c in calibration.values())
        left = SAFETY * budget - spent - fixed
        iterations = int(max(0.0, left) / per_iteration)
        how = (f"calibrated: {SAFETY:.0%} of {budget:.0f} s, minus {spent:.0f} s spent "
               f"and {fixed:.0f} s of fixed costs, at {per_iteration:.2f} s per "
               f"iteration of all {runs * len(study.networks)} runs")
        calibration = {"networks": calibration, "spent_s": spent, "fixed_s": fixed,
                       "per_iteration_s": per_iteration, "budget_s": budget,
                       "safety": SAFETY}
    points = min(settings.points, max(1, iterations))
    iterations = max(points, iterations - iterations % points)
    plan = {
        "study": study.name,
        "settings": key,
        "seeds": seeds,
        "iterations": iterations,
        "points": points,
        "iterations_per_point": iterations // points,
        "lr_boundaries": [max(1, int(round(f * iterations))) for f in LR_STEPS],
        "how": how,
        "calibration": calibration,
        "image_size": data.image_size,
        "augment": data.augment,
        "train_examples": train_n,
        "test_examples": data.test.num_examples,
        "final_test_examples": data.final_test.num_examples,
        "epochs_equivalent": (iterations * settings.batch_size / train_n) if train_n else None,
    }
    if iterations < 50 and not (settings.iterations or settings.epochs):
        log(f"warning: the budget leaves only {iterations} iterations per network; the "
            "curves will say little (raise --budget-minutes)")
    _write_json(path, plan)
    log(f"plan: {iterations} iterations per network ({how}); written to {path}")
    return plan


# -- a study ------------------------------------------------------------------------
def _train_all(study, settings, plan, data, output_dir, strategy, log, cache=None):
    settings = dataclasses.replace(settings, points=plan["points"])
    cache = {} if cache is None else cache
    results = {}
    for seed in range(plan["seeds"]):
        for net in study.networks:
            run_dir = os.path.join(output_dir, "nets", f"{net.key}-s{seed}")
            results.setdefault(net.key, {})[seed] = train_network(
                net, seed, settings, plan["iterations"], data, run_dir,
                strategy=strategy, cache=cache, log=log)
    return results


def run_study(study: Study, settings: Settings, output_dir=None, *, train_source=None,
              test_source=None, nets_study: Study | None = None, nets_dir=None,
              strategy=None, log=_log) -> dict:
    """Runs (or resumes) ``study`` and writes its report; returns ``results.json``'s
    content.

    For a study that measures another's networks (``responses``), ``nets_study``
    and ``nets_dir`` say which study and folder hold them; networks missing there are
    trained first (with that study's plan), and the log says so.
    """
    started = time.time()
    warnings.filterwarnings("ignore", message="`shuffle=True` was passed")
    output_dir = output_dir or default_output_dir(study.name)
    os.makedirs(output_dir, exist_ok=True)
    from kerascnn.training.strategy import check_global_batch, select_strategy, set_precision

    set_precision(settings.precision)
    strategy = select_strategy(strategy or settings.strategy)  # before any data is read
    check_global_batch(strategy, settings.batch_size)
    if study.nets_from:
        if nets_study is None:
            from kerascnn.reproduce.studies import get_study

            nets_study = get_study(study.nets_from)
        nets_dir = nets_dir or default_output_dir(nets_study.name)
        if os.path.exists(os.path.join(nets_dir, "plan.json")):
            plan = _read_json(os.path.join(nets_dir, "plan.json"))
            log(f"using the {nets_study.name} networks of {nets_dir} (data "
                f"{plan['settings']['data']}, {plan['iterations']} iterations each; its "
                "plan's settings replace this command's)")
            settings = dataclasses.replace(settings, **{
                k: v for k, v in plan["settings"].items()
                if k in {f.name for f in dataclasses.fields(Settings)}})
        else:
            plan = None
        data = prepare_data(settings, nets_dir, train_source=train_source,
                            test_source=test_source, log=log)
        missing = [n.key for n in study.networks
                   if not os.path.exists(os.path.join(nets_dir, "nets", f"{n.key}-s0",
                                                      "result.json"))]
        if missing:
            log(f"the {nets_study.name} networks {', '.join(missing)} are not trained "
                f"in {nets_dir}: training them now (the {nets_study.name} study's "
                f"budget, {settings.budget_minutes or nets_study.budget_minutes} min)")
        cache = {}
        if plan is None:
            plan = plan_study(nets_study, settings, data, nets_dir, started=started,
                              strategy=strategy, cache=cache, log=log)
        plan = dict(plan, seeds=1)
        one = dataclasses.replace(nets_study, networks=study.networks)
        trained = _train_all(one, settings, plan, data, nets_dir, strategy, log, cache)
        report = _responses_report(study, trained, data, nets_dir, log)
    else:
        data = prepare_data(settings, output_dir, train_source=train_source,
                            test_source=test_source, log=log)
        cache = {}
        plan = plan_study(study, settings, data, output_dir, started=started,
                          strategy=strategy, cache=cache, log=log)
        trained = _train_all(study, settings, plan, data, output_dir, strategy, log, cache)
        report = _curves_report(study, trained, output_dir)
    report.update({
        "study": study.name,
        "title": study.title,
        "paper": study.paper,
        "plan": plan,
        "wall_seconds_this_invocation": time.time() - started,
        "budget_minutes": (settings.budget_minutes or study.budget_minutes)
        if not (settings.iterations or settings.epochs) else None,
    })
    _write_reports(study, report, output_dir, log)
    return report


def _number(value):
    """A stored number; None (a non-finite value in JSON, e.g. a diverged run) -> NaN."""
    return float("nan") if value is None else float(value)


def _labels(study):
    return {n.key: n.label for n in study.networks}


def _curves_report(study, trained, output_dir):
    labels = _labels(study)
    nets = {}
    for key, by_seed in trained.items():
        seeds = sorted(by_seed)
        finals_train = [_number(by_seed[s]["final_train_error"]) for s in seeds]
        finals_test = [_number(by_seed[s]["final_test_error"]) for s in seeds]
        nets[key] = {
            "label": labels[key],
            "seeds": {str(s): by_seed[s] for s in seeds},
            "final_train_error_mean": float(np.mean(finals_train)),
            "final_train_error_spread": float(np.ptp(finals_train)),
            "final_test_error_mean": float(np.mean(finals_test)),
            "final_test_error_spread": float(np.ptp(finals_test)),
            "train_seconds": float(sum(by_seed[s]["seconds"] for s in seeds)),
            "paper": PAPER_NUMBERS.get(study.name, {}).get(key),
        }
    roles = dict(study.roles)
    if study.name == "shortcuts" or set(roles) == {"A", "B", "C"}:
        order = [roles[k] for k in ("A", "B", "C")]
        acc = {k: [100.0 - _number(trained[k][s]["final_test_error"])
                   for s in sorted(trained[k])]
               for k in order}
        found = claim_rules.shortcuts_claims(acc, order, labels)
        panels = [("ResNet-20, shortcut options A / B / C",
                   _series(trained, order, labels))]
        figure = "figure6.png"
    else:
        curves = {k: [[_number(r["train_error"]) for r in trained[k][s]["history"]]
                      for s in sorted(trained[k])] for k in roles.values()}
        found = claim_rules.degradation_claims(curves, roles, labels)
        panels = [("plain", _series(trained, [roles["plain_shallow"],
                                              roles["plain_deep"]], labels)),
                  ("ResNet", _series(trained, [roles["resnet_shallow"],
                                               roles["resnet_deep"]], labels))]
        figure = "figure6.png"
    plots.training_curves(panels, os.path.join(output_dir, figure),
                          title=study.title)
    return {"networks": nets, "claims": [c.to_dict() for c in found],
            "claim_lines": [c.line() for c in found], "figures": [figure]}


def _series(trained, keys, labels):
    out = []
    for i, key in enumerate(keys):
        for seed in sorted(trained[key]):
            h = trained[key][seed]["history"]
            out.append({"label": labels[key], "colour": i,
                        "iterations": [r["iteration"] for r in h],
                        "train_error": [r["train_error"] for r in h],
                        "test_error": [r["test_error"] for r in h]})
    return out


def _responses_report(study, trained, data, nets_dir, log):
    from kerascnn.reproduce.responses import measure_responses

    labels = _labels(study)
    images = np.concatenate([x for x, _ in data.eval_dataset(
        data.test, data.test.num_examples or 1000).as_numpy_iterator()])
    measured = {}
    for net in study.networks:
        path = os.path.join(nets_dir, "nets", f"{net.key}-s0", "model.keras")
        model = load_network(path)
        measured[net.key] = measure_responses(model, images)
        s = measured[net.key]["std"]
        log(f"responses {net.key}: {len(s)} 3x3 layers, std mean {np.mean(s):.3f} "
            f"(min {np.min(s):.3f}, max {np.max(s):.3f}) on {len(images)} test images")
        del model
    roles = dict(study.roles)
    pairs = [(roles[p], roles[r]) for p, r in (("plain_shallow", "resnet_shallow"),
                                               ("plain_deep", "resnet_deep"))
             if p in roles and r in roles]
    found = claim_rules.responses_claims({k: v["std"] for k, v in measured.items()},
                                         pairs, labels)
    return {
        "networks": {k: dict(v, label=labels[k],
                             final_test_error=trained[k][0]["final_test_error"])
                     for k, v in measured.items()},
        "nets_dir": nets_dir,
        "claims": [c.to_dict() for c in found],
        "claim_lines": [c.line() for c in found],
        "figures": ["figure7.png"],
        "_stds": {labels[k]: v["std"] for k, v in measured.items()},
    }


def _table(study, report) -> list[str]:
    nets = report["networks"]
    if study.nets_from:
        rows = ["| network | 3x3 layers | mean std | median std | max std | test error (%) |",
                "|---|---|---|---|---|---|"]
        for key, v in nets.items():
            s = np.asarray(v["std"])
            rows.append(f"| {v['label']} | {s.size} | {s.mean():.3f} | "
                        f"{np.median(s):.3f} | {s.max():.3f} | "
                        f"{v['final_test_error']:.2f} |")
        return rows
    plan = report["plan"]
    paper_col = ("paper ImageNet ResNet-34 top-1 (%)" if study.name == "shortcuts"
                 else "paper CIFAR-10 test error (%)")
    rows = [f"| network | seeds | iterations | final training error (%) | "
            f"final test error (%) | {paper_col} | training time (s) |",
            "|---|---|---|---|---|---|---|"]
    for key, v in nets.items():
        paper = v.get("paper") or {}
        paper_value = next(iter(paper.values()), None)
        n = len(v["seeds"])
        spread = lambda name: (f" (spread {v[name + '_spread']:.2f})" if n > 1 else "")  # noqa: E731
        rows.append(
            f"| {v['label']} | {n} | {plan['iterations']} | "
            f"{v['final_train_error_mean']:.2f}{spread('final_train_error')} | "
            f"{v['final_test_error_mean']:.2f}{spread('final_test_error')} | "
            f"{'-' if paper_value is None else paper_value} | {v['train_seconds']:.0f} |")
    return rows


def _write_reports(study, report, output_dir, log):
    stds = report.pop("_stds", None)
    if stds is not None:
        plots.response_stds(stds, os.path.join(output_dir, "figure7.png"),
                            title=study.title)
    plan = report["plan"]
    lines = [f"# {study.title}", "",
             f"Plan: {plan['iterations']} iterations of {plan['settings']['batch_size']} "
             f"per network ({plan['how']}); data {plan['settings']['data']} "
             f"({plan['train_examples']} training images, {plan['image_size']}x"
             f"{plan['image_size']}, augmentation {plan['augment']}); wall time of this "
             f"invocation {report['wall_seconds_this_invocation']:.0f} s.", "",
             *_table(study, report), "", "Paper: " + study.paper, "", "## Claims", ""]
    lines += [f"- {line}" for line in report["claim_lines"]]
    lines += ["", *[f"![{f}]({f})" for f in report["figures"]], ""]
    atomic_write(os.path.join(output_dir, "results.md"), "\n".join(lines))
    atomic_write(os.path.join(output_dir, "claims.txt"),
                 "\n".join(report["claim_lines"]) + "\n")
    _write_json(os.path.join(output_dir, "results.json"), report)
    log(f"{study.name}: wrote {output_dir}/results.md, results.json, claims.txt, "
        + ", ".join(report["figures"]))
    for line in report["claim_lines"]:
        log(line)

