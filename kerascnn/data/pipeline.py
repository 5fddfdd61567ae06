"""tf.data pipelines: ``train_dataset`` (a paper's augmentation) and the ``center``
evaluation view (``eval_dataset``).

Training is one path of small stages, whatever the source::

    keys of one pass (indices of an indexed source, else records)  _pass_keys
      -> shuffled per pass with a seed of (seed, pass)               _one_pass
      -> passes in a row from the start step's pass, skipping to it   _passes
      -> read (indexed) + the policy's per-image step, parallel       _examples
      -> batch(drop_remainder=True) -> the policy's compiled step     _batches
      -> [extra Keras layers] -> prefetch

In-memory sources of fixed-size images (Fashion-MNIST) skip per-image work: keys are
batched, then gathered, and the compiled step runs once per batch.

Randomness is stateless and a function of ``seed`` alone: pass ``p`` is shuffled with
a seed derived from ``(seed, p)`` (an indexed source gets a full permutation of its
indices, a stream a ``shuffle`` buffer), and the ``i``-th example of pass ``p`` is
augmented with a seed derived from ``(seed, p, i)``. So the batches of global step
``k`` are the same whether the run started at step 0 or resumed at
``start_step=k``; nothing depends on how many times an iterator was created, except
that a non-repeating dataset's ``j``-th iteration is pass ``first pass + j`` (each
Keras epoch sees a new pass). The skip to ``start_step`` works on indices (or, for a
stream of records, on undecoded records): no image is decoded to skip it.
"""

from __future__ import annotations

import logging

import numpy as np
import tensorflow as tf

from kerascnn.data import ops, stats
from kerascnn.data._graph import plain
from kerascnn.data.decode import decode_image
from kerascnn.data.policies import Policy, get_policy, needs_dct_scaling
from kerascnn.data.preprocessing import Preprocessing
from kerascnn.data.sizes import hw

__all__ = [
    "train_dataset",
    "eval_dataset",
    "compiled_batch_fn",
]

logger = logging.getLogger("kerascnn.data")
AUTOTUNE = tf.data.AUTOTUNE


def _check_batch_size(batch_size):
    if (isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer))
            or batch_size <= 0):
        raise ValueError(
            f"`batch_size` must be a positive int. Received: batch_size={batch_size!r}"
        )


def _shard(ds, input_context):
    if input_context is not None and input_context.num_input_pipelines > 1:
        ds = ds.shard(input_context.num_input_pipelines,
                      input_context.input_pipeline_id)
    return ds


def _sharded_count(n, input_context):
    """Elements of ``range(n)`` in this pipeline's ``shard``."""
    if n is None or input_context is None or input_context.num_input_pipelines <= 1:
        return n
    return len(range(input_context.input_pipeline_id, n,
                     input_context.num_input_pipelines))


def _base_dataset(source, input_context):
    """The source's ``(image, label)`` dataset, sharded per input pipeline: by file
    when the source is made of at least as many files (TFRecord shards), else by
    element. Returns ``(dataset, examples in it or None)``."""
    if input_context is not None and source.read_files is not None and source.files \
            and len(source.files) >= input_context.num_input_pipelines > 1:
        n, i = input_context.num_input_pipelines, input_context.input_pipeline_id
        return source.read_files(list(source.files[i::n])), None
    return (_shard(source.dataset, input_context),
            _sharded_count(source.num_examples, input_context))


def _array_key(value):
    """A hashable stand-in for ``value`` (None, a number, a sequence or an array)."""
    if value is None:
        return None
    a = np.asarray(value)
    return (type(value), a.dtype.str, a.shape, a.tobytes())


_COMPILED = {}  # (policy, image_size, mean, pca) -> the tf.function, newest last
_COMPILED_KEPT = 8


