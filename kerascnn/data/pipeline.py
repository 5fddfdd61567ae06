"""tf.data pipelines: ``train_dataset`` (a paper's augmentation) and the ``center``
evaluation view (``eval_preprocess`` / ``eval_dataset``).

Training: source -> shard (``InputContext``) -> [cache] -> shuffle -> parallel map
of the policy's per-image step (decode / crop-before-decode / resize, uint8 out) ->
``batch(drop_remainder=True)`` -> the policy's batch step compiled with
``tf.function(jit_compile=True)`` -> [extra Keras layers] -> prefetch. In-memory
sources of fixed-size images (Fashion-MNIST) skip per-image work entirely: shuffled
indices are batched and gathered, then the compiled step runs once per batch.

Randomness is stateless: per-image seeds come from ``tf.data.Dataset.random(seed,
rerandomize_each_iteration=True)`` and the shuffle is seeded, so the same ``seed``
gives the same batches and each epoch differs.
"""

from __future__ import annotations

import logging

import numpy as np
import tensorflow as tf

from kerascnn.data import ops, stats
from kerascnn.data.decode import decode_image
from kerascnn.data.policies import Policy, get_policy, needs_dct_scaling

__all__ = [
    "train_dataset",
    "eval_preprocess",
    "eval_dataset",
    "resolve_mean",
    "compiled_batch_fn",
]

logger = logging.getLogger("kerascnn.data")
AUTOTUNE = tf.data.AUTOTUNE


def resolve_mean(mean, channels):
    """``None`` -> ImageNet's mean RGB for 3 channels, none for 1; ``False``/``0``
    -> no subtraction; else a float32 array ``(C,)`` or ``(H, W, C)``."""
    if mean is None:
        return np.asarray(stats.IMAGENET_MEAN_RGB, np.float32) if channels == 3 else None
    if mean is False or (np.isscalar(mean) and mean == 0):
        return None
    mean = np.asarray(mean, np.float32)
    if mean.ndim == 0:
        mean = np.full([channels], mean, np.float32)
    if mean.ndim not in (1, 3) or mean.shape[-1] != channels:
        raise ValueError(
            f"`mean` must be a mean RGB (C,) or per-pixel (H, W, C) with C={channels}."
            f" Received: mean with shape={mean.shape}"
        )
    return mean


def _size(image_size, name="image_size"):
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    try:
        h, w = (int(v) for v in image_size)
    except (TypeError, ValueError):
        raise ValueError(
            f"`{name}` must be an int or (height, width). Received: {name}={image_size!r}"
        ) from None
    if h <= 0 or w <= 0:
        raise ValueError(f"`{name}` must be positive. Received: {name}={image_size!r}")
    return h, w


def _check_batch_size(batch_size):
    if not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
        raise ValueError(
            f"`batch_size` must be a positive int. Received: batch_size={batch_size!r}"
        )


def _shard(ds, input_context):
    if input_context is not None and input_context.num_input_pipelines > 1:
        ds = ds.shard(input_context.num_input_pipelines,
                      input_context.input_pipeline_id)
    return ds


def _base_dataset(source, input_context):
    """The source's ``(image, label)`` dataset, sharded per input pipeline: by file
    when the source is made of at least as many files (TFRecord shards), else by
    element."""
    files, from_files = source.info.get("files"), source.info.get("from_files")
    if (input_context is not None and from_files is not None
            and len(files) >= input_context.num_input_pipelines > 1):
        n, i = input_context.num_input_pipelines, input_context.input_pipeline_id
        return from_files(files[i::n])
    return _shard(source.dataset, input_context)


def compiled_batch_fn(policy, *, image_size, mean=None, pca=None):
    """The policy's batch step as one ``tf.function(jit_compile=True)``:
    ``(uint8 (B, h0, w0, C), seed int64 [2]) -> float32 (B, h, w, C)``."""
    policy = get_policy(policy) if isinstance(policy, str) else policy
    image_size = _size(image_size)
    if pca is None:
        pca = (stats.IMAGENET_PCA_EIGVAL, stats.IMAGENET_PCA_EIGVEC)

    @tf.function(jit_compile=True)
    def augment(images, seed):
        return policy.batch_fn(images, seed, image_size=image_size, mean=mean,
                               pca=pca)

    return augment


