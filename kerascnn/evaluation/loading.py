"""Load a network to evaluate from a ``.keras`` file, a weights checkpoint or a SavedModel.

- ``*.keras``: :func:`load_keras_model` (``keras.saving.load_model`` in safe mode,
  kerascnn's layers registered), whose errors name the file and what to do (a missing
  file, a truncated one, something that is not a ``.keras`` archive); ``export`` and
  ``predict`` load ``.keras`` files through it too. With ``arch=`` the registry name
  must describe the file (:func:`check_arch`): it labels the report with the paper's
  figures.
- ``*.weights.h5`` / ``*.h5`` or a TensorFlow checkpoint (``ckpt-N`` prefix, its
  ``.index`` file, or a folder holding one): the architecture is built from the registry
  (``arch=``, e.g. ``"resnet20"``, with ``classes=``) and the weights loaded into it.
- a SavedModel folder (``saved_model.pb``, e.g. ``saved_models/<name>/<version>``): its
  ``serving_images`` signature (float image batches -> probabilities) is wrapped as a
  callable model. That signature runs the export's own preprocessing (the ``center``
  view of :class:`kerascnn.data.preprocessing.Preprocessing`: shorter side to
  ``resize``, ``pad``, centre crop, mean), so the evaluation feeds it crops that this
  preprocessing leaves unchanged apart from the mean: crops of the input size when the
  export does not resize (or resizes to the input size, the default of
  ``kerascnn export``), crops of the resize when it resizes then pads up to the input
  size (Fashion-MNIST: 28, padded by 2 to 32); any other export is refused. Crop
  protocols only (the signature fixes the input size, so no dense evaluation).
"""

from __future__ import annotations

import glob
import json
import os
import zipfile

import keras
import tensorflow as tf

import kerascnn.applications  # noqa: F401  (registers the zoo's custom objects)
import kerascnn.layers  # noqa: F401  (registers kerascnn's layers for .keras files)

__all__ = ["SavedModelNet", "check_arch", "load_for_evaluation", "load_keras_model"]


class SavedModelNet:
    """A SavedModel's ``serving_images`` signature as ``images -> probabilities``."""

    def __init__(self, path, signature="serving_images"):
        self.path = os.fspath(path)
        self._loaded = tf.saved_model.load(self.path)
        if signature not in self._loaded.signatures:
            raise ValueError(
                f"The SavedModel at {self.path} has no {signature!r} signature (it has "
                f"{sorted(self._loaded.signatures)}). Received: signature={signature!r}"
            )
        self._fn = self._loaded.signatures[signature]
        (self._arg, spec), = self._fn.structured_input_signature[1].items()
        self._dtype = spec.dtype
        self.input_shape = tuple(spec.shape.as_list())
        self.name = os.path.basename(os.path.dirname(self.path.rstrip("/"))) or "saved_model"
        self.preprocessing = {}
        meta = os.path.join(self.path, "assets.extra", "kerascnn.json")
        if os.path.exists(meta):
            with open(meta) as f:
                info = json.load(f)
            self.name = info.get("name", self.name)
            self.preprocessing = info.get("preprocessing") or {}
        # What the evaluation adds around each image before cutting its views: the
        # export's pad (the signature pads again and crops the same centre).
        self.pad = int(self.preprocessing.get("pad") or 0)
        size = self.preprocessing.get("image_size")
        if size:
            h, w = int(size[0]), int(size[1])
            resize = self.preprocessing.get("resize")
            if resize is None or (int(resize) == min(h, w) and self.pad == 0):
                feed = (h, w)  # the signature leaves a crop of the input size unchanged
            elif h == w and int(resize) + 2 * self.pad == h:
                feed = (int(resize),) * 2  # resize (a no-op on it), pad, crop: unchanged
                self.pad = 0
            else:
                raise ValueError(
                    f"The export at {self.path} resizes its input to {resize} inside "
                    "'serving_images', so crops cannot be fed to it; evaluate the .keras "
                    f"model instead. Received: resize={resize}, pad={self.pad}, image_size={size}"
                )
            self.input_shape = (None, *feed, self.input_shape[-1])
            self._resize = None if resize is None else int(resize)
        outputs = self._fn.structured_outputs
        keys = [k for k in ("probabilities", "probs", "predictions", "scores") if k in outputs]
        if not keys:
            keys = [k for k, v in outputs.items() if v.dtype.is_floating and v.shape.rank == 2]
        if not keys:
            raise ValueError(f"The {signature!r} signature of {self.path} returns no probabilities: {list(outputs)}")
        self._out = keys[0]
        self.layers = []

    def evaluation_preprocessing(self, crop_size=None):
        """The :class:`~kerascnn.data.preprocessing.Preprocessing` the evaluation applies
        before this signature: views of the size it takes (``input_shape``, or
        ``crop_size`` for a SavedModel that does not say), the export's resize, the pad
        it expects around an image, no mean (it subtracts its own)."""
        from kerascnn.data.preprocessing import Preprocessing

        size = self.input_shape[1:3]
        if None in size:
            if not crop_size:
                raise ValueError(f"The SavedModel at {self.path} does not say its input "
                                 "size: pass --crop-size. Received: crop_size=None")
            size = crop_size
        return Preprocessing(size, int(self.input_shape[-1]),
                             resize=getattr(self, "_resize", None), pad=self.pad)

    def __call__(self, images, training=False):
        images = tf.cast(tf.clip_by_value(images, 0, 255), self._dtype) if self._dtype == tf.uint8 else tf.cast(images, self._dtype)
        return self._fn(**{self._arg: images})[self._out]


