"""kerascnn.evaluation: the papers' test protocols (issue 5).

- :func:`evaluate`: top-1/top-5 error of a model (or several, fused) over any
  ``kerascnn.data`` source with ``center``, ``10crop``, ``144crop``, ``multicrop``,
  ``dense``, ``dense+multicrop``; an :class:`EvaluationReport` beside the paper's figures.
- :func:`to_fully_convolutional`: AlexNet/VGG heads as convolutions sharing the weights.
- :class:`TopKError`: streaming top-k error (%) metric.
- :func:`make_protocol`: a validated protocol with the papers' default scales.
"""

from kerascnn.evaluation.evaluate import Member, evaluate
from kerascnn.evaluation.loading import SavedModelNet, load_for_evaluation
from kerascnn.evaluation.fully_convolutional import DenseAsConv, has_convertible_head, to_fully_convolutional
from kerascnn.evaluation.metrics import TopKError, top_k_error
from kerascnn.evaluation.protocols import PROTOCOLS, Protocol, default_scales, make_protocol
from kerascnn.evaluation.report import EvaluationReport, ProtocolResult

__all__ = [
    "PROTOCOLS",
    "DenseAsConv",
    "EvaluationReport",
    "Member",
    "Protocol",
    "ProtocolResult",
    "TopKError",
    "default_scales",
    "evaluate",
    "load_for_evaluation",
    "SavedModelNet",
    "has_convertible_head",
    "make_protocol",
    "to_fully_convolutional",
    "top_k_error",
]
