"""The preprocessing a model carries: stored in its ``.keras`` file, found by one resolver.

A network is only usable with the preprocessing it was trained with (torchvision's
weights enums carry ``transforms()``, timm's ``pretrained_cfg``), so kerascnn keeps the
:class:`~kerascnn.data.preprocessing.Preprocessing` and the class names WITH the model:

- in memory, as an attribute (:func:`attach`, :func:`carried`): a model built with
  ``weights=<a set>`` carries its set's, ``kerascnn train`` attaches its run's, a
  model read by ``load_keras_model`` what its file stores;
- in the ``.keras`` file, as the zip entry ``kerascnn/preprocessing.json``
  (:data:`MODEL_ENTRY`, the JSON form of ``preprocessing.json`` with the class names)
  written by :func:`save_model`, the one writer of kerascnn's ``.keras`` files
  (training's ``last.keras`` / ``best.keras``, fine-tuning's, the JAX export's
  hand-over): the model saved under a temporary name, the entry appended, then renamed
  (:func:`kerascnn._io.atomic_path`). Keras 3 reads only ``config.json``,
  ``metadata.json``, ``model.weights.*`` and ``assets/`` of the archive, so
  ``keras.saving.load_model`` (safe mode) loads such a file unchanged, in any
  process; :func:`read_stored` reads the entry back with :mod:`zipfile`, its size
  bounded (:data:`MAX_ENTRY_BYTES`). Keras has no native slot for this: a model's
  ``get_config`` holds its architecture, ``assets/`` belong to layers, and a
  preprocessing layer inside the network would change the network;
- in an export, as ``assets.extra/kerascnn.json`` and inside its serving signatures
  (:mod:`kerascnn.export.saved_model`).

:func:`resolve` is the one answer to "which preprocessing does this model need",
called by ``predict``, ``evaluate``, ``export``, ``explain`` and fine-tuning from a
``.keras`` file. Its order:

1. the preprocessing the model carries: the attribute of a model object, else the
   entry stored in the ``.keras`` file;
2. else (a ``.keras`` written before kerascnn stored it) the training run's
   ``preprocessing.json`` next to the file or one folder up
   (:meth:`Preprocessing.find <kerascnn.data.preprocessing.Preprocessing.find>`);
3. else (a foreign model) ONE fallback, :func:`fallback`: the shorter side resized to
   the network's input size, the centre cropped, no mean subtracted, classes named by
   number -- said in one line on stderr that names the file and how to override it
   (``--mean``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import typing
import zipfile

from kerascnn.data.preprocessing import Preprocessing

__all__ = ["MAX_ENTRY_BYTES", "MODEL_ENTRY", "Resolved", "attach", "carried", "fallback",
           "parse_mean", "read_stored", "resolve", "save_model"]

MODEL_ENTRY = "kerascnn/preprocessing.json"
# A per-pixel mean of 512x512x3 as JSON text is ~15 MB; anything larger is not ours.
MAX_ENTRY_BYTES = 64 << 20
_ATTRIBUTE = "_kerascnn_carried"
OVERRIDE = "give --mean imagenet|none|R,G,B|file.npy to change the mean"


@dataclasses.dataclass(frozen=True)
class _Carried:
    preprocessing: Preprocessing
    class_names: tuple | None
    where: str


class Resolved(typing.NamedTuple):
    """What :func:`resolve` found: ``preprocessing``, ``class_names`` (None: by number)
    and ``where`` (the file or object it came from, or ``"fallback"``)."""

    preprocessing: Preprocessing
    class_names: list | None
    where: str


def _names(class_names):
    return None if class_names is None else tuple(str(c) for c in class_names)


def attach(model, preprocessing, class_names=None, where="the model"):
    """Makes ``model`` carry ``preprocessing`` (and ``class_names``); returns ``model``.
    Set outside Keras' attribute tracking: it is not a layer, a weight or config."""
    if not isinstance(preprocessing, Preprocessing):
        raise ValueError("`preprocessing` must be a kerascnn Preprocessing. "
                         f"Received: preprocessing={preprocessing!r}")
    object.__setattr__(model, _ATTRIBUTE, _Carried(preprocessing, _names(class_names), where))
    return model


def carried(model):
    """``(Preprocessing, class_names, where)`` the model object carries, or
    ``(None, None, None)``."""
    c = getattr(model, _ATTRIBUTE, None)
    if not isinstance(c, _Carried):
        return None, None, None
    return c.preprocessing, None if c.class_names is None else list(c.class_names), c.where


def save_model(model, path, preprocessing=None, class_names=None):
    """Writes ``model`` to the ``.keras`` file ``path`` atomically, with its
    preprocessing stored as the entry :data:`MODEL_ENTRY` (``preprocessing`` /
    ``class_names`` given, else what the model carries; neither: a plain ``.keras``)."""
    from kerascnn._io import atomic_path

    if preprocessing is None:
        preprocessing, names, _ = carried(model)
        class_names = names if class_names is None else class_names
    with atomic_path(os.fspath(path), suffix=".keras") as tmp:
        model.save(tmp)
        if preprocessing is not None:
            doc = preprocessing.to_json()
            if class_names is not None:
                doc["class_names"] = [str(c) for c in class_names]
            with zipfile.ZipFile(tmp, "a") as zf:
                zf.writestr(MODEL_ENTRY, json.dumps(doc))
    return os.fspath(path)