def compiled_batch_fn(policy, *, image_size, mean=None, pca=None):
    """The policy's batch step as one ``tf.function(jit_compile=True)``:
    ``(uint8 (B, h0, w0, C), seed int64 [2]) -> float32 (B, h, w, C)``.

    The same arguments give the same function (the last few are kept), so a second
    pipeline of the same step (a study's next network, a resumed run in the same
    process) reuses its traces and XLA programs instead of compiling them again."""
    policy = get_policy(policy) if isinstance(policy, str) else policy
    image_size = hw(image_size)
    if pca is None:
        pca = (stats.IMAGENET_PCA_EIGVAL, stats.IMAGENET_PCA_EIGVEC)
    key = (policy, image_size, _array_key(mean), _array_key(pca[0]), _array_key(pca[1]))
    try:
        hash(key)
    except TypeError:  # a hand-made Policy with a list in it: not kept
        key = None
    if key in _COMPILED:
        _COMPILED[key] = _COMPILED.pop(key)  # the most recently used last
        return _COMPILED[key]

    @tf.function(jit_compile=True, autograph=False)  # plain TensorFlow: see _graph
    def augment(images, seed):
        return policy.batch_fn(images, seed, image_size=image_size, mean=mean,
                               pca=pca)

    if key is not None:
        _COMPILED[key] = augment
    while len(_COMPILED) > _COMPILED_KEPT:
        del _COMPILED[next(iter(_COMPILED))]
    return augment


# -- training: the stages --------------------------------------------------------------
def _mix(seed, *values):
    """A stateless int64 derived from ``(seed, *values)`` (int64 scalars)."""
    key = tf.constant(0, tf.int64)
    for v in values:
        key = key * 1_000_003 + tf.cast(v, tf.int64)
    return tf.random.stateless_uniform(
        [], tf.stack([tf.constant(seed, tf.int64), key]), minval=None, maxval=None,
        dtype=tf.int64)


class _Keys:
    """What one pass reads, before anything is decoded: the indices of an indexed
    source (``indices``; read with ``read``), else a stream of records (``stream``),
    and the number of examples in a pass (``count``; None when unknown)."""

    def __init__(self, source, input_context, cache, shuffle_buffer):
        self.read = None
        self.indices = None
        self.stream = None
        self.encoded = source.encoded
        in_memory = source.images is not None
        if source.indexed and (in_memory or not cache):
            n = len(source.labels)
            shard = (input_context.input_pipeline_id, input_context.num_input_pipelines) \
                if input_context is not None and input_context.num_input_pipelines > 1 \
                else (0, 1)
            self.indices = np.arange(shard[0], n, shard[1], dtype=np.int64)
            self.count = len(self.indices)
            self.read = source.example_reader()
            return
        ds, self.count = _base_dataset(source, input_context)
        if cache:  # decoded once, kept in memory; passes shuffle the decoded images
            if source.encoded:
                ds = ds.map(plain(lambda x, y: (decode_image(x, source.channels), y)),
                            num_parallel_calls=AUTOTUNE)
                ds = ds.ignore_errors(log_warning=True)
                self.encoded = False
            ds = ds.cache()
        self.stream = ds
        self.buffer = shuffle_buffer or min(self.count or 10000, 10000)


def _one_pass(keys, seed, p):
    """Pass ``p`` in its shuffled order: ``(key, p, i)`` with ``i`` the position."""
    if keys.indices is not None:
        order = tf.random.experimental.stateless_shuffle(
            tf.constant(keys.indices), tf.stack([tf.constant(seed, tf.int64), p]))
        ds = tf.data.Dataset.from_tensor_slices(order)
    else:
        ds = _block_shuffle(keys.stream, keys.buffer, _mix(seed, p, 0x5A))
    return ds.enumerate().map(plain(lambda i, key: (key, p, i)))


def _dense(t):
    return t.to_tensor() if isinstance(t, tf.RaggedTensor) else t


def _block_shuffle(stream, buffer, pass_seed):
    """A stream shuffled in consecutive blocks of ``buffer`` records, each block by a
    stateless permutation seeded with ``(pass_seed, block index)``. Not
    ``Dataset.shuffle``: its seed must be a Python int (with a tensor seed and a
    global seed of 0, as ``keras.utils.set_random_seed(0)`` sets, it fails inside a
    traced function), and its buffer state restarts on resume; this order is a pure
    function of the seed and the pass. Blocks are ragged-batched, so decoded images
    of different sizes (``cache``) go through too."""
    def one(k, block):
        first = tf.nest.flatten(block)[0]
        n = first.nrows(out_type=tf.int64) if isinstance(first, tf.RaggedTensor) \
            else tf.shape(first, out_type=tf.int64)[0]
        order = tf.random.experimental.stateless_shuffle(
            tf.range(n), tf.stack([pass_seed, k]))
        block = tf.nest.map_structure(lambda t: tf.gather(t, order), block)
        return tf.data.Dataset.from_tensor_slices(block).map(plain(
            lambda *xs: tf.nest.map_structure(_dense, xs if len(xs) > 1 else xs[0])))

    return stream.ragged_batch(buffer).enumerate().flat_map(plain(one))


