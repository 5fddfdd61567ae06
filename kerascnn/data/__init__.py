"""kerascnn.data: sources, decoding, the papers' augmentation (XLA), statistics,
evaluation views and the one preprocessing description.

``load_source`` -> a typed ``Source``; ``train_dataset(source, policy, ...)``;
``Preprocessing`` (the ``center`` view, shared by evaluation, export and predict) and
``eval_dataset``; ``decode_image``; ``get_policy`` / ``list_policies``;
``kerascnn.data.stats``; the multi-crop evaluation views in ``kerascnn.data.views``.
"""

from kerascnn.data import ops, stats, views
from kerascnn.data.decode import decode_image
from kerascnn.data.pipeline import eval_dataset, train_dataset
from kerascnn.data.policies import Policy, get_policy, list_policies
from kerascnn.data.preprocessing import Preprocessing
from kerascnn.data.sources import Source, from_arrays, load_source

__all__ = [
    "Policy",
    "Preprocessing",
    "Source",
    "decode_image",
    "eval_dataset",
    "from_arrays",
    "get_policy",
    "list_policies",
    "load_source",
    "ops",
    "stats",
    "train_dataset",
    "views",
]
