"""Data sources: where ``(image, label)`` pairs come from.

``load_source(spec, split)`` returns a :class:`Source` for

* ``"fashion_mnist"``: the IDX files of Debian's ``dataset-fashion-mnist`` (or
  ``KERASCNN_FASHION_MNIST_DIR`` / ``data_dir``), else ``tfds.load``, else an error
  naming the package to install;
* ``"tfds:<name>"``: any TensorFlow Datasets image-classification builder;
* a directory: an image folder, one sub-folder per class;
* ``"tfrecord:<glob>"``: ImageNet-style TFRecord shards.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np
import tensorflow as tf

__all__ = ["Source", "load_source"]


@dataclasses.dataclass
class Source:
    """A labelled image source.

    Attributes:
      dataset: ``tf.data.Dataset`` of ``(image, label)``; ``image`` is a scalar
        ``tf.string`` of encoded bytes when ``encoded`` is True, else ``uint8
        (H, W, C)``; ``label`` is an ``int64`` scalar in ``[0, num_classes)``.
      encoded: whether images are encoded bytes.
      class_names: one name per class id.
      num_examples: number of examples, or None when unknown.
      channels: 1 or 3.
      name: a short name (for logs and file names).
      images, labels: the whole split as numpy arrays when the source is in
        memory (Fashion-MNIST), else None; the pipelines use them to batch first.
    """

    dataset: tf.data.Dataset
    encoded: bool
    class_names: list[str]
    num_examples: int | None
    channels: int
    name: str
    images: np.ndarray | None = None
    labels: np.ndarray | None = None
    info: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __repr__(self):
        return (
            f"Source(name={self.name!r}, num_examples={self.num_examples}, "
            f"num_classes={self.num_classes}, channels={self.channels}, "
            f"encoded={self.encoded})"
        )


def from_arrays(images, labels, class_names, name="arrays") -> Source:
    """A :class:`Source` over in-memory ``uint8 (N, H, W, C)`` images and labels."""
    images = np.asarray(images)
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(
            "`images` must be (N, H, W, 1 or 3). "
            f"Received: images with shape={images.shape}"
        )
    if images.dtype != np.uint8:
        raise ValueError(f"`images` must be uint8. Received: dtype={images.dtype}")
    if len(images) != len(labels):
        raise ValueError(
            f"{len(images)} images but {len(labels)} labels. "
            f"Received: labels with shape={labels.shape}"
        )
    check_labels(labels, len(class_names), name)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    return Source(
        dataset=dataset,
        encoded=False,
        class_names=list(class_names),
        num_examples=len(images),
        channels=int(images.shape[-1]),
        name=name,
        images=images,
        labels=labels,
    )


def check_labels(labels, num_classes, name, hint=""):
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        bad = labels[(labels < 0) | (labels >= num_classes)]
        raise ValueError(
            f"{name}: labels must be in [0, {num_classes}); found "
            f"{bad.size} outside, e.g. {int(bad[0])}.{hint}"
        )


def load_source(spec, split="train", *, data_dir=None, **kwargs) -> Source:
    """Loads a labelled image source.

    Args:
      spec: ``"fashion_mnist"``, ``"tfds:<name>"`` (e.g. ``"tfds:cifar10"``,
        ``"tfds:imagenet2012"``), a directory path (image folder, one sub-folder
        per class), or ``"tfrecord:<glob>"`` (ImageNet-style shards).
      split: ``"train"``, ``"test"``, ``"validation"``, or any tfds split string.
        For an image folder the split is a sub-folder (``<dir>/<split>``) when it
        exists, else the folder itself.
      data_dir: where the data lives (Fashion-MNIST IDX folder, tfds data dir).
      **kwargs: per-kind options: ``manual_dir``, ``download`` (tfds);
        ``validate`` (image folder: ``"header"``, ``"decode"`` or ``False``);
        ``num_classes``, ``class_names``, ``label_offset`` (TFRecord).
    """
    if not isinstance(spec, (str, os.PathLike)):
        raise ValueError(f"`spec` must be a string or a path. Received: spec={spec!r}")
    spec = os.path.expanduser(os.fspath(spec))
    if data_dir:
        data_dir = os.path.expanduser(os.fspath(data_dir))
    if spec == "fashion_mnist":
        from kerascnn.data import _fashion_mnist

        return _fashion_mnist.load(split, data_dir=data_dir, **kwargs)
    if spec.startswith("tfds:"):
        from kerascnn.data import _tfds

        return _tfds.load(spec[len("tfds:"):], split, data_dir=data_dir, **kwargs)
    if spec.startswith("tfrecord:"):
        from kerascnn.data import _tfrecord

        return _tfrecord.load(spec[len("tfrecord:"):], **kwargs)
    if os.path.isdir(spec):
        from kerascnn.data import _folder

        return _folder.load(spec, split, **kwargs)
    if os.path.exists(spec):
        raise ValueError(
            f"An image-folder source must be a directory. Received: spec={spec!r}"
        )
    raise ValueError(
        "`spec` must be 'fashion_mnist', 'tfds:<name>', 'tfrecord:<glob>' or an "
        f"existing image folder; no such path. Received: spec={spec!r}"
    )
