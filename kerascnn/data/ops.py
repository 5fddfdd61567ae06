"""Batch-level augmentation ops, written for XLA.

Every function here takes a fixed-size batch ``(B, H, W, C)`` and a stateless seed
(``int32/int64 [2]``) and uses only ops with XLA kernels (gather, where, matmul,
elementwise), so a policy composes them into one ``tf.function(jit_compile=True)``.
Random crops are index arithmetic + ``gather`` (``CropAndResize`` has no XLA kernel).
Each image gets its own random draw.
"""

from __future__ import annotations

import tensorflow as tf

__all__ = [
    "seed_for",
    "random_crop",
    "center_crop",
    "pad_centred",
    "pad_to",
    "random_flip",
    "hide_patches",
    "pca_lighting",
    "photometric",
    "subtract_mean",
]


def seed_for(seed, k):
    """The ``k``-th independent stateless seed derived from ``seed``."""
    seed = tf.cast(seed, tf.int64)
    return tf.stack([seed[0], seed[1] * 1000003 + k])


def random_crop(images, size, seed):
    """A random ``size = (h, w)`` crop of each image of the batch.

    Index arithmetic + two ``gather`` (rows, then columns), which XLA compiles
    (``CropAndResize`` has no XLA kernel). A ``map_fn`` of ``dynamic_slice`` is
    faster only when the offsets are compile-time constants; with run-time offsets
    XLA's loop copies the whole output buffer per image. Gathering uint8 is about
    2x faster than float32, so policies crop before casting where they can.
    """
    b, height, width = tf.shape(images)[0], tf.shape(images)[1], tf.shape(images)[2]
    h, w = size
    oy = tf.random.stateless_uniform([b], seed_for(seed, 1), 0, height - h + 1, tf.int32)
    ox = tf.random.stateless_uniform([b], seed_for(seed, 2), 0, width - w + 1, tf.int32)
    ys = oy[:, None] + tf.range(h)[None, :]
    xs = ox[:, None] + tf.range(w)[None, :]
    images = tf.gather(images, ys, axis=1, batch_dims=1)
    return tf.gather(images, xs, axis=2, batch_dims=1)


def center_crop(images, size):
    """Centre ``size = (h, w)`` crop of a ``(..., H, W, C)`` tensor (static shapes)."""
    height, width = images.shape[-3], images.shape[-2]
    h, w = size
    top, left = (height - h) // 2, (width - w) // 2
    return images[..., top:top + h, left:left + w, :]