def _passes(keys, seed, *, start, repeat, per_batch):
    """Passes in a row from the pass holding element ``start * per_batch``, the
    elements before it skipped (on keys: nothing is decoded). ``repeat``: forever;
    else one pass per iteration of the dataset (the ``j``-th iteration is pass
    ``first + j``: each Keras epoch a new pass)."""
    m = keys.count
    if repeat:
        skip = start * per_batch
        if not m:  # unknown pass length: skip the stream's first records
            ds = tf.data.Dataset.range(0, np.iinfo(np.int64).max)
            return ds.flat_map(plain(lambda p: _one_pass(keys, seed, p))).skip(skip)
        first, within = divmod(skip, m)
        ds = tf.data.Dataset.range(first, np.iinfo(np.int64).max)
        return ds.flat_map(plain(lambda p: _one_pass(keys, seed, p).skip(
            tf.where(tf.equal(p, first), tf.constant(within, tf.int64), 0))))
    first = within = 0
    if start:
        if m is None:
            raise ValueError(
                "`start_step` without `repeat` needs the number of examples in a pass, "
                "which this source does not know (TFRecord shards); train with "
                f"repeat=True (training.steps_per_epoch). Received: start_step={start}")
        steps = m // per_batch
        if steps == 0:
            raise ValueError(f"A pass of {m} examples has no batch of {per_batch}. "
                             f"Received: batch_size={per_batch}")
        first, within = divmod(start, steps)
        within *= per_batch
    state = {"next": first}

    def iteration():  # called once per iterator of the dataset
        p = state["next"]
        state["next"] += 1
        yield p, (within if p == first else 0)

    spec = (tf.TensorSpec([], tf.int64), tf.TensorSpec([], tf.int64))
    ds = tf.data.Dataset.from_generator(iteration, output_signature=spec)
    return ds.flat_map(plain(lambda p, s: _one_pass(keys, seed, p).skip(s)))


def _examples(ds, keys, policy, seed, *, channels, image_size, jpeg_only,
              dct_scaling):
    """Per image, in parallel: read (indexed sources), then the policy's example
    step; ``(uint8 image, label, r)`` with ``r`` the example's random int64."""
    read, encoded = keys.read, keys.encoded

    def example(key, p, i):
        image, label = read(key) if read is not None else key
        r = _mix(seed, p, i)
        image = policy.example_fn(image, tf.stack([r, tf.constant(seed, tf.int64)]),
                                  encoded=encoded, channels=channels,
                                  image_size=image_size, jpeg_only=jpeg_only,
                                  dct_scaling=dct_scaling)
        return image, label, r

    ds = ds.map(plain(example), num_parallel_calls=AUTOTUNE)
    if encoded:
        ds = ds.ignore_errors(log_warning=True)
    return ds


def _check_start_step(start_step):
    if isinstance(start_step, bool) or not isinstance(start_step, (int, np.integer)) \
            or start_step < 0:
        raise ValueError(
            f"`start_step` must be an int >= 0. Received: start_step={start_step!r}")
    return int(start_step)


