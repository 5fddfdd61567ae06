"""kerascnn.weights: pretrained ImageNet weights from their publishers' own files.

Readers (``readers.py``) know file formats, not networks: each returns the
publisher's tensors by name in the publisher's layout. Mappers (``mappers/``) know
networks, not formats: one per family, from the publisher's names to our layer
names, folding every difference of input convention into the weights, so every
model keeps kerascnn's input convention (RGB, 0-255, minus the set's mean RGB).
The table of weight sets (``sets.py``) sits beside the registry; ``loading.py``
resolves a builder's ``weights=`` argument.
"""

from kerascnn.weights.classes import decode_predictions, imagenet_classes
from kerascnn.weights.loading import cache_dir, fetch, preprocess_input
from kerascnn.weights.readers import WeightsFile, WeightsFileError, read_weights_file
from kerascnn.weights.sets import (
    WeightFile,
    WeightSet,
    all_weight_sets,
    get_weight_set,
    register_weight_set,
    unregister_weight_set,
    weight_sets,
)

__all__ = [
    "WeightFile",
    "WeightSet",
    "WeightsFile",
    "WeightsFileError",
    "all_weight_sets",
    "cache_dir",
    "decode_predictions",
    "fetch",
    "get_weight_set",
    "imagenet_classes",
    "preprocess_input",
    "read_weights_file",
    "register_weight_set",
    "unregister_weight_set",
    "weight_sets",
]
