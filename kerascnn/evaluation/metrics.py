"""Top-k error (%), streaming over a dataset.

The papers report error = 100 - accuracy, in % (``../shared/PAPERS.md``); top-5 counts an
image as correct when its label is among the five highest posteriors. ``TopKError`` is a
``keras.metrics.Metric`` (usable in ``compile(metrics=...)`` and updated batch by batch by
the evaluation loop). When ``k`` is not smaller than the number of classes every prediction
is correct (error 0). Ties are broken as ``tf.math.top_k`` does (the lower class id
ranks first): the label counts as found when it is among ``top_k``'s k indices.
"""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["TopKError", "top_k_error"]


def _correct(y_true, y_pred, k):
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.reshape(ops.cast(y_true, "int32"), (-1,))
    y_pred = ops.reshape(y_pred, (-1, ops.shape(y_pred)[-1]))
    k = min(int(k), int(y_pred.shape[-1])) if y_pred.shape[-1] is not None else int(k)
    # The label's rank in a stable descending sort (ties: the lower class id first, as
    # tf.math.top_k), so a saturated softmax with many exact zeros is not counted correct.
    true_score = ops.take_along_axis(y_pred, y_true[:, None], axis=-1)
    classes = ops.arange(ops.shape(y_pred)[-1], dtype="int32")[None, :]
    ahead = (y_pred > true_score) | ((y_pred == true_score) & (classes < y_true[:, None]))
    rank = ops.sum(ops.cast(ahead, "int32"), axis=-1)
    return ops.cast(rank < k, "float32")


def top_k_error(y_true, y_pred, k=1):
    """Top-k error in % of a whole array of labels ``(N,)`` and posteriors ``(N, K)``."""
    correct = _correct(y_true, y_pred, k)
    return 100.0 * (1.0 - float(ops.convert_to_numpy(ops.mean(correct))))


@keras.saving.register_keras_serializable(package="kerascnn")
class TopKError(keras.metrics.Metric):
    """Streaming top-k error in % (``k=1``: top-1, ``k=5``: top-5).

    Args:
        k: how many of the highest-scoring classes may contain the label.
        name: metric name; default ``"top{k}_error"``.
    """

    def __init__(self, k=1, name=None, dtype=None):
        if int(k) < 1:
            raise ValueError(f"`k` must be a positive int. Received: k={k}")
        super().__init__(name=name or f"top{int(k)}_error", dtype=dtype)
        self.k = int(k)
        self.correct = self.add_variable(shape=(), initializer="zeros", name="correct", dtype="float32")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count", dtype="float32")

    def update_state(self, y_true, y_pred, sample_weight=None):
        correct = _correct(y_true, y_pred, self.k)
        if sample_weight is not None:
            w = ops.reshape(ops.cast(sample_weight, "float32"), (-1,))
            correct = correct * w
            n = ops.sum(w)
        else:
            n = ops.cast(ops.shape(correct)[0], "float32")
        self.correct.assign_add(ops.sum(correct))
        self.count.assign_add(n)

    def result(self):
        acc = ops.divide_no_nan(self.correct, self.count)
        return 100.0 * (1.0 - acc)

    def reset_state(self):
        self.correct.assign(0.0)
        self.count.assign(0.0)

    def get_config(self):
        return {"k": self.k, "name": self.name, "dtype": self.dtype}
