"""Export a trained network as a SavedModel for TF Serving.

``export_model(model, name)`` writes ``saved_models/<name>/<version>/`` (the next
integer version unless one is given; an existing version is never overwritten),
atomically: the SavedModel is written to a hidden temporary folder next to it
(TF Serving only loads folders named by an integer) and renamed into place, then
``saved_models/models.config`` is rewritten to list every exported model.

The SavedModel holds the inference graph only, ``model(x, training=False)``: no
dropout, no auxiliary heads (GoogLeNet's ``aux_logits`` model returns its main head).
Its signatures (loadable with plain TensorFlow, no kerascnn):

- ``serving_default(image_bytes: string[None])``: encoded JPEG/PNG/GIF/BMP images,
  what TF Serving's REST API passes for ``{"instances": [{"b64": "..."}]}``;
  decoded with ``kerascnn.data.decode_image`` and preprocessed with
  ``kerascnn.data.eval_preprocess`` (the recipe's ``center`` view: resize, pad,
  centre crop, mean subtraction) inside the graph.
- ``serving_images(images: float32[None, None, None, C])``: decoded images on the
  0–255 scale (uint8 values; JSON numbers), the same preprocessing.

Both return ``probabilities`` (float32 ``[N, classes]``), ``top5_classes`` (int64
``[N, k]``), ``top5_names`` (string ``[N, k]``, the class names embedded as a
constant) and ``top5_probabilities`` (float32 ``[N, k]``), ``k = min(5, classes)``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile

import numpy as np

from kerascnn.export import serving_config

__all__ = ["Preprocessing", "export_model"]


@dataclasses.dataclass
class Preprocessing:
    """The evaluation preprocessing baked into the export (see
    ``kerascnn.data.eval_preprocess``). ``mean``: mean RGB ``(C,)``, per-pixel mean
    ``(H, W, C)``, or None for no subtraction."""

    image_size: tuple
    channels: int = 3
    resize: int | None = None
    pad: int = 0
    mean: np.ndarray | None = None

    @classmethod
    def for_model(cls, model, **kwargs):
        """Defaults from the model's input shape (no resize, no mean)."""
        shape = model.inputs[0].shape
        if shape[1] is None or shape[2] is None:
            raise ValueError(
                "The model's input has no fixed size; pass `preprocessing` with an "
                f"image_size. Received: input shape={tuple(shape)}")
        return cls(image_size=(int(shape[1]), int(shape[2])), channels=int(shape[3]),
                   **kwargs)

    def to_json(self):
        mean = None if self.mean is None else np.asarray(self.mean, np.float32).tolist()
        return {"image_size": list(self.image_size), "channels": self.channels,
                "resize": self.resize, "pad": self.pad, "mean": mean}

    @classmethod
    def from_json(cls, d):
        mean = d.get("mean")
        return cls(image_size=tuple(d["image_size"]), channels=int(d["channels"]),
                   resize=d.get("resize"), pad=int(d.get("pad") or 0),
                   mean=None if mean is None else np.asarray(mean, np.float32))


def _as_preprocessing(preprocessing, model):
    if preprocessing is None:
        return Preprocessing.for_model(model)
    if isinstance(preprocessing, Preprocessing):
        return preprocessing
    if isinstance(preprocessing, dict):
        return Preprocessing(**preprocessing)
    raise ValueError("`preprocessing` must be a Preprocessing, a dict or None. "
                     f"Received: preprocessing={preprocessing!r}")


