"""Top-5 predictions for image files, from an export or a ``.keras`` file.

An export (``saved_models/<name>/<version>``, or ``saved_models/<name>`` for its
newest version) is run through its ``serving_default`` signature, exactly what TF
Serving does. A ``.keras`` file is run with its own preprocessing and class names
(:func:`kerascnn.data.carried.resolve`: stored in the file, else its training run's
``preprocessing.json``, else the one fallback: shorter side to the input size, centre
crop, no mean, classes shown by id -- said on stderr).

:func:`predict_pretrained` runs a registry network built with pretrained weights
(``--arch resnet50 --weights imagenet``) with the set's preprocessing and the
ImageNet class names (:mod:`kerascnn.applications.pretrained`).

Each file is read and decoded on its own first: one that cannot be (missing, empty,
not an image) is reported by name and the others are still answered.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from kerascnn.export.serving_config import versions

__all__ = ["Prediction", "predict_files", "predict_pretrained", "resolve_export"]


@dataclasses.dataclass
class Prediction:
    """The answer for one file: ``top`` ``[(class_id, name, probability), ...]``, or
    ``error`` (a one-line message naming the file) when it could not be read."""

    path: str
    top: list
    error: str | None = None


def resolve_export(path: str) -> str:
    """``<name>/<version>`` as given, or the newest version under ``<name>``."""
    if os.path.exists(os.path.join(path, "saved_model.pb")):
        return path
    found = versions(path)
    if found:
        return os.path.join(path, str(found[-1]))
    if not os.path.exists(path):
        raise ValueError(f"{path}: no such export or model file. Received: model={path!r}")
    raise ValueError("Expected a SavedModel folder (with saved_model.pb), a folder of "
                     f"numbered versions, or a .keras file. Received: model={path!r}")


def _load_image(path, channels):
    """``(encoded bytes, decoded uint8 image)``; ValueError naming the file."""
    import tensorflow as tf

    from kerascnn.data.decode import decode_image

    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as err:
        raise ValueError(f"{path}: cannot read it ({err.strerror}).") from None
    if not data:
        raise ValueError(f"{path}: the file is empty, not an image.")
    try:
        return data, decode_image(tf.constant(data), channels=channels)
    except (tf.errors.InvalidArgumentError, ValueError):
        raise ValueError(f"{path}: not a JPEG, PNG, GIF or BMP image (or a damaged one)."
                         ) from None


def predict_files(model_path: str, images, k: int = 5, *, adjust=None) -> list[Prediction]:
    """One :class:`Prediction` per file of ``images``, in order. ``adjust``: for a
    ``.keras`` file, ``Preprocessing -> Preprocessing`` applied to its own (``--mean``)."""
    import tensorflow as tf

    images = [os.fspath(p) for p in images]
    if model_path.endswith(".keras"):
        from kerascnn.data.carried import resolve
        from kerascnn.evaluation.loading import load_keras_model

        model = load_keras_model(model_path)
        prep, names, _ = resolve(model_path, model=model, prog="kerascnn predict")
        prep = adjust(prep) if adjust is not None else prep
        channels = prep.channels
    else:
        loaded = tf.saved_model.load(resolve_export(model_path))
        fn = loaded.signatures["serving_default"]
        channels = 3  # only to check that a file decodes; the export decodes it itself

    results, good, blobs, views = [], [], [], []
    for path in images:
        try:
            data, image = _load_image(path, channels)
        except ValueError as err:
            results.append(Prediction(path, [], str(err)))
            continue
        results.append(Prediction(path, []))
        good.append(results[-1])
        blobs.append(data)
        if model_path.endswith(".keras"):
            views.append(prep(image))
    if not good:
        return results
    if model_path.endswith(".keras"):
        probs = np.asarray(model.predict(tf.stack(views), verbose=0), np.float32)
        names = names or [str(i) for i in range(probs.shape[-1])]
        for i, pred in enumerate(good):
            order = np.argsort(-probs[i], kind="stable")[:k]
            pred.top = [(int(c), str(names[c]), float(probs[i, c])) for c in order]
    else:
        out = fn(image_bytes=tf.constant(blobs))
        probs = out["probabilities"].numpy()
        ids_all, names_all = out["top5_classes"].numpy(), out["top5_names"].numpy()
        for i, pred in enumerate(good):
            pred.top = [(int(c), n.decode(), float(probs[i, c]))
                        for c, n in zip(ids_all[i][:k], names_all[i][:k])]
    return results



def predict_pretrained(arch: str, weights, images, k: int = 5) -> list[Prediction]:
    """One :class:`Prediction` per file of ``images``: the registry network ``arch``
    built with ``weights`` (a set name or a weights file), the set's preprocessing and
    the ImageNet class names."""
    import tensorflow as tf

    from kerascnn.applications.pretrained import load_pretrained

    net = load_pretrained(arch, weights)
    results, good, views = [], [], []
    for path in (os.fspath(p) for p in images):
        try:
            _, image = _load_image(path, 3)
        except ValueError as err:
            results.append(Prediction(path, [], str(err)))
            continue
        results.append(Prediction(path, []))
        good.append(results[-1])
        views.append(net.preprocessing(image))
    if good:
        probs = np.asarray(net.model.predict(tf.stack(views), verbose=0), np.float32)
        for i, pred in enumerate(good):
            order = np.argsort(-probs[i], kind="stable")[:k]
            pred.top = [(int(c), net.class_names[c], float(probs[i, c])) for c in order]
    return results
