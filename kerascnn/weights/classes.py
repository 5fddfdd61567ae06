"""The 1000 ILSVRC-2012 classes and ``decode_predictions``.

``imagenet_class_index.json`` (package data) is keras.applications' class index,
byte for byte: ``{"0": ["n01440764", "tench"], ...}``, class ``i`` in the standard
order (the WordNet ids sorted, as the ILSVRC-2012 devkit's training folders and
tensorflow_datasets' ``imagenet2012/labels.txt`` list them). Keras downloads it from
``https://storage.googleapis.com/download.tensorflow.org/data/imagenet_class_index.json``
and checks md5 ``c2c37ea517e94d9795004a39431a14cb`` (``keras/src/applications/
imagenet_utils.py``); the copy here has that md5 (taken from a repository that ships
keras' file, re-serialised with ``json.dumps`` to keras' exact bytes), so it is shipped
rather than downloaded. Every publisher of our weight sets (keras.applications,
torchvision, BVLC) orders its 1000 outputs this way.
"""

from __future__ import annotations

import functools
import json
import os

import numpy as np

CLASS_INDEX_FILE = os.path.join(os.path.dirname(__file__), "imagenet_class_index.json")


@functools.lru_cache(maxsize=1)
def imagenet_classes() -> tuple:
    """``((wnid, name), ...)`` of the 1000 classes, in class-index order."""
    with open(CLASS_INDEX_FILE) as f:
        index = json.load(f)
    return tuple((index[str(i)][0], index[str(i)][1]) for i in range(len(index)))


def decode_predictions(probs, top=5):
    """The ``top`` classes of each row of ``probs`` (a batch of 1000 scores), as
    keras.applications' ``decode_predictions``: a list per row of
    ``(wnid, name, score)``, highest score first."""
    import keras

    probs = np.asarray(keras.ops.convert_to_numpy(probs))
    classes = imagenet_classes()
    if probs.ndim != 2 or probs.shape[1] != len(classes):
        raise ValueError(
            f"`decode_predictions` expects a batch of {len(classes)} ImageNet scores, "
            f"shape (samples, {len(classes)}). Received: shape={probs.shape}"
        )
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or not 1 <= top <= len(classes):
        raise ValueError(f"`top` must be an int in [1, {len(classes)}]. Received: top={top!r}")
    results = []
    for row in probs:
        order = np.argsort(-row, kind="stable")[:top]
        results.append([(*classes[i], float(row[i])) for i in order])
    return results
