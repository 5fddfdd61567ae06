"""Data sources: where ``(image, label)`` pairs come from.

``load_source(spec, split)`` returns a :class:`Source` for

* ``"fashion_mnist_boxes"``: Fashion-MNIST items placed on textured canvases, with
  their boxes (:mod:`kerascnn.data._boxes`);
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
from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf

from kerascnn.data._graph import plain

__all__ = ["Source", "check_folder_splits", "folder_split", "hold_out", "load_source"]


@dataclasses.dataclass
class Source:
    """A labelled image source: what a pipeline may ask of it, as named fields.

    Every source has ``dataset``, the whole split in its order; how a pipeline reads
    less than all of it (a shuffled subset, a shard, a resumed run's remaining
    examples) depends on what the source is made of:

    - **indexed** sources (in-memory arrays, image folders): example ``i`` can be read
      on its own, so pipelines shuffle, shard and skip *indices* (no image is read
      for a skipped example) and read each with :meth:`example_reader`;
    - **sharded-file** sources (TFRecord shards): ``files`` and :meth:`read_files`,
      which reads a subset of the shards (sharding by file across workers);
    - other sources (tfds): ``dataset`` only.

    Attributes:
      dataset: ``tf.data.Dataset`` of ``(image, label)``; ``image`` is a scalar
        ``tf.string`` of encoded bytes when ``encoded`` is True, else ``uint8
        (H, W, C)``; ``label`` is an ``int64`` scalar in ``[0, num_classes)``.
      encoded: whether images are encoded bytes.
      class_names: one name per class id.
      num_examples: number of examples, or None when unknown (TFRecord shards).
      channels: 1 or 3.
      name: a short name (for logs and file names).
      images: the whole split as ``uint8 (N, H, W, C)`` when it is in memory
        (Fashion-MNIST), else None.
      labels: ``int64 (N,)``, one label per example, when known without reading the
        images (in memory, image folders), else None.
      paths: image folder: example ``i`` is the file ``paths[i]``; else None.
      files: sharded-file sources: the shard files, read by :meth:`read_files`.
      all_jpeg: hint: every encoded image is a JPEG (the decoder skips the format test).
      max_short_side: hint: the largest shorter side of the images (from file headers),
        None when unknown; lets training drop the per-image DCT-scaling branch.
      skipped: ``[(path, reason)]``, the bad files the listing left out.
      root: the folder the examples were listed from (image folders), else None.
      split: the split name, when the source has splits.
      boxes: ``int64 (N, 4)``, one ground-truth box ``(x0, y0, x1, y1)`` per example in its
        image's pixels, ends exclusive, when the source carries boxes
        (``fashion_mnist_boxes``), else None.
    """

    dataset: tf.data.Dataset
    encoded: bool
    class_names: list[str]
    num_examples: int | None
    channels: int
    name: str
    images: np.ndarray | None = None
    labels: np.ndarray | None = None
    paths: tuple[str, ...] | None = None
    files: tuple[str, ...] | None = None
    read_files: Callable[[Sequence[str]], tf.data.Dataset] | None = dataclasses.field(
        default=None, repr=False)
    all_jpeg: bool = False
    max_short_side: int | None = None
    skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    root: str | None = None
    split: str | None = None
    boxes: np.ndarray | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def indexed(self) -> bool:
        """Whether example ``i`` can be read on its own (:meth:`example_reader`)."""
        return self.labels is not None and (self.images is not None
                                            or self.paths is not None)

    def example_reader(self) -> Callable[[tf.Tensor], tuple[tf.Tensor, tf.Tensor]]:
        """``read(index) -> (image, label)``, graph-safe, for a ``tf.data`` map over
        int64 indices of an :attr:`indexed` source (the arrays are captured once,
        here, not per call)."""
        if not self.indexed:
            raise ValueError(
                f"{self.name}: examples cannot be read by index (not in memory, not an "
                "image folder); iterate `dataset` instead.")
        labels = tf.constant(np.asarray(self.labels, np.int64))
        if self.images is not None:
            images = tf.constant(self.images)
            return lambda i: (tf.gather(images, i), tf.gather(labels, i))
        paths = tf.constant(list(self.paths))
        return lambda i: (tf.io.read_file(tf.gather(paths, i)), tf.gather(labels, i))

    def take(self, n: int) -> "Source":
        """The first ``n`` examples (all when ``n`` is None or not smaller), as a
        source of the same kind where it can be (indexed sources stay indexed; a
        sharded-file source becomes a plain stream)."""
        if n is None or (self.num_examples is not None and n >= self.num_examples):
            return self
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"`n` must be an int >= 0. Received: n={n!r}")
        n = int(n)
        cut = lambda a: None if a is None else a[:n]  # noqa: E731
        return dataclasses.replace(
            self, dataset=self.dataset.take(n),
            num_examples=n if self.num_examples is not None or self.indexed else None,
            name=f"{self.name}[:{n}]", images=cut(self.images), labels=cut(self.labels),
            paths=cut(self.paths), files=None, read_files=None, skipped=[],
            boxes=cut(self.boxes))

    def subset(self, indices, name: str) -> "Source":
        """The examples ``indices`` (in that order) of an :attr:`indexed` source, as a
        source of the same kind."""
        if not self.indexed:
            raise ValueError(f"{self.name}: a subset needs an indexed source (in memory "
                             "or an image folder).")
        idx = np.asarray(indices, np.int64).reshape(-1)
        if self.images is not None:
            return from_arrays(self.images[idx], self.labels[idx], self.class_names,
                               name=name)
        out = dataclasses.replace(
            self, labels=self.labels[idx], paths=tuple(self.paths[i] for i in idx),
            num_examples=len(idx), name=name, files=None, read_files=None, skipped=[])
        out.dataset = tf.data.Dataset.range(len(idx)).map(
            plain(out.example_reader()), num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True)
        return out

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


def hold_out(source: Source, fraction: float, seed: int):
    """``(rest, held_out)``: a deterministic, stratified split of an indexed source:
    from each class, ``round(fraction * n)`` examples (at least 1, never all) drawn
    with ``numpy.random.default_rng(seed)``; both keep the source's order."""
    if not 0.0 < float(fraction) < 1.0:
        raise ValueError(f"`fraction` must be in (0, 1). Received: fraction={fraction!r}")
    if not source.indexed:
        raise ValueError(
            f"{source.name}: holding out a fraction needs an image folder or an "
            "in-memory source (not tfds or TFRecord shards); give the split instead.")
    labels = np.asarray(source.labels)
    rng = np.random.default_rng(int(seed))
    held = []
    for c in range(source.num_classes):
        members = np.flatnonzero(labels == c)
        if len(members) < 2:
            raise ValueError(
                f"{source.name}: class {source.class_names[c]!r} has {len(members)} "
                "example(s); holding out a fraction needs at least 2 per class.")
        k = min(len(members) - 1, max(1, int(round(float(fraction) * len(members)))))
        held.append(rng.permutation(members)[:k])
    held = np.sort(np.concatenate(held))
    rest = np.setdiff1d(np.arange(len(labels)), held)
    return (source.subset(rest, f"{source.name}-train"),
            source.subset(held, f"{source.name}-heldout"))


