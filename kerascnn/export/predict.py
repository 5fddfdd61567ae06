"""Top-5 predictions for image files, from an export or a ``.keras`` file.

An export (``saved_models/<name>/<version>``, or ``saved_models/<name>`` for its
newest version) is run through its ``serving_default`` signature, exactly what TF
Serving does. A ``.keras`` file is run with the preprocessing stored by
``kerascnn train`` in ``preprocessing.json`` next to it (or in the folder above, the
run directory); without one, images are centre-cropped/padded to the model's input
size with no mean subtracted and classes are shown by id.
"""

from __future__ import annotations

import json
import os

import numpy as np

from kerascnn.export.saved_model import Preprocessing
from kerascnn.export.serving_config import versions

__all__ = ["find_preprocessing", "predict_files", "resolve_export"]

PREPROCESSING_FILE = "preprocessing.json"


def resolve_export(path: str) -> str:
    """``<name>/<version>`` as given, or the newest version under ``<name>``."""
    if os.path.exists(os.path.join(path, "saved_model.pb")):
        return path
    found = versions(path)
    if found:
        return os.path.join(path, str(found[-1]))
    raise ValueError("Expected a SavedModel folder (with saved_model.pb), a folder of "
                     f"numbered versions, or a .keras file. Received: model={path!r}")


def write_preprocessing(folder, preprocessing: Preprocessing, class_names) -> str:
    from kerascnn.training.callbacks import atomic_write_text

    path = os.path.join(folder, PREPROCESSING_FILE)
    atomic_write_text(path, json.dumps({**preprocessing.to_json(),
                                        "class_names": list(class_names)}))
    return path


def find_preprocessing(model_path: str):
    """``(Preprocessing, class_names)`` from a ``preprocessing.json`` next to
    ``model_path`` or one folder up; ``(None, None)`` when there is none."""
    folder = os.path.dirname(os.path.abspath(model_path))
    for candidate in (folder, os.path.dirname(folder)):
        path = os.path.join(candidate, PREPROCESSING_FILE)
        if os.path.exists(path):
            with open(path) as f:
                d = json.load(f)
            return Preprocessing.from_json(d), d.get("class_names")
    return None, None


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def predict_files(model_path: str, images, k: int = 5):
    """``[(image, [(class_id, name, probability), ...]), ...]`` for image files."""
    import tensorflow as tf

    if model_path.endswith(".keras"):
        import keras

        import kerascnn.layers  # noqa: F401  (custom layers)
        from kerascnn.data import decode_image, eval_preprocess

        model = keras.saving.load_model(model_path, compile=False)
        prep, names = find_preprocessing(model_path)
        prep = prep or Preprocessing.for_model(model)
        mean = False if prep.mean is None else prep.mean
        batch = tf.stack([
            eval_preprocess(decode_image(_read(p), channels=prep.channels),
                            image_size=tuple(prep.image_size), resize=prep.resize,
                            mean=mean, pad=prep.pad) for p in images])
        probs = np.asarray(model.predict(batch, verbose=0), np.float32)
        names = names or [str(i) for i in range(probs.shape[-1])]
    else:
        loaded = tf.saved_model.load(resolve_export(model_path))
        out = loaded.signatures["serving_default"](
            image_bytes=tf.constant([_read(p) for p in images]))
        probs = out["probabilities"].numpy()
        names = None
        ids_all = out["top5_classes"].numpy()
        names_all = out["top5_names"].numpy()
    results = []
    for i, path in enumerate(images):
        if names is None:
            top = [(int(c), n.decode(), float(probs[i, c]))
                   for c, n in zip(ids_all[i][:k], names_all[i][:k])]
        else:
            order = np.argsort(-probs[i], kind="stable")[:k]
            top = [(int(c), str(names[c]), float(probs[i, c])) for c in order]
        results.append((path, top))
    return results
