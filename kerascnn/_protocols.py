"""The names of the papers' test protocols, below the registry and the evaluation.

The registry (:mod:`kerascnn.applications.registry`) keys each network's
``paper_results`` by these names and the evaluation
(:mod:`kerascnn.evaluation.protocols`) runs them, so the names sit below both floors.
``PROTOCOLS`` are the evaluation's view protocols, in the order of its table;
``PAPER_PROTOCOLS`` the keys a ``paper_results`` entry may have: those and ``test``
(the CIFAR nets' single-view test error, which the ``center`` protocol measures).
Standard library only: ``kerascnn evaluate --protocols`` checks its value against them
without importing TensorFlow.
"""

PROTOCOLS = ("center", "10crop", "144crop", "multicrop", "dense", "dense+multicrop")
PAPER_PROTOCOLS = ("center", "test", *PROTOCOLS[1:])