def train_dataset(source, policy, *, batch_size, seed, image_size=None, preprocessing=None,
                  pca=None, input_context=None, cache=False, shuffle_buffer=None,
                  extra_layers=(), repeat=False, start_step=0):
    """A training ``tf.data.Dataset`` of ``(float32 (B, h, w, C), int64 (B,))``.

    Args:
      source: a :class:`~kerascnn.data.sources.Source`.
      policy: a policy name (``alexnet``, ``vgg``, ``googlenet``, ``resnet``,
        ``cifar``) or a :class:`~kerascnn.data.policies.Policy`.
      batch_size: the global batch size; with ``input_context`` each pipeline makes
        ``input_context.get_per_replica_batch_size(batch_size)``.
      seed: int; the batches are a function of the seed (and the step) alone, each
        pass differs.
      image_size: output ``(h, w)``; default the preprocessing's, else the policy's
        (227, 224 or 32). For ``cifar`` smaller images are zero-padded (centred) to
        it first, e.g. Fashion-MNIST 28x28 -> 32x32.
      preprocessing: the network's :class:`~kerascnn.data.preprocessing.Preprocessing`:
        its ``mean`` (``(C,)`` or per-pixel ``(H, W, C)``; a per-pixel mean of another
        size is centre-padded/cropped to the image) is subtracted and its
        ``image_size`` is the default output size; None: no mean subtracted.
      pca: ``(eigval, eigvec)`` for PCA lighting; default ImageNet's.
      input_context: a ``tf.distribute.InputContext``: each input pipeline reads
        a distinct shard of the source.
      cache: keep the decoded images in memory after the first pass (for sources
        that fit, e.g. CIFAR-10 from tfds).
      shuffle_buffer: for streamed sources (tfds, TFRecord, ``cache``): default
        ``min(num_examples, 10000)``. Indexed sources (in memory, image folders) are
        shuffled completely, by a permutation of their indices.
      extra_layers: Keras preprocessing layers (e.g. ``keras.layers.RandAugment``)
        applied to each batch on the 0-255 scale, before mean subtraction.
      repeat: repeat forever (for ``steps_per_epoch`` training).
      start_step: the global step to start at: the dataset yields exactly the
        batches an uninterrupted run yields from that step on (a resumed run passes
        ``initial_epoch * steps_per_epoch``). Without ``repeat`` a step counts the
        batches of whole passes (``num_examples // batch_size`` each) and the
        ``j``-th iterator of the dataset reads pass ``first + j``, so an extra
        iterator (e.g. one Keras makes to build a model) shifts the passes; with
        ``repeat`` and Keras' ``steps_per_epoch`` (one iterator for the whole fit)
        the stream does not depend on how many iterators were made: prefer it.
    """
    if isinstance(policy, str):
        policy = get_policy(policy)
    elif not isinstance(policy, Policy):
        raise ValueError(
            f"`policy` must be a policy name or Policy. Received: policy={policy!r}"
        )
    _check_batch_size(batch_size)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"`seed` must be an int. Received: seed={seed!r}")
    start_step = _check_start_step(start_step)
    channels = source.channels
    mean = None
    if preprocessing is not None:
        if not isinstance(preprocessing, Preprocessing):
            raise ValueError("`preprocessing` must be a Preprocessing. "
                             f"Received: preprocessing={preprocessing!r}")
        if preprocessing.channels != channels:
            raise ValueError(
                f"{source.name} holds {channels}-channel images, the preprocessing wants "
                f"{preprocessing.channels}. Received: preprocessing.channels="
                f"{preprocessing.channels}")
        mean = preprocessing.mean
        image_size = image_size or preprocessing.image_size
    image_size = hw(image_size or policy.image_size)
    if pca is None:
        pca = (stats.IMAGENET_PCA_EIGVAL, stats.IMAGENET_PCA_EIGVEC)
    pca = (np.asarray(pca[0], np.float32), np.asarray(pca[1], np.float32))
    if policy.lighting and channels == 3 and (pca[0].shape != (3,) or
                                              pca[1].shape != (3, 3)):
        raise ValueError(
            "`pca` must be (eigval (3,), eigvec (3, 3)). Received: pca with shapes "
            f"{pca[0].shape}, {pca[1].shape}"
        )
    extra_layers = tuple(extra_layers or ())
    per_batch = batch_size
    if input_context is not None:
        per_batch = input_context.get_per_replica_batch_size(batch_size)
    seed = int(seed)
    augment = compiled_batch_fn(policy, image_size=image_size,
                                mean=None if extra_layers else mean, pca=pca)
    batch_salt = tf.constant(seed ^ 0x5EED, tf.int64)

    keys = _Keys(source, input_context, cache, shuffle_buffer)
    ds = _passes(keys, seed, start=start_step, repeat=repeat, per_batch=per_batch)
    if source.images is not None and keys.read is not None and policy.example == "none":
        # in memory, fixed size: batch the indices, gather, one compiled step
        read = keys.read

        def gathered(idx, p, i):
            images, labels = read(idx)
            return augment(images, tf.stack([_mix(seed, p[0], i[0]), batch_salt])), labels

        ds = ds.batch(per_batch, drop_remainder=True)
        ds = ds.map(plain(gathered), num_parallel_calls=AUTOTUNE)
    else:
        ds = _examples(ds, keys, policy, seed, channels=channels, image_size=image_size,
                       jpeg_only=bool(source.all_jpeg),
                       dct_scaling=needs_dct_scaling(source.max_short_side, policy,
                                                     image_size))
        ds = ds.batch(per_batch, drop_remainder=True, num_parallel_calls=AUTOTUNE)
        ds = ds.map(plain(lambda x, y, r: (augment(x, tf.stack([r[0], batch_salt])), y)),
                    num_parallel_calls=AUTOTUNE)
    for layer in extra_layers:
        ds = ds.map(plain(lambda x, y, layer=layer: (layer(x, training=True), y)),
                    num_parallel_calls=AUTOTUNE)
    if extra_layers and mean is not None:
        ds = ds.map(plain(lambda x, y: (ops.subtract_mean(x, mean), y)),
                    num_parallel_calls=AUTOTUNE)
    return ds.prefetch(AUTOTUNE)