def train_dataset(source, policy, *, batch_size, seed, image_size=None, mean=None,
                  pca=None, input_context=None, cache=False, shuffle_buffer=None,
                  extra_layers=(), repeat=False):
    """A training ``tf.data.Dataset`` of ``(float32 (B, h, w, C), int64 (B,))``.

    Args:
      source: a :class:`~kerascnn.data.sources.Source`.
      policy: a policy name (``alexnet``, ``vgg``, ``googlenet``, ``resnet``,
        ``cifar``) or a :class:`~kerascnn.data.policies.Policy`.
      batch_size: the global batch size; with ``input_context`` each pipeline makes
        ``input_context.get_per_replica_batch_size(batch_size)``.
      seed: int; the same seed gives the same batches, each epoch differs.
      image_size: output ``(h, w)``; default the policy's (227, 224 or 32). For
        ``cifar`` smaller images are zero-padded (centred) to it first, e.g.
        Fashion-MNIST 28x28 -> 32x32.
      mean: mean RGB ``(C,)`` or per-pixel ``(H, W, C)`` to subtract (a per-pixel
        mean of another size is centre-padded/cropped to the image); ``None``:
        ImageNet's mean RGB for RGB sources, nothing for gray; ``False``: none.
      pca: ``(eigval, eigvec)`` for PCA lighting; default ImageNet's.
      input_context: a ``tf.distribute.InputContext``: each input pipeline reads
        a distinct shard of the source.
      cache: keep the decoded images in memory after the first epoch (for sources
        that fit, e.g. CIFAR-10 from tfds).
      shuffle_buffer: default ``min(num_examples, 10000)`` (all paths for an image
        folder).
      extra_layers: Keras preprocessing layers (e.g. ``keras.layers.RandAugment``)
        applied to each batch on the 0-255 scale, before mean subtraction.
      repeat: repeat forever (for ``steps_per_epoch`` training).
    """
    if isinstance(policy, str):
        policy = get_policy(policy)
    elif not isinstance(policy, Policy):
        raise ValueError(
            f"`policy` must be a policy name or Policy. Received: policy={policy!r}"
        )
    _check_batch_size(batch_size)
    if not isinstance(seed, (int, np.integer)):
        raise ValueError(f"`seed` must be an int. Received: seed={seed!r}")
    image_size = _size(image_size or policy.image_size)
    channels = source.channels
    mean = resolve_mean(mean, channels)
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
    batch_mean = None if extra_layers else mean

    augment = compiled_batch_fn(policy, image_size=image_size, mean=batch_mean,
                                pca=pca)

    randoms = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    fixed = source.images is not None and policy.example == "none"
    if fixed:  # in memory, fixed size: batch indices first, no per-image work
        images = tf.constant(source.images)
        labels = tf.constant(source.labels)
        n = len(source.images)
        ds = _shard(tf.data.Dataset.range(n), input_context)
        ds = ds.shuffle(shuffle_buffer or n, seed=seed, reshuffle_each_iteration=True)
        if repeat:
            ds = ds.repeat()
        ds = ds.batch(per_batch, drop_remainder=True)
        ds = tf.data.Dataset.zip((ds, randoms.batch(2)))
        ds = ds.map(
            lambda idx, r: (augment(tf.gather(images, idx), r),
                            tf.gather(labels, idx)),
            num_parallel_calls=AUTOTUNE)
    else:
        encoded = source.encoded
        jpeg_only = bool(source.info.get("all_jpeg"))
        dct_scaling = needs_dct_scaling(source.info.get("max_short_side"), policy,
                                        image_size)
        paths = source.info.get("paths")
        if paths is not None and not cache:  # image folder: shuffle paths, then read
            ds = tf.data.Dataset.from_tensor_slices(
                (tf.constant(paths), tf.constant(source.info["labels"], tf.int64)))
            ds = _shard(ds, input_context)
            read = True
            buffer = shuffle_buffer or len(paths)
        else:
            ds = _base_dataset(source, input_context)
            read = False
            buffer = shuffle_buffer or min(source.num_examples or 10000, 10000)
            if cache:
                if encoded:
                    ds = ds.map(lambda x, y: (decode_image(x, channels), y),
                                num_parallel_calls=AUTOTUNE)
                    ds = ds.ignore_errors(log_warning=True)
                    encoded = False
                ds = ds.cache()
        ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
        if repeat:
            ds = ds.repeat()
        ds = tf.data.Dataset.zip((ds, randoms))

        def example(item, r):
            image, label = item
            if read:
                image = tf.io.read_file(image)
            example_seed = tf.stack([r, tf.constant(seed, tf.int64)])
            image = policy.example_fn(image, example_seed, encoded=encoded,
                                      channels=channels, image_size=image_size,
                                      jpeg_only=jpeg_only, dct_scaling=dct_scaling)
            return image, label, r

        ds = ds.map(example, num_parallel_calls=AUTOTUNE)
        if encoded:
            ds = ds.ignore_errors(log_warning=True)
        ds = ds.batch(per_batch, drop_remainder=True, num_parallel_calls=AUTOTUNE)
        batch_salt = tf.constant(seed ^ 0x5EED, tf.int64)
        ds = ds.map(lambda x, y, r: (augment(x, tf.stack([r[0], batch_salt])), y),
                    num_parallel_calls=AUTOTUNE)
    for layer in extra_layers:
        ds = ds.map(lambda x, y, layer=layer: (layer(x, training=True), y),
                    num_parallel_calls=AUTOTUNE)
    if extra_layers and mean is not None:
        ds = ds.map(lambda x, y: (ops.subtract_mean(x, mean), y),
                    num_parallel_calls=AUTOTUNE)
    return ds.prefetch(AUTOTUNE)