def pad_centred(images, ph, pw):
    """Zero-pads ``(..., H, W, C)`` with ``ph`` rows and ``pw`` columns, ``ph // 2`` and
    ``pw // 2`` of them before (ints, or scalar tensors known at run time)."""
    return tf.pad(images, [[0, 0]] * (images.shape.rank - 3)
                  + [[ph // 2, ph - ph // 2], [pw // 2, pw - pw // 2], [0, 0]])


def pad_to(images, size):
    """Zero-pads (centred) or centre-crops ``(..., H, W, C)`` to ``size = (h, w)``: what
    ``tf.image.resize_with_crop_or_pad`` does (a larger side cut at ``(H - h) // 2``, a
    smaller one padded ``(h - H) // 2`` before), with plain slicing and padding, which
    trace about 30x faster than its assertions; ``H`` and ``W`` may be unknown until run
    time (then computed in the graph)."""
    height, width = images.shape[-3], images.shape[-2]
    h, w = int(size[0]), int(size[1])
    if height is None or width is None:
        shape = tf.shape(images)
        height, width = shape[-3], shape[-2]
        images = pad_centred(images, tf.maximum(h - height, 0), tf.maximum(w - width, 0))
        top, left = tf.maximum(height - h, 0) // 2, tf.maximum(width - w, 0) // 2
        out = images[..., top:top + h, left:left + w, :]
        return tf.ensure_shape(out, list(images.shape[:-3]) + [h, w, images.shape[-1]])
    if height < h or width < w:
        images = pad_centred(images, max(0, h - height), max(0, w - width))
    return center_crop(images, (h, w))


def random_flip(images, seed):
    """Mirrors each image left-right with probability 1/2."""
    flip = tf.random.stateless_uniform([tf.shape(images)[0]], seed_for(seed, 3)) < 0.5
    return tf.where(flip[:, None, None, None], tf.reverse(images, [2]), images)


def hide_patches(images, patch, prob, seed):
    """Hide-and-Seek (Singh & Lee, ICCV 2017, §3.1): the image is cut into a grid of
    ``patch x patch`` squares (the last row and column may be smaller) and each square
    is hidden with probability ``prob``, independently per image; hidden pixels become
    0, the dataset's mean once the mean is subtracted (the paper's fill value). A
    network that must classify with its most discriminative part hidden learns the
    others too, so its class activation map covers more of the object."""
    shape = tf.shape(images)
    b, height, width = shape[0], images.shape[1], images.shape[2]
    rows, cols = -(-height // patch), -(-width // patch)
    keep = tf.random.stateless_uniform([b, rows, cols], seed_for(seed, 5)) >= prob
    keep = tf.repeat(tf.repeat(keep, patch, axis=1)[:, :height], patch, axis=2)[:, :, :width]
    return tf.where(keep[..., None], images, tf.zeros_like(images))


def pca_lighting(images, eigval, eigvec, std, seed):
    """AlexNet's PCA lighting (Krizhevsky et al. 2012, §4.1).

    Adds ``eigvec @ (alpha * eigval)`` to every pixel of an image, ``alpha ~
    N(0, std)`` drawn once per image. ``images`` are float on the 0-255 scale, so
    ``eigval`` is in pixel units (see :mod:`kerascnn.data.stats`). Needs 3 channels.
    """
    eigval = tf.constant(eigval, images.dtype)
    eigvec = tf.constant(eigvec, images.dtype)
    alpha = tf.random.stateless_normal(
        [tf.shape(images)[0], 3], seed_for(seed, 4), stddev=std, dtype=images.dtype)
    rgb = tf.matmul(alpha * eigval, eigvec, transpose_b=True)  # (B, 3)
    return images + rgb[:, None, None, :]


def _gray(images):
    weights = tf.constant([0.299, 0.587, 0.114], images.dtype)
    return tf.reduce_sum(images * weights, axis=-1, keepdims=True)


def photometric(images, seed, brightness=32.0, contrast=(0.5, 1.5),
                saturation=(0.5, 1.5), hue=0.2):
    """Photometric distortions of Howard (2013) as used for GoogLeNet training
    (brightness, saturation, hue, contrast, the order of TF-slim's
    ``inception_preprocessing.distort_color``), on float images on the 0-255 scale,
    one random factor per image, result clipped to [0, 255]."""
    b = tf.shape(images)[0]
    dt = images.dtype

    def uniform(k, lo, hi):
        return tf.random.stateless_uniform([b, 1, 1, 1], seed_for(seed, k), lo, hi, dt)

    x = images + uniform(5, -brightness, brightness)
    x = tf.clip_by_value(x, 0.0, 255.0)
    if x.shape[-1] == 3:
        gray = _gray(x)
        x = gray + (x - gray) * uniform(6, *saturation)
        x = tf.clip_by_value(x, 0.0, 255.0)
        if hue:
            hsv = tf.image.rgb_to_hsv(x / 255.0)
            h = tf.math.floormod(hsv[..., :1] + uniform(7, -hue, hue), 1.0)
            x = tf.image.hsv_to_rgb(tf.concat([h, hsv[..., 1:]], -1)) * 255.0
    mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    x = mean + (x - mean) * uniform(8, *contrast)
    return tf.clip_by_value(x, 0.0, 255.0)


def subtract_mean(images, mean):
    """``images - mean``; ``mean`` is None, a mean RGB ``(C,)`` or per-pixel
    ``(H, W, C)`` (zero-padded/centre-cropped to the image size when it differs)."""
    if mean is None:
        return images
    mean = tf.constant(mean, images.dtype)
    if mean.shape.rank == 3:
        mean = pad_to(mean, images.shape[-3:-1])
    return images - mean
