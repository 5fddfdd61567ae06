"""Choosing the Keras backend from the command line, and what each backend cannot do.

``kerascnn --backend jax|tensorflow COMMAND`` sets ``KERAS_BACKEND`` before anything
imports Keras (Keras reads it once, at import). Without the flag ``KERAS_BACKEND``
(or ``~/.keras/keras.json``) decides, as for any Keras program.

Under JAX, TensorFlow still does the input pipelines (tf.data feeds JAX NumPy
arrays) and the TF Serving export (:mod:`kerascnn.export._cross_backend`), so both
must be installed. ``--strategy mirrored|multi_worker`` (and ``auto`` on several
devices) mean Keras' ``keras.distribution.DataParallel`` there
(:mod:`kerascnn.training.strategy`). What JAX cannot do is said in one line before the
work starts (:func:`kerascnn.cli.unsupported`, the command line's: a multi-worker
``TF_CONFIG`` (tf.distribute's; JAX reads ``KERAS_DISTRIBUTION_*``), ``multi_worker``
without those variables).
"""

from __future__ import annotations

import os
import sys

BACKENDS = ("tensorflow", "jax")


def select(backend: str | None) -> None:
    """Sets ``KERAS_BACKEND`` to ``backend`` (None: leave the environment as it is).
    Keras already imported with another backend is an error (it cannot switch)."""
    if backend is None:
        return
    if backend not in BACKENDS:
        raise ValueError(f"`--backend` must be one of {list(BACKENDS)}. Received: backend={backend!r}")
    keras = sys.modules.get("keras")
    if keras is not None and keras.backend.backend() != backend:
        raise ValueError(f"Keras is already imported with the {keras.backend.backend()} backend "
                         f"in this process; it cannot switch. Received: backend={backend!r}")
    os.environ["KERAS_BACKEND"] = backend


def current() -> str:
    """The backend Keras will use (or uses), without importing Keras when it is not
    imported yet."""
    keras = sys.modules.get("keras")
    if keras is not None:
        return keras.backend.backend()
    name = os.environ.get("KERAS_BACKEND")
    if name:
        return name
    import json

    config = os.path.join(os.environ.get("KERAS_HOME") or os.path.expanduser("~/.keras"), "keras.json")
    try:
        with open(config) as f:
            return json.load(f).get("backend", "tensorflow")
    except (OSError, ValueError):
        return "tensorflow"


def eager_views_forward(net, logits: bool):
    """For :mod:`kerascnn.evaluation.evaluate` under a backend other than TensorFlow
    (a ``tf.function`` cannot trace a JAX model): ``(B, V, h, w, C)`` views (a tf or
    NumPy array from tf.data) -> ``(B, classes)`` float32 posteriors averaged over the
    V views, all B*V views in one call (Keras' ``predict_on_batch``: compiled by the
    backend, inference mode). Same result as the TensorFlow path's ``_forward``."""
    import keras
    import numpy as np

    def step(x):
        x = np.asarray(x, np.float32)
        flat = x.reshape((-1,) + x.shape[2:])
        if isinstance(net, keras.Model):
            y = net.predict_on_batch(flat)
        else:
            y = net(flat, training=False)
        y = np.asarray(keras.ops.convert_to_numpy(y) if not isinstance(y, np.ndarray) else y,
                       np.float32)
        if logits:
            y = np.exp(y - y.max(axis=-1, keepdims=True))
            y = y / y.sum(axis=-1, keepdims=True)
        return y.reshape(x.shape[0], x.shape[1], -1).mean(axis=1)

    return step
