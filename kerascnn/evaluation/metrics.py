"""Top-k error (%): re-exported from :mod:`kerascnn.metrics`, the one definition
(ties broken as ``tf.math.top_k``) that training and evaluation share."""

from kerascnn.metrics import TopKError, top_k_error

__all__ = ["TopKError", "top_k_error"]