def read_stored(path):
    """``(Preprocessing, class_names or None)`` stored in the ``.keras`` file at
    ``path``, or ``(None, None)`` when it stores none (or is not a zip archive)."""
    path = os.fspath(path)
    if not path.endswith(".keras") or not zipfile.is_zipfile(path):
        return None, None
    try:
        with zipfile.ZipFile(path) as zf:
            try:
                info = zf.getinfo(MODEL_ENTRY)
            except KeyError:
                return None, None
            if info.file_size > MAX_ENTRY_BYTES:
                raise ValueError(f"{path}: its {MODEL_ENTRY} is {info.file_size} bytes, more "
                                 f"than {MAX_ENTRY_BYTES}: not one kerascnn wrote.")
            with zf.open(info) as f:
                data = f.read(MAX_ENTRY_BYTES + 1)
    except (OSError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path}: cannot read its {MODEL_ENTRY} ({err}).") from None
    try:
        doc = json.loads(data)
    except ValueError:
        raise ValueError(f"{path}: its {MODEL_ENTRY} is not valid JSON.") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: its {MODEL_ENTRY} is not a preprocessing description.")
    names = doc.get("class_names")
    return Preprocessing.from_json(doc), None if names is None else [str(n) for n in names]


def fallback(model) -> Preprocessing:
    """The one preprocessing assumed for a model that carries none: the shorter side
    resized to the network's input size (the smaller of height and width), the centre
    cropped, no mean subtracted. ``model``: a Keras model, or its input shape
    ``(height, width, channels)``."""
    if isinstance(model, tuple):
        shape = (None, *model)
    else:
        shape = tuple(model.inputs[0].shape) if getattr(model, "inputs", None) else None
    if shape is None or len(shape) != 4 or None in shape[1:]:
        raise ValueError("The model does not take images of one size (batch, height, width, "
                         "channels); kerascnn serves image classifiers. Received: input "
                         f"shape={shape}")
    size = (int(shape[1]), int(shape[2]))
    return Preprocessing(size, int(shape[3]), resize=min(size))


def resolve(model_or_path, *, model=None, prog="kerascnn", override=OVERRIDE) -> Resolved:
    """The preprocessing of a model: ``model_or_path`` a model object, or the path of
    its ``.keras`` (or weights) file; then ``model`` is the loaded model, or its input
    shape ``(height, width, channels)``, for the fallback.

    Order (see the module doc): what the model carries (its attribute, else the entry
    stored in its ``.keras`` file); else the training run's ``preprocessing.json``
    beside the file or one folder up (files written before kerascnn stored it); else
    :func:`fallback`, said in one line on stderr (``prog: <file>: ...``, naming what was
    assumed and ``override``, how to change it). Returns :class:`Resolved`
    ``(preprocessing, class_names, where)``."""
    path = None
    if isinstance(model_or_path, (str, os.PathLike)):
        path = os.fspath(model_or_path)
    else:
        model = model_or_path
    if model is not None and not isinstance(model, tuple):
        prep, names, where = carried(model)
        if prep is not None:
            return Resolved(prep, names, where)
    if path is not None:
        prep, names = read_stored(path)
        if prep is not None:
            return Resolved(prep, names, path)
        found = Preprocessing.locate(path)
        if found is not None:
            return Resolved(*Preprocessing.load(found), found)
    if model is None:
        raise ValueError(f"{path}: no preprocessing stored in it or beside it; load the "
                         "model and pass it as `model=` for the fallback.")
    prep = fallback(model)
    name = path or getattr(model, "name", None) or "the model"
    h, w = prep.image_size
    print(f"{prog}: {name} carries no preprocessing (not written by kerascnn) and no "
          f"preprocessing.json is beside it: assumed the shorter side resized to "
          f"{prep.resize}, the centre {h}x{w} cropped, no mean subtracted, classes by "
          f"number; {override}", file=sys.stderr)
    return Resolved(prep, None, "fallback")


def parse_mean(text):
    """``--mean``: ``imagenet`` (ImageNet's mean RGB), ``none`` (None: no
    subtraction), numbers ``R,G,B`` (or one for gray), or a ``.npy`` file (read
    without pickle) -> an array or None."""
    import numpy as np

    if text.lower() == "none":
        return None
    if text.lower() == "imagenet":
        from kerascnn.data.stats import IMAGENET_MEAN_RGB

        return np.asarray(IMAGENET_MEAN_RGB, np.float32)
    if text.endswith(".npy"):
        if not os.path.isfile(text):
            raise ValueError(f"{text}: no such mean file. Received: --mean {text}")
        return np.load(text)  # allow_pickle stays False: no code from the file runs
    try:
        return np.asarray([float(v) for v in text.split(",")], np.float32)
    except ValueError:
        raise ValueError("`--mean` must be 'imagenet', 'none', numbers R,G,B or a .npy "
                         f"file. Received: --mean {text}") from None