def eval_preprocess(image, *, image_size, resize=None, mean=None, pad=0):
    """The ``center`` view: uint8 ``(H, W, C)`` (or a batch) -> float32 ``(h, w, C)``.

    Shorter side to ``resize`` (bilinear; skipped when None), ``pad`` zero pixels on
    each side, centre crop to ``image_size`` (zero-padded, centred, when smaller),
    ``mean`` subtracted (as in :func:`train_dataset`; ``None``: ImageNet's mean RGB
    for RGB images). Pure TF graph ops, no XLA: the export puts exactly this inside
    the SavedModel.
    """
    h, w = _size(image_size)
    if resize is not None and (not isinstance(resize, (int, np.integer)) or resize <= 0):
        raise ValueError(f"`resize` must be a positive int. Received: resize={resize!r}")
    if not isinstance(pad, (int, np.integer)) or pad < 0:
        raise ValueError(f"`pad` must be an int >= 0. Received: pad={pad!r}")
    image = tf.convert_to_tensor(image)
    channels = image.shape[-1]
    mean = resolve_mean(mean, channels)
    x = image
    if resize is not None:
        shape = tf.cast(tf.shape(x)[-3:-1], tf.float32)
        scale = resize / tf.reduce_min(shape)
        new = tf.cast(tf.round(shape * scale), tf.int32)
        new = tf.maximum(new, resize)
        x = tf.image.resize(x, new, method="bilinear")
        x = tf.clip_by_value(tf.round(x), 0.0, 255.0)
    x = tf.cast(x, tf.float32)
    if pad:
        paddings = [[0, 0]] * (x.shape.rank - 3) + [[pad, pad], [pad, pad], [0, 0]]
        x = tf.pad(x, paddings)
    x = tf.image.resize_with_crop_or_pad(x, h, w)
    return ops.subtract_mean(x, mean)


def _eval_uint8(image, image_size, resize, pad):
    """Decoded uint8 image at a fixed size (for the multi-crop views)."""
    x = image
    if resize is not None:
        shape = tf.cast(tf.shape(x)[:2], tf.float32)
        new = tf.maximum(tf.cast(tf.round(shape * resize / tf.reduce_min(shape)),
                                 tf.int32), resize)
        x = tf.cast(tf.clip_by_value(tf.round(
            tf.image.resize(x, new, method="bilinear")), 0, 255), tf.uint8)
    if pad:
        x = tf.pad(x, [[pad, pad], [pad, pad], [0, 0]])
    return tf.image.resize_with_crop_or_pad(x, image_size[0], image_size[1])


def eval_dataset(source, *, batch_size, image_size, resize=None, mean=None, pad=0,
                 view=None, input_context=None, cache=False):
    """Evaluation batches, in the source's order, every example once (the last
    batch may be smaller).

    Without ``view``: ``(float32 (B, h, w, C), labels)``, the ``center`` view of
    :func:`eval_preprocess`. With ``view`` (a callable from
    :mod:`kerascnn.data.views`): each image is decoded, its shorter side resized to
    ``resize``, centre-cropped to ``image_size`` and kept uint8; batches of those,
    ``(uint8 (B, h, w, C), labels)``, are passed through ``view(images)`` (mean
    subtraction is then the caller's).
    """
    _check_batch_size(batch_size)
    image_size = _size(image_size)
    channels = source.channels
    if view is not None and not callable(view):
        raise ValueError(f"`view` must be callable or None. Received: view={view!r}")
    ds = _base_dataset(source, input_context)
    if source.encoded:
        ds = ds.map(lambda x, y: (decode_image(x, channels), y),
                    num_parallel_calls=AUTOTUNE)
        ds = ds.ignore_errors(log_warning=True)
    if view is None:
        resolved = resolve_mean(mean, channels)

        def prep(x, y):
            return eval_preprocess(x, image_size=image_size, resize=resize,
                                   mean=resolved if resolved is not None else False,
                                   pad=pad), y
    else:
        def prep(x, y):
            return _eval_uint8(x, image_size, resize, pad), y
    ds = ds.map(prep, num_parallel_calls=AUTOTUNE)
    if cache:
        ds = ds.cache()
    per_batch = batch_size
    if input_context is not None:
        per_batch = input_context.get_per_replica_batch_size(batch_size)
    ds = ds.batch(per_batch, num_parallel_calls=AUTOTUNE)
    if view is not None:
        ds = ds.map(lambda x, y: (view(x), y), num_parallel_calls=AUTOTUNE)
    return ds.prefetch(AUTOTUNE)