def check_labels(labels, num_classes, name, hint=""):
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        bad = labels[(labels < 0) | (labels >= num_classes)]
        raise ValueError(
            f"{name}: labels must be in [0, {num_classes}); found "
            f"{bad.size} outside, e.g. {int(bad[0])}.{hint}"
        )


# Options each kind of source takes. ``manual_dir`` and ``download`` concern
# downloads (tfds; Fashion-MNIST's tfds fallback): a recipe sets them once for its
# default source and keeps them when its source is switched to files already on disk
# (``--set 'data.source="tfrecord:/data/train-*"'``), so other kinds ignore them.
_OPTIONS = {
    "fashion_mnist": {"download"},
    "fashion_mnist_boxes": {"download", "canvas", "scale", "seed"},
    "tfds": {"manual_dir", "download"},
    "tfrecord": {"num_classes", "class_names", "label_offset", "channels",
                 "check_records"},
    "folder": {"validate", "channels"},
}
_DOWNLOAD_OPTIONS = {"manual_dir", "download"}


def _options(kind, kwargs):
    """The ``kwargs`` that ``kind`` takes; download options of other kinds dropped,
    anything else unknown refused in one line."""
    known = _OPTIONS[kind]
    for key, value in kwargs.items():
        if key not in known and key not in _DOWNLOAD_OPTIONS:
            every = sorted(set().union(*_OPTIONS.values()))
            raise ValueError(
                f"Unknown source option for a {kind} source; options are {sorted(known)} "
                f"(of {every}). Received: {key}={value!r}")
    return {k: v for k, v in kwargs.items() if k in known}


