"""A registry network with pretrained weights, with the input it expects and its classes.

What ``kerascnn predict/export/evaluate --arch NET --weights W`` share: the model is
built with ``get_model(NET, weights=W)`` at the set's input size, its
:class:`~kerascnn.data.preprocessing.Preprocessing` is the set's own (its publisher's
evaluation transform, :mod:`kerascnn.weights.origins`: torchvision's antialiased
shorter-side resize and crop offsets, Caffe's warp to 256x256; minus the set's mean
RGB) and its class names are ImageNet's, in class-index order.

For ``W`` a file, the transform and mean are those of the file's publisher, known from
the file's format (keras.applications' Keras-2 HDF5, PyTorch and safetensors:
torchvision's, Caffe: BVLC's: :func:`kerascnn.weights.origins.origin_of_format`), since
the mappers keep the mean out of the weights; a Keras-format file (``.weights.h5``,
``.keras``) takes the one resolver's answer (:func:`kerascnn.data.carried.resolve`:
stored in the file, else its run's ``preprocessing.json``, else the fallback, said).
The built model carries its preprocessing and class names (``kerascnn.data.carried``).
"""

from __future__ import annotations

import dataclasses
import os

from kerascnn.weights import sets as _sets

@dataclasses.dataclass
class Pretrained:
    """``model`` (1000 ImageNet classes), ``preprocessing``, ``class_names`` and the
    ``weight_set`` (None for a file)."""

    model: object
    preprocessing: object
    class_names: list
    weight_set: _sets.WeightSet | None


def imagenet_names() -> list:
    """The 1000 ImageNet class names (``"tabby"``), in class-index order."""
    from kerascnn.weights.classes import imagenet_classes

    return [name for _, name in imagenet_classes()]


def _network(arch):
    from kerascnn.applications.registry import get_model_info

    return get_model_info(arch).name


def file_origin(path):
    """The :class:`~kerascnn.weights.origins.Origin` of the publisher of the weights file
    at ``path`` (from its format), or None for a Keras-format file (its own run
    decides)."""
    from kerascnn.weights.origins import origin_of_format
    from kerascnn.weights.readers import detect_format

    return origin_of_format(detect_format(path))


def file_mean(path):
    """The mean RGB that the publisher of the weights file at ``path`` trains with, or
    None for a Keras-format file (its own run decides)."""
    origin = file_origin(path)
    return None if origin is None else origin.mean_rgb


def preprocessing_for(arch, weights, image_size=None):
    """The Preprocessing a model built with ``weights`` (a set name of ``arch`` or a
    file) expects, at ``image_size`` (default: the set's crop, else the network's
    input size)."""
    from kerascnn.applications.registry import get_model_info

    network = _network(arch)
    weights = os.fspath(weights)
    if weights in _sets.weight_sets(network):
        return _sets.get_weight_set(network, weights).preprocessing(image_size)
    if not os.path.isfile(weights):
        from kerascnn.weights.loading import weights_argument_error

        raise weights_argument_error(weights, network)
    size = tuple(image_size or get_model_info(network).input_shape[:2])
    origin = file_origin(weights)
    if origin is not None:
        # The network's first set of that publisher knows its crop (AlexNet's 227 of 256).
        same = [ws for ws in _sets.weight_sets(network).values() if ws.origin == origin.name]
        return same[0].preprocessing(size) if same else origin.preprocessing(size)
    from kerascnn.data.carried import resolve  # a Keras-format file: the one resolver

    return resolve(weights, model=(*size, 3)).preprocessing


def load_pretrained(arch, weights, image_size=None, **build_kwargs) -> Pretrained:
    """Builds ``arch`` with ``weights`` (a set name or a file) and 1000 ImageNet classes
    at ``image_size`` (default: the set's crop, else the network's input size)."""
    from kerascnn.applications.registry import get_model

    network = _network(arch)
    weights = os.fspath(weights)
    ws = _sets.weight_sets(network).get(weights)
    if image_size is None and ws is not None:
        image_size = (ws.crop, ws.crop)
    prep = preprocessing_for(network, weights, image_size)
    model = get_model(network, weights=weights, classes=1000, include_top=True,
                      input_shape=(*prep.image_size, 3), **build_kwargs)
    from kerascnn.data.carried import attach  # the model carries what it was built with

    attach(model, prep, imagenet_names(), where=f"{network} weights={weights!r}")
    return Pretrained(model, prep, imagenet_names(), ws)
