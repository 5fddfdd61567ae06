"""Dataset statistics: mean RGB, per-pixel mean, PCA of the RGB covariance.

Defaults are ImageNet's commonly published values:

* ``IMAGENET_MEAN_RGB = (123.68, 116.779, 103.939)`` (defined in ``kerascnn._imagenet``,
  which weights can read without TensorFlow): the mean RGB of the ILSVRC-2012
  training set on the 0-255 scale, with the digits of Keras ``imagenet_utils``'
  "caffe" mode (BGR 103.939, 116.779, 123.68), the mean of keras.applications'
  weights (Simonyan & Zisserman's VGG release, MSRA's ResNets); torchvision's
  255 x (0.485, 0.456, 0.406) = (123.675, 116.28, 103.53) and BVLC's (123, 117, 104)
  are their publishers' own (``kerascnn.weights.origins``).
* ``IMAGENET_PCA_EIGVAL = 255 x (0.2175, 0.0188, 0.0045)`` and
  ``IMAGENET_PCA_EIGVEC`` (columns are eigenvectors, rows R, G, B): the values of
  fb.resnet.torch's ``datasets/imagenet.lua`` (from Caffe/AlexNet-style lighting),
  published for pixels on the [0, 1] scale, multiplied by 255 for our 0-255 pixels.

:func:`compute_pca` follows the same convention, so its output is a drop-in
replacement: eigenvectors of the 3x3 covariance of the training pixels and the
eigenvalues of that covariance on the [0, 1] scale, times 255 (so that AlexNet's
``p · (alpha λ)`` is in 0-255 pixel units).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from kerascnn._imagenet import IMAGENET_MEAN_RGB
from kerascnn.data._graph import plain
from kerascnn.data.ops import pad_to

__all__ = [
    "IMAGENET_MEAN_RGB",
    "IMAGENET_PCA_EIGVAL",
    "IMAGENET_PCA_EIGVEC",
    "compute_mean",
    "compute_pca",
    "compute_stats",
]

IMAGENET_PCA_EIGVAL = tuple(255.0 * v for v in (0.2175, 0.0188, 0.0045))
IMAGENET_PCA_EIGVEC = (
    (-0.5675, 0.7192, 0.4009),
    (-0.5808, -0.0045, -0.8140),
    (-0.5836, -0.6948, 0.4203),
)


def _images(source, image_size=None, max_examples=None, batch_size=64):
    """Batches of float64-ready uint8 images (decoded; centre view if image_size)."""
    from kerascnn.data.decode import decode_image

    ds = source.dataset
    if max_examples:
        ds = ds.take(max_examples)
    if source.encoded:
        ds = ds.map(plain(lambda x, y: (decode_image(x, source.channels), y)),
                    num_parallel_calls=tf.data.AUTOTUNE).ignore_errors(log_warning=True)
    if image_size is not None:
        h, w = image_size
        ds = ds.map(plain(lambda x, y: (pad_to(x, (h, w)), y)),
                    num_parallel_calls=tf.data.AUTOTUNE)
        ds = ds.batch(batch_size)
    else:
        ds = ds.map(plain(lambda x, y: x[None]))
        return _progress(ds.prefetch(tf.data.AUTOTUNE).as_numpy_iterator(), source,
                         max_examples, 1)
    ds = ds.map(plain(lambda x, y: x))
    return _progress(ds.prefetch(tf.data.AUTOTUNE).as_numpy_iterator(), source,
                     max_examples, batch_size)


def _progress(iterator, source, max_examples, batch):
    import keras

    total = min(filter(None, [source.num_examples, max_examples]), default=None)
    bar = keras.utils.Progbar(total, unit_name="image", verbose=1 if total else 0)
    seen = 0
    for images in iterator:
        seen += len(images)
        bar.update(seen)
        yield images


def compute_stats(source, *, per_pixel=False, image_size=None, max_examples=None):
    """One pass: ``{"mean_rgb", "per_pixel_mean" (if per_pixel), "eigval",
    "eigvec", "num_examples"}`` of the source's pixels (0-255 scale).

    ``per_pixel`` needs images of one size: give ``image_size`` to take the centre
    crop (zero-padded when smaller) of every image, e.g. ``(32, 32)`` for
    Fashion-MNIST padded to 32x32.
    """
    if per_pixel and image_size is None and source.images is None:
        raise ValueError(
            "per_pixel=True needs images of one size; pass image_size. "
            f"Received: image_size={image_size!r}"
        )
    if per_pixel and image_size is None:
        image_size = source.images.shape[1:3]
    total = np.zeros(source.channels)
    outer = np.zeros((source.channels, source.channels))
    count = 0
    pixel_sum = None
    n = 0
    for batch in _images(source, image_size, max_examples):
        x = batch.astype(np.float64)
        flat = x.reshape(-1, x.shape[-1])
        total += flat.sum(0)
        outer += flat.T @ flat
        count += flat.shape[0]
        n += len(batch)
        if per_pixel:
            s = x.sum(0)
            pixel_sum = s if pixel_sum is None else pixel_sum + s
    if count == 0:
        raise ValueError(f"{source.name}: no images to compute statistics from.")
    mean = total / count
    cov = outer / count - np.outer(mean, mean)
    result = {"mean_rgb": mean.tolist(), "num_examples": n}
    if per_pixel:
        result["per_pixel_mean"] = (pixel_sum / n).astype(np.float32)
    if source.channels == 3:
        eigval, eigvec = np.linalg.eigh(cov / 255.0**2)
        order = np.argsort(eigval)[::-1]
        result["eigval"] = (255.0 * eigval[order]).tolist()
        result["eigvec"] = eigvec[:, order].tolist()
    return result


def compute_mean(source, per_pixel=False, *, image_size=None, max_examples=None):
    """Mean RGB ``(C,)`` or per-pixel mean ``(H, W, C)`` (float32, 0-255 scale)."""
    stats = compute_stats(source, per_pixel=per_pixel, image_size=image_size,
                          max_examples=max_examples)
    if per_pixel:
        return stats["per_pixel_mean"]
    return np.asarray(stats["mean_rgb"], np.float32)


def compute_pca(source, *, max_examples=None):
    """``(eigval (3,), eigvec (3, 3))`` of the RGB covariance, eigenvalues in
    descending order, columns of ``eigvec`` the eigenvectors; scaled as the
    ImageNet defaults (see the module docstring)."""
    if source.channels != 3:
        raise ValueError(
            f"PCA lighting needs RGB images. Received: source with "
            f"channels={source.channels}"
        )
    stats = compute_stats(source, max_examples=max_examples)
    return np.asarray(stats["eigval"]), np.asarray(stats["eigvec"])