# -- evaluation: the center view ---------------------------------------------------------
def eval_dataset(source, *, batch_size, preprocessing, view=None, input_context=None,
                 cache=False):
    """Evaluation batches, in the source's order, every example once (the last
    batch may be smaller).

    Without ``view``: ``(float32 (B, h, w, C), labels)``, the ``center`` view of
    ``preprocessing`` (:meth:`Preprocessing.__call__`, bit for bit). With ``view`` (a
    callable from :mod:`kerascnn.data.views`): each image is resized, padded and
    centre-cropped as the preprocessing says and kept uint8; batches of those,
    ``(uint8 (B, h, w, C), labels)``, are passed through ``view(images)`` (the mean
    is then the caller's to subtract).

    ``preprocessing``: a :class:`Preprocessing` (mean None: no subtraction), e.g. a
    model's own (:func:`kerascnn.data.carried.resolve`). Encoded images are decoded to
    the preprocessing's channels.
    """
    _check_batch_size(batch_size)
    if not isinstance(preprocessing, Preprocessing):
        raise ValueError("`preprocessing` must be a Preprocessing. "
                         f"Received: preprocessing={preprocessing!r}")
    channels = preprocessing.channels
    if not source.encoded and source.channels != channels:
        raise ValueError(
            f"{source.name} holds {source.channels}-channel images, the preprocessing "
            f"wants {channels}. Received: preprocessing.channels={channels}")
    if view is not None and not callable(view):
        raise ValueError(f"`view` must be callable or None. Received: view={view!r}")
    ds, _ = _base_dataset(source, input_context)
    if source.encoded:
        ds = ds.map(plain(lambda x, y: (decode_image(x, channels), y)),
                    num_parallel_calls=AUTOTUNE)
        ds = ds.ignore_errors(log_warning=True)
    if view is None:
        def prep(x, y):
            return preprocessing(x), y
    else:
        def prep(x, y):  # on the 0-255 grid already: the cast is exact
            return tf.cast(preprocessing.crop_uint8(x), tf.uint8), y
    ds = ds.map(plain(prep), num_parallel_calls=AUTOTUNE)
    if cache:
        ds = ds.cache()
    per_batch = batch_size
    if input_context is not None:
        per_batch = input_context.get_per_replica_batch_size(batch_size)
    ds = ds.batch(per_batch, num_parallel_calls=AUTOTUNE)
    if view is not None:
        ds = ds.map(plain(lambda x, y: (view(x), y)), num_parallel_calls=AUTOTUNE)
    return ds.prefetch(AUTOTUNE)
