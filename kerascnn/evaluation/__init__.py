"""kerascnn.evaluation: the papers' test protocols.

- :func:`evaluate`: top-1/top-5 error of a model (or several, fused) over any
  ``kerascnn.data`` source with ``center``, ``10crop``, ``144crop``, ``multicrop``,
  ``dense``, ``dense+multicrop``; an :class:`EvaluationReport` beside the paper's figures.
- :func:`to_fully_convolutional`: AlexNet/VGG heads as convolutions sharing the weights.
- :class:`TopKError`: streaming top-k error (%) metric.
- :data:`PROTOCOLS` / :data:`TABLE` / :func:`make_protocol`: the protocol table and a
  validated protocol with the papers' default scales.

``kerascnn.evaluation.evaluate`` is the function: it is bound here after its module
(:mod:`kerascnn.evaluation.evaluate`) is imported, and Python binds a submodule to its
package only when it first imports it.
"""

from kerascnn.evaluation.evaluate import Member, evaluate
from kerascnn.evaluation.fully_convolutional import (
    DenseAsConv,
    has_convertible_head,
    to_fully_convolutional,
)
from kerascnn.evaluation.loading import SavedModelNet, load_for_evaluation
from kerascnn.evaluation.metrics import TopKError, top_k_error
from kerascnn.evaluation.protocols import (
    PROTOCOLS,
    TABLE,
    Protocol,
    ProtocolSpec,
    default_scales,
    make_protocol,
)
from kerascnn.evaluation.report import EvaluationReport, ProtocolResult

__all__ = [
    "DenseAsConv",
    "EvaluationReport",
    "Member",
    "PROTOCOLS",
    "Protocol",
    "ProtocolResult",
    "ProtocolSpec",
    "SavedModelNet",
    "TABLE",
    "TopKError",
    "default_scales",
    "evaluate",
    "has_convertible_head",
    "load_for_evaluation",
    "make_protocol",
    "to_fully_convolutional",
    "top_k_error",
]
