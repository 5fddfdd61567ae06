"""The metrics ``kerascnn train`` compiles in: top-1 / top-5 accuracy and error.

Every one of them is :mod:`kerascnn.metrics`' tie-safe rule (ties broken as
``tf.math.top_k``; the evaluation uses the same classes), so the numbers in
``history.csv`` and ``test_metrics.json`` are those ``kerascnn evaluate`` reports.
Accuracies are fractions (``top1_accuracy``/``top5_accuracy``), errors are in %
(``top1_error``/``top5_error``, as in the papers' tables; ``ReduceLROnPlateau``
watches ``val_top1_error`` in mode ``min``).
"""

from __future__ import annotations

from kerascnn.metrics import TopKAccuracy, TopKError

__all__ = ["TopKAccuracy", "TopKError", "default_metrics"]


def default_metrics():
    """``[top1_accuracy, top5_accuracy, top1_error, top5_error]`` for ``compile``."""
    return [TopKAccuracy(1), TopKAccuracy(5), TopKError(1), TopKError(5)]