def _build(arch, classes, path):
    if not arch:
        raise ValueError(f"Loading weights from {path} needs the architecture: pass `arch` (e.g. 'resnet20'). Received: arch={arch!r}")
    from kerascnn.applications import get_model

    kwargs = {} if classes is None else {"classes": int(classes)}
    return get_model(arch, **kwargs)


def load_for_evaluation(path, *, arch=None, classes=None):
    """Load the network at ``path``; see the module docstring for the formats."""
    path = os.fspath(path)
    if os.path.isdir(path) and os.path.exists(os.path.join(path, "saved_model.pb")):
        return SavedModelNet(path)
    if path.endswith(".keras"):
        model = load_keras_model(path)
        if arch:
            check_arch(model, arch, path)
        return model
    if path.endswith(".h5"):
        if not os.path.exists(path):
            raise ValueError(f"{path}: no such weights file. Received: model={path!r}")
        model = _build(arch, classes, path)
        model.load_weights(path)
        return model
    prefix = path[: -len(".index")] if path.endswith(".index") else path
    if os.path.isdir(prefix):
        latest = tf.train.latest_checkpoint(prefix)
        if latest is None:
            found = sorted(glob.glob(os.path.join(prefix, "*.index")))
            latest = found[-1][: -len(".index")] if found else None
        prefix = latest
    if prefix and os.path.exists(prefix + ".index"):
        model = _build(arch, classes, path)
        tf.train.Checkpoint(model=model).read(prefix).expect_partial()
        return model
    if not os.path.exists(path) and not glob.glob(prefix + "*"):
        raise ValueError(f"{path}: no such file or folder. Received: model={path!r}")
    raise ValueError(
        "`model` must be a .keras file, a .weights.h5 file, a TensorFlow checkpoint or a "
        f"SavedModel folder. Received: model={path!r}"
    )


def load_keras_model(path):
    """``keras.saving.load_model(path, compile=False)`` (safe mode: no code from the
    file runs) with one-line errors that name the file: missing, a folder, truncated
    or not a ``.keras`` archive (Keras says "File not found" for all of those), or an
    archive Keras cannot rebuild. The model carries the preprocessing the file stores
    (:mod:`kerascnn.data.carried`), if any."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ValueError(f"{path}: no such model file; give the path of a .keras file "
                         "(e.g. runs/<recipe>/checkpoints/best.keras).")
    if os.path.isdir(path):
        raise ValueError(f"{path} is a folder, not a .keras file.")
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path} is not a complete .keras file (not a zip archive: truncated while "
            "written or copied, or another format); use another checkpoint, e.g. "
            "checkpoints/last.keras, or copy it again.")
    from kerascnn.data.carried import attach, read_stored

    prep, names = read_stored(path)  # a bad entry is refused before Keras reads the file
    try:
        model = keras.saving.load_model(path, compile=False)
    except (ValueError, TypeError, KeyError, OSError, zipfile.BadZipFile) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"{path}: Keras cannot load this model ({first}).") from err
    return model if prep is None else attach(model, prep, names, where=path)


def _name_of(model):
    from kerascnn.applications.registry import list_models

    name = str(getattr(model, "name", "")).lower().replace("-", "_")
    return name if name in list_models() else None


def check_arch(model, arch, path="the model"):
    """Refuses a registry name ``arch`` that contradicts a loaded model: the model's
    own name when it is a registry name (the builders' default), else the architecture
    itself (``arch`` built at the model's input shape and classes must have the same
    trainable weight shapes). Returns the registry name."""
    from kerascnn.applications.registry import get_model, get_model_info

    info = get_model_info(arch)  # ValueError listing close names for an unknown arch
    own = _name_of(model)
    if own is not None:
        if own != info.name:
            raise ValueError(f"--arch {arch} contradicts {path}, a {own} model: leave "
                             f"--arch out or give --arch {own}. Received: arch={arch!r}")
        return info.name
    shape = tuple(model.inputs[0].shape[1:])
    classes = int(model.outputs[0].shape[-1])
    try:
        ref = get_model(info.name, input_shape=shape, classes=classes)
        same = [tuple(w.shape) for w in ref.trainable_weights] == \
            [tuple(w.shape) for w in model.trainable_weights]
    except ValueError:
        same = False
    if not same:
        raise ValueError(f"--arch {arch} contradicts {path}: its layers are not a "
                         f"{info.name} ({info.family}) at input {shape} with {classes} "
                         f"classes; leave --arch out. Received: arch={arch!r}")
    return info.name