def build_archive(model, preprocessing, class_names, from_logits=False):
    """A ``keras.export.ExportArchive`` with the two serving signatures."""
    import keras
    import tensorflow as tf

    from kerascnn.data import decode_image, eval_preprocess

    prep = preprocessing
    size = tuple(int(v) for v in prep.image_size)
    channels = int(prep.channels)
    mean = False if prep.mean is None else np.asarray(prep.mean, np.float32)
    names = tf.constant([str(n) for n in class_names])
    k = min(5, len(class_names))

    def preprocess(images_uint8):
        return eval_preprocess(images_uint8, image_size=size, resize=prep.resize,
                               mean=mean, pad=int(prep.pad))

    def head(x):
        probs = model(x, training=False)
        probs = tf.cast(probs, tf.float32)
        if from_logits:
            probs = tf.nn.softmax(probs, axis=-1)
        top = tf.math.top_k(probs, k=k)
        return {"probabilities": probs,
                "top5_probabilities": top.values,
                "top5_classes": tf.cast(top.indices, tf.int64),
                "top5_names": tf.gather(names, top.indices)}

    def serving_default(image_bytes):
        x = tf.map_fn(lambda b: preprocess(decode_image(b, channels=channels)),
                      image_bytes,
                      fn_output_signature=tf.TensorSpec(size + (channels,), tf.float32))
        return head(x)

    def serving_images(images):
        x = tf.cast(tf.clip_by_value(tf.round(images), 0.0, 255.0), tf.uint8)
        x = tf.ensure_shape(preprocess(x), (None,) + size + (channels,))
        return head(x)

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", serving_default, input_signature=[
        tf.TensorSpec([None], tf.string, name="image_bytes")])
    archive.add_endpoint("serving_images", serving_images, input_signature=[
        tf.TensorSpec([None, None, None, channels], tf.float32, name="images")])
    return archive


def export_model(model, name, *, base_dir="saved_models", version=None,
                 preprocessing=None, class_names=None, from_logits=False,
                 serving_base_path="/models", metadata=None, verbose=True) -> str:
    """Exports ``model`` to ``<base_dir>/<name>/<version>/``; returns that path.

    Args:
      model: a Keras model whose output is class probabilities (or logits with
        ``from_logits=True``).
      name: the TF Serving model name (a folder name).
      base_dir: the folder TF Serving mounts (``saved_models``).
      version: an int; default the next integer. An existing version is an error.
      preprocessing: :class:`Preprocessing` (or its fields as a dict); default the
        model's input size with no resize and no mean subtraction.
      class_names: one name per class; default ``"0"``, ``"1"``, ...
      serving_base_path: where ``base_dir`` is mounted in the TF Serving container
        (written into ``models.config``).
      metadata: extra JSON-able information saved in ``assets.extra/kerascnn.json``.
    """
    serving_config.check_name(name)
    classes = int(model.outputs[0].shape[-1])
    if class_names is None:
        class_names = [str(i) for i in range(classes)]
    class_names = [str(c) for c in class_names]
    if len(class_names) != classes:
        raise ValueError(f"`class_names` must have one name per class ({classes}). "
                         f"Received: {len(class_names)} class_names")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool)
                                or version < 0):
        raise ValueError(f"`version` must be an int >= 0 or None. Received: version={version!r}")
    prep = _as_preprocessing(preprocessing, model)
    model_dir = os.path.join(base_dir, name)
    os.makedirs(model_dir, exist_ok=True)
    if version is None:
        version = serving_config.next_version(model_dir)
    final = os.path.join(model_dir, str(version))
    if os.path.exists(final):
        raise FileExistsError(f"{final} exists; an export is never overwritten. "
                              f"Received: version={version}")
    archive = build_archive(model, prep, class_names, from_logits=from_logits)
    tmp = tempfile.mkdtemp(dir=model_dir, prefix=f".tmp-{version}-")
    try:
        archive.write_out(tmp, verbose=False)
        extra = os.path.join(tmp, "assets.extra")
        os.makedirs(extra, exist_ok=True)
        with open(os.path.join(extra, "kerascnn.json"), "w") as f:
            json.dump({"name": name, "version": version, "class_names": class_names,
                       "preprocessing": prep.to_json(), **(metadata or {})}, f, indent=1)
        if os.path.exists(final):  # someone else took this version meanwhile
            raise FileExistsError(f"{final} exists; an export is never overwritten.")
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    serving_config.write_models_config(base_dir, serving_base_path)
    if verbose:
        print(f"Exported {name} version {version} to {final}", flush=True)
    return final
