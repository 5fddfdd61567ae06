"""kerascnn.weights: pretrained ImageNet weights from their publishers' own files.

Readers (``readers.py``) know file formats, not networks: each returns the
publisher's tensors by name in the publisher's layout. Mappers (``mappers/``) know
networks, not formats: one per family, from the publisher's names to our layer
names, folding every difference of input convention into the weights, so every
model keeps kerascnn's input convention (RGB, 0-255, minus the set's mean RGB).
The table of weight sets (``sets.py``) sits beside the registry; ``loading.py``
resolves a builder's ``weights=`` argument.
"""
