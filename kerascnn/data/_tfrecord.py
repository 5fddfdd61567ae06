"""ImageNet-style TFRecord shards (``"tfrecord:<glob>"``).

Each record is a ``tf.train.Example`` with ``image/encoded`` (bytes) and
``image/class/label`` (int64), as written by TF models' ``build_imagenet_data.py``
and most conversion scripts. Those scripts write labels **1..1000** (0 is kept for
"background"); pass ``label_offset=-1`` for them. The default is 0 (labels already in
``[0, classes)``). The first records are checked at load time so a wrong offset is an
error before training, with a hint; every record is checked again as it is read.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from kerascnn.data.sources import Source, check_labels
from kerascnn.data._graph import plain

_FEATURES = {
    "image/encoded": tf.io.FixedLenFeature([], tf.string),
    "image/class/label": tf.io.FixedLenFeature([], tf.int64),
}


def load(pattern, num_classes=None, class_names=None, label_offset=0, channels=3,
         check_records=256):
    if not pattern:
        raise ValueError(
            "`spec` must be 'tfrecord:<glob>'. Received: spec='tfrecord:'"
        )
    files = sorted(tf.io.gfile.glob(pattern))
    if not files:
        raise ValueError(f"No TFRecord files match the pattern. Received: {pattern!r}")
    if class_names is None:
        class_names = [str(i) for i in range(num_classes or 1000)]
    elif num_classes is not None and num_classes != len(class_names):
        raise ValueError(
            f"{len(class_names)} class names but num_classes={num_classes}. "
            f"Received: num_classes={num_classes}"
        )
    num_classes = len(class_names)
    if not isinstance(label_offset, (int, np.integer)):
        raise ValueError(
            f"`label_offset` must be an int. Received: label_offset={label_offset!r}"
        )

    def parse(record):
        ex = tf.io.parse_single_example(record, _FEATURES)
        label = ex["image/class/label"] + label_offset
        tf.debugging.assert_less(label, tf.constant(num_classes, tf.int64),
                                 message="TFRecord label >= num_classes")
        tf.debugging.assert_non_negative(label, message="TFRecord label < 0")
        return ex["image/encoded"], label

    first = tf.data.TFRecordDataset(files[:1]).take(check_records)
    first = first.map(plain(lambda r: tf.io.parse_single_example(r, _FEATURES)))
    labels = np.array([int(e["image/class/label"]) for e in first.as_numpy_iterator()])
    hint = (
        " Labels from build_imagenet_data.py-style scripts are 1-based: pass "
        "label_offset=-1." if labels.size and labels.min() + label_offset > 0 else ""
    )
    check_labels(labels + label_offset, num_classes, f"tfrecord:{pattern}", hint)

    def from_files(subset):
        subset = list(subset)
        ds = tf.data.Dataset.from_tensor_slices(subset)
        ds = ds.interleave(
            tf.data.TFRecordDataset,
            cycle_length=min(16, len(subset)),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        return ds.map(plain(parse), num_parallel_calls=tf.data.AUTOTUNE)

    return Source(
        dataset=from_files(files),
        encoded=True,
        class_names=list(class_names),
        num_examples=None,
        channels=channels,
        name="tfrecord",
        # the pipelines shard by file when there are enough files
        files=tuple(files),
        read_files=from_files,
    )
