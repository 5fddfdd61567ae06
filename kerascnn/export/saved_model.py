"""Export a trained network as a SavedModel for TF Serving.

``export_model(model, name)`` writes ``saved_models/<name>/<version>/`` (the next
integer version unless one is given; an existing version is never overwritten),
atomically (``kerascnn._io.atomic_dir``: a hidden temporary folder next to it, which
TF Serving ignores because only folders named by an integer are versions, renamed
into place with the modes the user's umask gives ordinary folders and files, so a
TF Serving container running as another user can read it), then
``saved_models/models.config`` is rewritten to list every exported model.

The SavedModel holds the inference graph only, ``model(x, training=False)``: no
dropout, no auxiliary heads (GoogLeNet's ``aux_logits`` model returns its main head).
The preprocessing inside it is :class:`kerascnn.data.preprocessing.Preprocessing`'s
``center`` view -- the model's own, the one its run evaluated with and stored in its
``.keras`` file (shorter side to ``resize``, ``pad``, centre crop, mean) -- so a client
may send an image of any size: it is resized, never cut down to its central pixels.
A model that carries none gets the resolver's one fallback
(:func:`kerascnn.data.carried.fallback`: the shorter side to the network's input
size, the centre cropped, no mean). Its JSON form is kept in
``assets.extra/kerascnn.json``. Signatures (loadable with plain TensorFlow, no
kerascnn):

- ``serving_default(image_bytes: string[None])``: encoded JPEG/PNG/GIF/BMP images,
  what TF Serving's REST API passes for ``{"instances": [{"b64": "..."}]}``;
  decoded with ``kerascnn.data.decode_image`` inside the graph.
- ``serving_images(images: float32[None, None, None, C])``: decoded images on the
  0-255 scale (uint8 values; JSON numbers), the same preprocessing.

Both return ``probabilities`` (float32 ``[N, classes]``), ``top5_classes`` (int64
``[N, k]``), ``top5_names`` (string ``[N, k]``, the class names embedded as a
constant) and ``top5_probabilities`` (float32 ``[N, k]``), ``k = min(5, classes)``.
An empty batch (N = 0) returns empty results; the network is not run on it (oneDNN's
fused convolution + batch norm fails on zero images).
"""

from __future__ import annotations

import json
import os

from kerascnn import _io
from kerascnn.data.carried import carried, resolve
from kerascnn.data.carried import fallback as default_preprocessing
from kerascnn.data.preprocessing import Preprocessing
from kerascnn.export import serving_config

__all__ = ["Preprocessing", "default_preprocessing", "export_model"]

METADATA_FILE = os.path.join("assets.extra", "kerascnn.json")


def _as_preprocessing(preprocessing, model):
    if preprocessing is None:
        return resolve(model, prog="kerascnn export").preprocessing
    if isinstance(preprocessing, Preprocessing):
        return preprocessing
    if isinstance(preprocessing, dict):
        return Preprocessing(**preprocessing)
    raise ValueError("`preprocessing` must be a kerascnn.data.preprocessing.Preprocessing, "
                     f"a dict of its fields or None. Received: preprocessing={preprocessing!r}")


def build_archive(model, preprocessing: Preprocessing, class_names, from_logits=False):
    """A ``keras.export.ExportArchive`` with the two serving signatures."""
    import keras
    import tensorflow as tf

    from kerascnn.data.decode import decode_image

    prep = preprocessing
    size = tuple(prep.image_size)
    channels = prep.channels
    names = tf.constant([str(n) for n in class_names])
    classes = len(class_names)
    k = min(5, classes)

    def probabilities(x):
        def run():
            probs = tf.cast(model(x, training=False), tf.float32)
            return tf.nn.softmax(probs, axis=-1) if from_logits else probs

        # An empty batch never reaches the network: oneDNN's fused conv + batch
        # norm rejects zero images ("scale must have the same number of elements
        # as the channels of x").
        return tf.cond(tf.shape(x)[0] > 0, run, lambda: tf.zeros([0, classes], tf.float32))

    def head(x):
        probs = probabilities(x)
        top = tf.math.top_k(probs, k=k)
        return {"probabilities": probs,
                "top5_probabilities": top.values,
                "top5_classes": tf.cast(top.indices, tf.int64),
                "top5_names": tf.gather(names, top.indices)}

    def serving_default(image_bytes):
        x = tf.map_fn(lambda b: prep(decode_image(b, channels=channels)), image_bytes,
                      fn_output_signature=tf.TensorSpec(size + (channels,), tf.float32))
        return head(x)

    def serving_images(images):
        def views():
            x = tf.cast(tf.clip_by_value(tf.round(images), 0.0, 255.0), tf.uint8)
            return prep(x)

        # An empty batch may have no height or width to resize.
        x = tf.cond(tf.shape(images)[0] > 0, views,
                    lambda: tf.zeros((0,) + size + (channels,), tf.float32))
        return head(tf.ensure_shape(x, (None,) + size + (channels,)))

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", serving_default, input_signature=[
        tf.TensorSpec([None], tf.string, name="image_bytes")])
    archive.add_endpoint("serving_images", serving_images, input_signature=[
        tf.TensorSpec([None, None, None, channels], tf.float32, name="images")])
    return archive


