"""Mappers: one per family, from a publisher's tensor names and conventions to our
layers, with every difference of input convention folded into the weights.

``assign(model, wf, *, origin, family)`` dispatches to the family's module, whose
``assign(model, wf, *, origin)`` sets the weights in place.
"""

from __future__ import annotations

import importlib

from kerascnn.weights.mappers._common import CAFFE, KERAS_APPLICATIONS, ORIGINS, TORCHVISION

# family (registry) -> mapper module
_MODULES = {
    "resnet": "resnet",
    "vgg": "vgg",
    "alexnet": "alexnet",
    "googlenet": "googlenet",
}


def families():
    """The families that have a mapper."""
    return tuple(_MODULES)


def assign(model, wf, *, origin, family):
    """Sets ``model``'s weights from the publisher's tensors of ``wf`` (a
    :class:`kerascnn.weights.readers.WeightsFile`) with ``origin``'s conventions."""
    if family not in _MODULES:
        raise ValueError(
            f"No publisher's weights exist for the {family!r} family (those with a mapper: "
            f"{', '.join(_MODULES)}). Received: family={family!r}"
        )
    if origin not in ORIGINS:
        raise ValueError(
            f"`origin` must be one of {', '.join(map(repr, ORIGINS))}. Received: origin={origin!r}"
        )
    module = importlib.import_module(f"kerascnn.weights.mappers.{_MODULES[family]}")
    module.assign(model, wf, origin=origin)


__all__ = ["CAFFE", "KERAS_APPLICATIONS", "ORIGINS", "TORCHVISION", "assign", "families"]
