"""Top-k error (and accuracy), the papers' measure, with one rule for ties.

The papers report error = 100 - accuracy, in %; top-5 counts
an image as correct when its label is among the five highest posteriors. "Among the
five highest" needs a rule for ties, and this module is the one place that has it:
ties are broken as ``tf.math.top_k`` breaks them (the lower class id ranks first), so
the label counts as found exactly when it is among ``top_k``'s k indices. A saturated
softmax whose wrong classes are all exactly 0 therefore does *not* put the label in
the top 5 (Keras' ``SparseTopKCategoricalAccuracy`` counts every tied score as a hit:
top-5 error 0 on such outputs). When ``k`` is not smaller than the number of classes
every prediction is correct (error 0).

Training (``kerascnn.training.metrics.default_metrics``) and evaluation
(``kerascnn.evaluation``) both use these classes; they are registered once, as
``kerascnn>TopKError`` and ``kerascnn>TopKAccuracy``, so a ``.keras`` file with the
metrics compiled in loads with ``compile=True``.
"""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["TopKAccuracy", "TopKError", "top_k_correct", "top_k_error"]


def top_k_correct(y_true, y_pred, k):
    """float32 ``(N,)``: 1 where the label ranks among the first ``k`` classes of a
    stable descending sort of ``y_pred`` (ties: the lower class id first)."""
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.reshape(ops.cast(y_true, "int32"), (-1,))
    y_pred = ops.reshape(y_pred, (-1, ops.shape(y_pred)[-1]))
    k = min(int(k), int(y_pred.shape[-1])) if y_pred.shape[-1] is not None else int(k)
    true_score = ops.take_along_axis(y_pred, y_true[:, None], axis=-1)
    classes = ops.arange(ops.shape(y_pred)[-1], dtype="int32")[None, :]
    ahead = (y_pred > true_score) | ((y_pred == true_score) & (classes < y_true[:, None]))
    rank = ops.sum(ops.cast(ahead, "int32"), axis=-1)
    return ops.cast(rank < k, "float32")


def top_k_error(y_true, y_pred, k=1):
    """Top-k error in % of a whole array of labels ``(N,)`` and posteriors ``(N, K)``."""
    correct = top_k_correct(y_true, y_pred, k)
    return 100.0 * (1.0 - float(ops.convert_to_numpy(ops.mean(correct))))


class _TopK(keras.metrics.Metric):
    """Streaming count of top-k hits (shared state of the two metrics below)."""

    _default_name = "top{k}"

    def __init__(self, k=1, name=None, dtype=None):
        if isinstance(k, bool) or int(k) != k or int(k) < 1:
            raise ValueError(f"`k` must be a positive int. Received: k={k}")
        super().__init__(name=name or self._default_name.format(k=int(k)), dtype=dtype)
        self.k = int(k)
        self.correct = self.add_variable(shape=(), initializer="zeros", name="correct",
                                         dtype="float32")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count",
                                       dtype="float32")

    def update_state(self, y_true, y_pred, sample_weight=None):
        correct = top_k_correct(y_true, y_pred, self.k)
        if sample_weight is not None:
            w = ops.reshape(ops.cast(sample_weight, "float32"), (-1,))
            correct = correct * w
            n = ops.sum(w)
        else:
            n = ops.cast(ops.shape(correct)[0], "float32")
        self.correct.assign_add(ops.sum(correct))
        self.count.assign_add(n)

    def _accuracy(self):
        return ops.divide_no_nan(self.correct, self.count)

    def reset_state(self):
        self.correct.assign(0.0)
        self.count.assign(0.0)

    def get_config(self):
        return {"k": self.k, "name": self.name, "dtype": self.dtype}


@keras.saving.register_keras_serializable(package="kerascnn")
class TopKError(_TopK):
    """Streaming top-k error in % (``k=1``: top-1, ``k=5``: top-5), named
    ``top{k}_error`` by default; lower is better (``ReduceLROnPlateau`` watches
    ``val_top1_error`` in mode ``min``).

    Args:
        k: how many of the highest-scoring classes may contain the label.
        name: metric name; default ``"top{k}_error"``.
    """

    _default_name = "top{k}_error"

    def __init__(self, k=1, name=None, dtype=None):
        super().__init__(k=k, name=name, dtype=dtype)
        self._direction = "down"

    def result(self):
        return 100.0 * (1.0 - self._accuracy())


@keras.saving.register_keras_serializable(package="kerascnn")
class TopKAccuracy(_TopK):
    """Streaming top-k accuracy as a fraction (``100 - 100 * accuracy`` is exactly
    :class:`TopKError`), named ``top{k}_accuracy`` by default."""

    _default_name = "top{k}_accuracy"

    def __init__(self, k=1, name=None, dtype=None):
        super().__init__(k=k, name=name, dtype=dtype)
        self._direction = "up"

    def result(self):
        return self._accuracy()