def _trace_endpoints_once(archive):
    """Makes ``archive.write_out`` trace each endpoint once instead of twice.

    Keras' ExportArchive traces every endpoint to list the variables it uses
    (``_filter_and_track_resources``), then ``tf.saved_model.save`` traces it again:
    TensorFlow caches the traces made in a save context apart from the others (the
    cache key holds the save options' variable policy). Listing the variables in a save
    context too makes the save's trace a cache hit -- the network's graph, the
    export's largest cost, is built once per signature (tests/export/
    test_export_traces.py: the network traced 3 times in all instead of 5, the third
    by ExportArchive.track's walk for lookup tables). Where either private name is
    missing (another Keras or TensorFlow), the export is as before."""
    listing = getattr(archive, "_filter_and_track_resources", None)
    try:
        from tensorflow.python.saved_model import save_context
    except ImportError:
        return
    if listing is None or not hasattr(save_context, "save_context"):
        return

    def in_save_context():
        import tensorflow as tf

        with save_context.save_context(tf.saved_model.SaveOptions()):
            listing()

    archive._filter_and_track_resources = in_save_context


def export_model(model, name, *, base_dir="saved_models", version=None,
                 preprocessing=None, class_names=None, from_logits=False,
                 serving_base_path="/models", metadata=None, verbose=True) -> str:
    """Exports ``model`` to ``<base_dir>/<name>/<version>/``; returns that path.

    Args:
      model: a Keras model whose output is class probabilities (or logits with
        ``from_logits=True``).
      name: the TF Serving model name (a folder name).
      base_dir: the folder TF Serving mounts (``saved_models``).
      version: an int; default the next integer. An existing version is an error
        (``FileExistsError``).
      preprocessing: a :class:`~kerascnn.data.preprocessing.Preprocessing` (or its
        fields as a dict); default the one the model carries
        (:func:`kerascnn.data.carried.resolve`), else its fallback (shorter side to the
        input size, centre crop, no mean; said on stderr).
      class_names: one name per class; default the model's own, else ``"0"``, ``"1"``, ...
      serving_base_path: where ``base_dir`` is mounted in the TF Serving container
        (written into ``models.config``).
      metadata: extra JSON-able information saved in ``assets.extra/kerascnn.json``
        beside the name, version, class names and ``preprocessing`` (its JSON form).
    """
    import keras

    if keras.backend.backend() != "tensorflow":  # JAX: jax2tf cannot carry string inputs
        from kerascnn.export._cross_backend import export_via_tensorflow

        serving_config.check_name(name)
        return export_via_tensorflow(
            model, name, base_dir=base_dir, version=version, preprocessing=preprocessing,
            class_names=class_names, from_logits=from_logits,
            serving_base_path=serving_base_path, metadata=metadata, verbose=verbose)
    serving_config.check_name(name)
    classes = int(model.outputs[0].shape[-1])
    if class_names is None:
        class_names = carried(model)[1] or [str(i) for i in range(classes)]
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
        raise FileExistsError(f"{final} exists; an export is never overwritten: choose "
                              f"another --version or leave it out. Received: version={version}")
    archive = build_archive(model, prep, class_names, from_logits=from_logits)
    _trace_endpoints_once(archive)
    with _io.atomic_dir(final) as tmp:  # FileExistsError if another export took it
        archive.write_out(tmp, verbose=False)
        doc = {"name": name, "version": version, "class_names": class_names,
               "preprocessing": prep.to_json(), **(metadata or {})}
        os.makedirs(os.path.join(tmp, "assets.extra"), exist_ok=True)
        with open(os.path.join(tmp, METADATA_FILE), "w") as f:
            json.dump(doc, f, indent=1)
    serving_config.write_models_config(base_dir, serving_base_path)
    if verbose:
        print(f"Exported {name} version {version} to {final}", flush=True)
    return final
