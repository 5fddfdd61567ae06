"""Top-1 / top-5 accuracy and error, the papers' measures (error = 100 − accuracy, %).

Accuracies are ``keras.metrics.SparseTopKCategoricalAccuracy`` (fractions, named
``top1_accuracy``/``top5_accuracy``); :class:`TopKError` is the same metric reported
as an error in %, named ``top1_error``/``top5_error``, so logs read like the papers'
tables and ``ReduceLROnPlateau`` can watch ``val_top1_error`` (mode ``min``). With
fewer than ``k`` classes every prediction is within the top k (error 0).
"""

from __future__ import annotations

import keras

__all__ = ["TopKError", "default_metrics"]


@keras.saving.register_keras_serializable(package="kerascnn")
class TopKError(keras.metrics.SparseTopKCategoricalAccuracy):
    """Top-k error in % over sparse integer labels: ``100 · (1 − top-k accuracy)``."""

    def __init__(self, k=1, name=None, dtype=None, **kwargs):
        super().__init__(k=k, name=name or f"top{k}_error", dtype=dtype, **kwargs)
        self._direction = "down"

    def result(self):
        return 100.0 * (1.0 - super().result())


def default_metrics():
    """``[top1_accuracy, top5_accuracy, top1_error, top5_error]`` for ``compile``."""
    return [
        keras.metrics.SparseTopKCategoricalAccuracy(k=1, name="top1_accuracy"),
        keras.metrics.SparseTopKCategoricalAccuracy(k=5, name="top5_accuracy"),
        TopKError(k=1),
        TopKError(k=5),
    ]