def folder_split(spec, split):
    """The folder an image-folder ``spec`` reads ``split`` from, checked without
    reading an image (a missing split folder of a folder of splits is a ValueError
    naming it); None when ``spec`` is not an image folder. Two splits that resolve
    to the same folder (a folder of class folders) are the same images."""
    if not isinstance(spec, (str, os.PathLike)):
        return None
    spec = os.path.expanduser(os.fspath(spec))
    if spec == "fashion_mnist" or spec.startswith(("tfds:", "tfrecord:")) \
            or not os.path.isdir(spec):
        return None
    from kerascnn.data._folder import resolve_split

    return resolve_split(spec, split)


def check_folder_splits(spec, train, others, hint="") -> None:
    """For an image-folder ``spec``, without reading an image: ValueError (one line)
    when a split folder is missing (:func:`folder_split`), or when a split of
    ``others`` would be the ``train`` images themselves (a folder of class folders
    is one split). ``hint``: what else the caller offers, appended to the message."""
    train_dir = folder_split(spec, train)
    if train_dir is None:
        return
    for split in others:
        if folder_split(spec, split) == train_dir:
            raise ValueError(
                f"The image folder {spec} has no split folders (its sub-folders are the "
                f"classes), so its {split!r} split would be the training images "
                f"themselves; put the splits in {os.path.join(spec, train)}/ and "
                f"{os.path.join(spec, split)}/{hint}")


def load_source(spec, split="train", *, data_dir=None, **kwargs) -> Source:
    """Loads a labelled image source.

    Args:
      spec: ``"fashion_mnist"``, ``"fashion_mnist_boxes"``, ``"tfds:<name>"`` (e.g. ``"tfds:cifar10"``,
        ``"tfds:imagenet2012"``), a directory path (image folder, one sub-folder
        per class), or ``"tfrecord:<glob>"`` (ImageNet-style shards; ``{split}`` in
        the glob is replaced by ``split``: ``"tfrecord:/data/{split}-*"``).
      split: ``"train"``, ``"test"``, ``"validation"``, or any tfds split string.
        For an image folder the split is the sub-folder ``<dir>/<split>``; a folder
        that has split folders (``train/``, ``val/``, ``test/``...) but not this one
        is refused (ValueError naming the missing folder; no other split stands in
        for it); a folder without split folders is its class folders and is the
        split itself (:func:`folder_split`).
      data_dir: where the data lives (Fashion-MNIST IDX folder, tfds data dir).
      **kwargs: per-kind options: ``manual_dir``, ``download`` (tfds;
        ``download`` also Fashion-MNIST's tfds fallback; both are ignored by image
        folders and TFRecords, so a recipe's ``manual_dir`` survives a change of
        source); ``validate`` (image folder: ``"header"``, ``"decode"`` or
        ``False``); ``num_classes``, ``class_names``, ``label_offset`` (TFRecord);
        ``channels`` (image folder, TFRecord); ``canvas``, ``scale``, ``seed``
        (``fashion_mnist_boxes``). Any other name is an error.
    """
    if not isinstance(spec, (str, os.PathLike)):
        raise ValueError(f"`spec` must be a string or a path. Received: spec={spec!r}")
    spec = os.path.expanduser(os.fspath(spec))
    if data_dir:
        data_dir = os.path.expanduser(os.fspath(data_dir))
    if spec == "fashion_mnist":
        from kerascnn.data import _fashion_mnist

        return _fashion_mnist.load(split, data_dir=data_dir,
                                   **_options("fashion_mnist", kwargs))
    if spec == "fashion_mnist_boxes":
        from kerascnn.data import _boxes

        return _boxes.load(split, data_dir=data_dir, **_options("fashion_mnist_boxes", kwargs))
    if spec.startswith("tfds:"):
        from kerascnn.data import _tfds

        return _tfds.load(spec[len("tfds:"):], split, data_dir=data_dir,
                          **_options("tfds", kwargs))
    if spec.startswith("tfrecord:"):
        from kerascnn.data import _tfrecord

        # ``{split}`` in the glob names the split's shards (tfrecord:/data/{split}-*)
        pattern = spec[len("tfrecord:"):].replace("{split}", str(split))
        return _tfrecord.load(pattern, **_options("tfrecord", kwargs))
    if os.path.isdir(spec):
        from kerascnn.data import _folder

        return _folder.load(spec, split, **_options("folder", kwargs))
    if os.path.exists(spec):
        raise ValueError(
            f"An image-folder source must be a directory. Received: spec={spec!r}"
        )
    raise ValueError(
        "`spec` must be 'fashion_mnist', 'fashion_mnist_boxes', 'tfds:<name>', 'tfrecord:<glob>' or an "
        f"existing image folder; no such path. Received: spec={spec!r}"
    )
