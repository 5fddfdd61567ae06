"""kerascnn.data: sources, decoding, the papers' augmentation (XLA), statistics.

``load_source`` -> ``Source``; ``train_dataset(source, policy, ...)``;
``eval_dataset`` / ``eval_preprocess`` (the ``center`` view); ``decode_image``;
``get_policy`` / ``list_policies``; ``kerascnn.data.stats``. The multi-crop
evaluation views live in ``kerascnn.data.views`` (imported on first use).
"""

import importlib

from kerascnn.data import ops, stats
from kerascnn.data.decode import decode_image
from kerascnn.data.pipeline import eval_dataset, eval_preprocess, train_dataset
from kerascnn.data.policies import Policy, get_policy, list_policies
from kerascnn.data.sources import Source, from_arrays, load_source

__all__ = [
    "Policy",
    "Source",
    "decode_image",
    "eval_dataset",
    "eval_preprocess",
    "from_arrays",
    "get_policy",
    "list_policies",
    "load_source",
    "ops",
    "stats",
    "train_dataset",
]


def __getattr__(name):  # lazy: a missing or broken views.py cannot break the package
    if name == "views":
        return importlib.import_module("kerascnn.data.views")
    raise AttributeError(f"module 'kerascnn.data' has no attribute {name!r}")
