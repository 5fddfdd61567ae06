"""kerascnn.evaluation: the papers' test protocols (issue 5).

- :func:`evaluate`: top-1/top-5 error of a model (or several, fused) over any
  ``kerascnn.data`` source with ``center``, ``10crop``, ``144crop``, ``multicrop``,
  ``dense``, ``dense+multicrop``; an :class:`EvaluationReport` beside the paper's figures.
- :func:`to_fully_convolutional`: AlexNet/VGG heads as convolutions sharing the weights.
- :class:`TopKError`: streaming top-k error (%) metric.
- :data:`PROTOCOLS` / :data:`TABLE` / :func:`make_protocol`: the protocol table and a
  validated protocol with the papers' default scales.

The names are imported on first use (PEP 562): the registry of
``kerascnn.applications`` reads :data:`PROTOCOLS` from
:mod:`kerascnn.evaluation.protocols`, which imports no TensorFlow, and must stay
importable under any Keras backend, so this package's ``__init__`` imports nothing
heavy itself.
"""

import importlib
import sys
import types

_EXPORTS = {
    "Member": "evaluate",
    "evaluate": "evaluate",
    "SavedModelNet": "loading",
    "load_for_evaluation": "loading",
    "DenseAsConv": "fully_convolutional",
    "has_convertible_head": "fully_convolutional",
    "to_fully_convolutional": "fully_convolutional",
    "TopKError": "metrics",
    "top_k_error": "metrics",
    "PROTOCOLS": "protocols",
    "TABLE": "protocols",
    "Protocol": "protocols",
    "ProtocolSpec": "protocols",
    "default_scales": "protocols",
    "make_protocol": "protocols",
    "EvaluationReport": "report",
    "ProtocolResult": "report",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'kerascnn.evaluation' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"kerascnn.evaluation.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))


class _Package(types.ModuleType):
    """The import system binds a submodule to its package's attribute of the same name
    once it is imported; ``kerascnn.evaluation.evaluate`` stays the function."""

    def __setattr__(self, name, value):
        if isinstance(value, types.ModuleType) and _EXPORTS.get(name) == name:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
