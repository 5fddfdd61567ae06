"""Load a network to evaluate from a ``.keras`` file, a weights checkpoint or a SavedModel.

- ``*.keras``: ``keras.saving.load_model`` (kerascnn's layers are registered on import).
- ``*.weights.h5`` / ``*.h5`` or a TensorFlow checkpoint (``ckpt-N`` prefix, its
  ``.index`` file, or a folder holding one): the architecture is built from the registry
  (``arch=``, e.g. ``"resnet20"``, with ``classes=``) and the weights loaded into it.
- a SavedModel folder (``saved_model.pb``, e.g. ``saved_models/<name>/<version>``): its
  ``serving_images`` signature (float image batches -> probabilities) is wrapped as a
  callable model. That signature runs the export's own ``eval_preprocess`` (pad, centre
  crop to the input size, mean), which leaves a crop of the input size unchanged; so a
  SavedModel member gets ``mean=False`` and the export's ``pad``, and an export that
  resizes inside the signature is refused. Crop protocols only (the signature fixes the
  input size, so no dense evaluation).
"""

from __future__ import annotations

import glob
import json
import os

import keras
import tensorflow as tf

__all__ = ["load_for_evaluation", "SavedModelNet"]


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
        size = self.preprocessing.get("image_size")
        if size:
            self.input_shape = (None, int(size[0]), int(size[1]), self.input_shape[-1])
            resize = self.preprocessing.get("resize")
            if resize is not None and int(resize) != min(int(v) for v in size):
                raise ValueError(
                    f"The export at {self.path} resizes its input to {resize} inside "
                    "'serving_images', so crops cannot be fed to it; evaluate the .keras model "
                    f"instead (or export with resize=None). Received: resize={resize}"
                )
        outputs = self._fn.structured_outputs
        keys = [k for k in ("probabilities", "probs", "predictions", "scores") if k in outputs]
        if not keys:
            keys = [k for k, v in outputs.items() if v.dtype.is_floating and v.shape.rank == 2]
        if not keys:
            raise ValueError(f"The {signature!r} signature of {self.path} returns no probabilities: {list(outputs)}")
        self._out = keys[0]
        self.layers = []

    def __call__(self, images, training=False):
        images = tf.cast(tf.clip_by_value(images, 0, 255), self._dtype) if self._dtype == tf.uint8 else tf.cast(images, self._dtype)
        return self._fn(**{self._arg: images})[self._out]


def _import_zoo():
    for mod in ("kerascnn.layers", "kerascnn.applications"):
        try:
            __import__(mod)
        except ImportError:
            pass


def _build(arch, classes, path):
    if not arch:
        raise ValueError(f"Loading weights from {path} needs the architecture: pass `arch` (e.g. 'resnet20'). Received: arch={arch!r}")
    from kerascnn.applications import get_model

    kwargs = {} if classes is None else {"classes": int(classes)}
    return get_model(arch, **kwargs)


def load_for_evaluation(path, *, arch=None, classes=None):
    """Load the network at ``path``; see the module docstring for the formats."""
    path = os.fspath(path)
    _import_zoo()
    if os.path.isdir(path) and os.path.exists(os.path.join(path, "saved_model.pb")):
        return SavedModelNet(path)
    if path.endswith(".keras"):
        if not os.path.exists(path):
            raise ValueError(f"No such model file. Received: model={path!r}")
        return keras.saving.load_model(path, compile=False)
    if path.endswith(".h5"):
        if not os.path.exists(path):
            raise ValueError(f"No such weights file. Received: model={path!r}")
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
    raise ValueError(
        "`model` must be a .keras file, a .weights.h5 file, a TensorFlow checkpoint or a "
        f"SavedModel folder. Received: model={path!r}"
    )
