"""Choosing the distribution strategy and the precision policy.

TensorFlow (``tf.distribute``): ``auto`` picks, in order:
``MultiWorkerMirroredStrategy`` when ``TF_CONFIG`` names more than one worker;
``MirroredStrategy`` over all visible GPUs when there are several; the default
(one-device) strategy otherwise. The global batch is the per-replica batch ×
``strategy.num_replicas_in_sync``, and the input pipelines are built per worker from a
``tf.distribute.InputContext`` (``strategy.distribute_datasets_from_function``), each
reading its own shard.

JAX (Keras' own ``keras.distribution``, over ``jax.sharding``): ``mirrored`` is
synchronous data parallelism over the process's devices with
``keras.distribution.DataParallel``; ``multi_worker`` the same over the devices of
all processes, after ``keras.distribution.initialize()`` (which calls
``jax.distributed.initialize``) with the coordinator address, process count and id
from :data:`JAX_ENV`; ``auto`` is ``multi_worker`` when
``KERAS_DISTRIBUTION_NUM_PROCESSES`` > 1, ``mirrored`` when the process sees several
devices, else one device (``default`` and ``one_device``: Keras' JAX backend without
a distribution). The distribution is set for the process
(``keras.distribution.set_distribution``): Keras' JAX trainer reads it in ``fit``,
``evaluate`` and ``predict`` (variables replicated, each batch split along its first
axis). :class:`JaxDataParallel` shows it through the few ``tf.distribute.Strategy``
attributes kerascnn's training uses (``scope``, ``num_replicas_in_sync``,
``distribute_datasets_from_function``, ``cluster_resolver``): each process's input
pipeline reads its own shard (an ``InputContext`` per process, Keras'
``auto_shard_dataset=False``: "the dataset is already sharded") and makes the
process's part of the global batch, which Keras assembles into one global array
(``jax.make_array_from_process_local_data``).

Where JAX departs from ``tf.distribute``: batch normalization computes its
statistics over the global batch (XLA sees one computation over the sharded batch:
"sync batch norm"), where ``MirroredStrategy`` normalizes each replica's part alone.
Evaluation (``fit``'s validation, ``evaluate``) is replicated, not split: every
device computes each evaluation batch whole (the last, partial batch of a split
cannot be split evenly over the devices; see :func:`_data_parallel_class`), so the
metrics are exact and an evaluation takes as long as on one device; the trainer feeds
it batches of ``eval_batch_size`` (one device's). Every process reads the whole
evaluation split.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import os
import sys

__all__ = ["STRATEGIES", "PRECISIONS", "JAX_ENV", "JaxDataParallel", "check_global_batch",
           "evaluation_callbacks", "jax_processes", "select_strategy", "precision_scope", "set_precision", "tf_config_workers"]

STRATEGIES = ("auto", "default", "one_device", "mirrored", "multi_worker")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
# Keras' own variables (read by keras.distribution.initialize): the coordinator's
# host:port (process 0's; a comma-separated list of all processes' works too), the
# number of processes and this process's id (0 .. count - 1).
JAX_ENV = ("KERAS_DISTRIBUTION_JOB_ADDRESSES", "KERAS_DISTRIBUTION_NUM_PROCESSES",
           "KERAS_DISTRIBUTION_PROCESS_ID")


def tf_config_workers() -> int:
    """Number of workers named by ``$TF_CONFIG`` (0 when unset)."""
    text = os.environ.get("TF_CONFIG")
    if not text:
        return 0
    try:
        cluster = json.loads(text).get("cluster", {})
    except ValueError:
        raise ValueError(f"TF_CONFIG is not valid JSON. Received: TF_CONFIG={text!r}") from None
    return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def select_strategy(name: str = "auto"):
    """The ``tf.distribute.Strategy`` named ``name`` (one of :data:`STRATEGIES`); a
    ``tf.distribute.Strategy`` instance is returned as is."""
    import tensorflow as tf  # here, not at import: ``kerascnn train --help`` stays fast

    if isinstance(name, JaxDataParallel):
        return name
    import keras

    jax = keras.backend.backend() == "jax"
    if isinstance(name, tf.distribute.Strategy):
        if jax and name.num_replicas_in_sync > 1:
            raise ValueError(
                f"A tf.distribute strategy ({type(name).__name__}) cannot distribute the "
                "jax backend; pass strategy='mirrored' or 'multi_worker' (Keras' "
                "keras.distribution.DataParallel), or use KERAS_BACKEND=tensorflow.")
        return name
    if name not in STRATEGIES:
        raise ValueError(f"Unknown strategy; expected one of {list(STRATEGIES)}. "
                         f"Received: strategy={name!r}")
    if jax:
        return _select_jax(name, tf)
    if keras.backend.backend() != "tensorflow":
        return tf.distribute.get_strategy()  # tf.distribute is TensorFlow's: one device
    if name == "auto":
        if tf_config_workers() > 1:
            name = "multi_worker"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "default"
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "one_device":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    return tf.distribute.get_strategy()


def jax_processes() -> int:
    """``$KERAS_DISTRIBUTION_NUM_PROCESSES`` (0 when unset)."""
    text = os.environ.get(JAX_ENV[1], "").strip()
    if not text:
        return 0
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{JAX_ENV[1]} must be a number of processes. "
                         f"Received: {JAX_ENV[1]}={text!r}") from None


def jax_multi_worker_problem() -> str | None:
    """Why ``multi_worker`` cannot start under JAX from this environment (one line),
    or None: the three :data:`JAX_ENV` variables must be set, the count >= 1 and the id
    in ``0 .. count - 1``. Checked without importing JAX."""
    missing = [v for v in JAX_ENV if not os.environ.get(v, "").strip()]
    if missing:
        return (f"--strategy multi_worker under jax needs {', '.join(JAX_ENV)} (the "
                f"coordinator's host:port, the number of processes and this process's id); "
                f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set")
    count = jax_processes()
    text = os.environ[JAX_ENV[2]].strip()
    if count < 1 or not text.isdigit() or int(text) >= count:
        return (f"{JAX_ENV[2]} must be an id in 0..{count - 1} and {JAX_ENV[1]} >= 1. "
                f"Received: {JAX_ENV[1]}={count}, {JAX_ENV[2]}={text!r}")
    return None


@functools.cache
def _data_parallel_class():
    """``keras.distribution.DataParallel`` whose evaluation batches are replicated
    (every device computes the whole batch) rather than split: Keras' JAX trainer
    takes one data layout per pass from its first batch, and the last, partial batch
    of a split cannot be split evenly over the devices (a ``jax.sharding`` axis must
    divide evenly). :func:`evaluation_callbacks` says when an evaluation runs. Any
    other batch its devices cannot split (``predict_on_batch``) is replicated too.
    Made on first use: Keras is not imported with this module."""
    import keras

    class DataParallel(keras.distribution.DataParallel):
        evaluating = False

        def get_data_layout(self, data_shape):
            local = self.num_model_replicas // max(self.num_processes, 1)
            if self.evaluating or (data_shape and data_shape[0] is not None
                                   and data_shape[0] % local):
                return keras.distribution.TensorLayout([None] * len(data_shape),
                                                       self.device_mesh)
            return super().get_data_layout(data_shape)

    return DataParallel


def evaluation_callbacks() -> list:
    """The callbacks that mark an evaluation (``fit``'s validation, ``evaluate``) for
    the JAX ``DataParallel`` set for the process: none without one."""
    if "keras" not in sys.modules or _data_parallel_class.cache_info().currsize == 0:
        return []
    import keras

    distribution = keras.distribution.distribution()
    if not isinstance(distribution, _data_parallel_class()):
        return []

    class ReplicatedEvaluation(keras.callbacks.Callback):
        def on_test_begin(self, logs=None):
            distribution.evaluating = True

        def on_test_end(self, logs=None):
            distribution.evaluating = False

    return [ReplicatedEvaluation()]


class JaxDataParallel:
    """A ``keras.distribution.DataParallel`` (set for the process) seen through the
    ``tf.distribute.Strategy`` attributes kerascnn's training uses."""

    def __init__(self, distribution):
        self.distribution = distribution
        self.num_processes = distribution.num_processes
        self.process_id = distribution._process_id
        # what kerascnn.training.trainer's chief test reads (process 0 exports)
        self.cluster_resolver = _Resolver("worker" if self.num_processes > 1 else None,
                                          self.process_id)

    @property
    def num_replicas_in_sync(self) -> int:
        return int(self.distribution.num_model_replicas)

    @property
    def local_replicas(self) -> int:
        return self.num_replicas_in_sync // self.num_processes

    def scope(self):
        return self.distribution.scope()

    def distribute_datasets_from_function(self, dataset_fn):
        """``dataset_fn(input_context)``: this process's pipeline, reading shard
        ``process_id`` of ``num_processes`` and making ``global / num_processes``
        examples per batch."""
        import tensorflow as tf

        return dataset_fn(tf.distribute.InputContext(
            num_input_pipelines=self.num_processes, input_pipeline_id=self.process_id,
            num_replicas_in_sync=self.num_processes))

    def end(self, model):
        """Unsets the distribution, for what each process does alone after the
        training (process 0's export), and returns ``model`` or, over several
        processes, a process-local copy of it: saving a model whose variables span
        several processes' devices is a collective step (every process must take
        it), so every process saves it here, together, and reads it back."""
        import keras

        if keras.distribution.distribution() is self.distribution:
            keras.distribution.set_distribution(None)
        if self.num_processes == 1:
            return model
        import tempfile

        from kerascnn.data.carried import save_model
        from kerascnn.evaluation.loading import load_keras_model

        with tempfile.TemporaryDirectory(prefix="kerascnn-local-") as tmp:
            path = os.path.join(tmp, "model.keras")
            save_model(model, path)  # the copy carries the model's preprocessing
            return load_keras_model(path)

    def __repr__(self):
        return (f"<JaxDataParallel {self.num_replicas_in_sync} device(s), "
                f"{self.num_processes} process(es)>")


class _Resolver:
    def __init__(self, task_type, task_id):
        self.task_type, self.task_id = task_type, task_id


def _select_jax(name, tf):
    """Keras' ``DataParallel`` for ``mirrored`` / ``multi_worker`` (set for the
    process), the default one-device strategy otherwise."""
    import jax
    import keras

    if name == "auto":
        if tf_config_workers() > 1:
            raise ValueError(
                "TF_CONFIG names several workers (tf.distribute); under the jax backend "
                f"multi-worker training reads {', '.join(JAX_ENV)} instead: set those (and "
                "unset TF_CONFIG), or use KERAS_BACKEND=tensorflow")
        name = "multi_worker" if jax_processes() > 1 else None
    if name == "multi_worker":
        problem = jax_multi_worker_problem()
        if problem:
            raise ValueError(problem)
        if not jax.distributed.is_initialized():
            keras.distribution.initialize()  # jax.distributed.initialize from JAX_ENV
            # JAX's exit (atexit) waits for every process at a barrier with a time limit;
            # process 0 exports after the others are done: wait for it first, without one
            # (registered after JAX's, so it runs before)
            from jax.experimental import multihost_utils

            atexit.register(multihost_utils.sync_global_devices, "kerascnn: exit")
    elif name is None:
        name = "mirrored" if jax.local_device_count() > 1 else "default"
    if name in ("default", "one_device"):
        return tf.distribute.get_strategy()  # Keras' JAX backend, no distribution: one device
    devices = jax.devices() if name == "multi_worker" else jax.local_devices()
    counts = {}
    for d in devices:
        counts[d.process_index] = counts.get(d.process_index, 0) + 1
    if len(set(counts.values())) > 1:
        raise ValueError(
            "The processes have different numbers of devices "
            f"({', '.join(f'process {p}: {n}' for p, n in sorted(counts.items()))}); "
            "data parallelism needs the same number in every process.")
    current = keras.distribution.distribution()
    cls = _data_parallel_class()
    if isinstance(current, cls) and list(current.device_mesh.devices.flat) == \
            [f"{d.platform}:{d.id}" for d in devices]:
        return JaxDataParallel(current)
    distribution = cls(devices=[f"{d.platform}:{d.id}" for d in devices],
                       auto_shard_dataset=False)  # each process reads its shard
    keras.distribution.set_distribution(distribution)
    return JaxDataParallel(distribution)


def check_global_batch(strategy, batch_size: int, flag: str = "--batch-size") -> None:
    """A global batch ``strategy``'s devices cannot split evenly is refused (one
    line) under JAX; tf.distribute splits any batch."""
    if not isinstance(strategy, JaxDataParallel):
        return
    n = strategy.num_replicas_in_sync
    if batch_size % n:
        raise ValueError(
            f"{flag} {batch_size} (the global batch) cannot be split evenly over the "
            f"{n} devices of the jax DataParallel distribution; give a multiple of {n}.")


def set_precision(precision: str = "float32") -> None:
    """Sets Keras' global dtype policy (``mixed_float16`` / ``mixed_bfloat16``: the
    layers compute in half precision, variables stay float32; the models keep LRN
    and the softmax in float32)."""
    if precision not in PRECISIONS:
        raise ValueError(f"Unknown precision; expected one of {list(PRECISIONS)}. "
                         f"Received: precision={precision!r}")
    import keras

    keras.mixed_precision.set_global_policy(precision)


@contextlib.contextmanager
def precision_scope():
    """Keeps the caller's Keras global dtype policy: whatever :func:`set_precision`
    sets inside (a training run, a study) is undone on the way out, so a library call
    leaves the process as it found it."""
    import keras

    before = keras.mixed_precision.global_policy()
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(before)
