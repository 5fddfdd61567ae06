"""Choosing the ``tf.distribute`` strategy and the precision policy.

``auto`` picks, in order: ``MultiWorkerMirroredStrategy`` when ``TF_CONFIG`` names
more than one worker; ``MirroredStrategy`` over all visible GPUs when there are
several; the default (one-device) strategy otherwise. The global batch is the
per-replica batch × ``strategy.num_replicas_in_sync``, and the input pipelines are
built per worker from a ``tf.distribute.InputContext``
(``strategy.distribute_datasets_from_function``), each reading its own shard.
"""

from __future__ import annotations

import json
import os

__all__ = ["STRATEGIES", "PRECISIONS", "select_strategy", "set_precision", "tf_config_workers"]

STRATEGIES = ("auto", "default", "one_device", "mirrored", "multi_worker")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


def tf_config_workers() -> int:
    """Number of workers named by ``$TF_CONFIG`` (0 when unset)."""
    text = os.environ.get("TF_CONFIG")
    if not text:
        return 0
    try:
        cluster = json.loads(text).get("cluster", {})
    except ValueError:
        raise ValueError(f"TF_CONFIG is not valid JSON. Received: TF_CONFIG={text!r}") from None
    return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def select_strategy(name: str = "auto"):
    """The ``tf.distribute.Strategy`` named ``name`` (one of :data:`STRATEGIES`); a
    ``tf.distribute.Strategy`` instance is returned as is."""
    import tensorflow as tf  # here, not at import: ``kerascnn train --help`` stays fast

    if isinstance(name, tf.distribute.Strategy):
        return name
    if name not in STRATEGIES:
        raise ValueError(f"Unknown strategy; expected one of {list(STRATEGIES)}. "
                         f"Received: strategy={name!r}")
    if name == "auto":
        import keras

        if keras.backend.backend() != "tensorflow":
            return tf.distribute.get_strategy()  # tf.distribute is TensorFlow's: one device
        if tf_config_workers() > 1:
            name = "multi_worker"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "default"
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "one_device":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    return tf.distribute.get_strategy()


def set_precision(precision: str = "float32") -> None:
    """Sets Keras' global dtype policy (``mixed_float16`` / ``mixed_bfloat16``: the
    layers compute in half precision, variables stay float32; the models keep LRN
    and the softmax in float32)."""
    if precision not in PRECISIONS:
        raise ValueError(f"Unknown precision; expected one of {list(PRECISIONS)}. "
                         f"Received: precision={precision!r}")
    import keras

    keras.mixed_precision.set_global_policy(precision)
