"""A registry network with pretrained weights, with the input it expects and its classes.

What ``kerascnn predict/export/evaluate --arch NET --weights W`` share: the model is
built with ``get_model(NET, weights=W)`` at the set's input size, its
:class:`~kerascnn.data.preprocessing.Preprocessing` is the set's own (shorter side to
the publisher's ``resize``, centre crop, minus the set's mean RGB) and its class names
are ImageNet's, in class-index order.

For ``W`` a file, the mean is the one the file's publisher trains with, known from the
file's format (keras.applications' Keras-2 HDF5: keras' caffe mean; PyTorch and
safetensors: torchvision's; Caffe: BVLC's), since the mappers keep that mean out of
the weights; a Keras-format file (``.weights.h5``, ``.keras``) takes the
``preprocessing.json`` of its run folder when there is one, else ImageNet's mean.
The resize keeps the publishers' ratio 256/224 of the crop.
"""

from __future__ import annotations

import dataclasses
import os

from kerascnn.weights import sets as _sets

RESIZE_RATIO = 256 / 224  # every publisher's shorter side / crop


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


def file_mean(path):
    """The mean RGB that the publisher of the weights file at ``path`` trains with, or
    None for a Keras-format file (its own run decides)."""
    from kerascnn.weights.loading import ORIGIN_OF_FORMAT
    from kerascnn.weights.mappers._common import CAFFE, KERAS_APPLICATIONS, TORCHVISION
    from kerascnn.weights.readers import detect_format

    means = {KERAS_APPLICATIONS: _sets.KERAS_MEAN_RGB, TORCHVISION: _sets.TORCHVISION_MEAN_RGB,
             CAFFE: _sets.BVLC_MEAN_RGB}
    origin = ORIGIN_OF_FORMAT.get(detect_format(path))
    return means.get(origin)


def preprocessing_for(arch, weights, image_size=None):
    """The Preprocessing a model built with ``weights`` (a set name of ``arch`` or a
    file) expects, at ``image_size`` (default: the set's crop, else the network's
    input size)."""
    from kerascnn.applications.registry import get_model_info
    from kerascnn.data.preprocessing import Preprocessing

    network = _network(arch)
    weights = os.fspath(weights)
    if weights in _sets.weight_sets(network):
        ws = _sets.get_weight_set(network, weights)
        if image_size is None or tuple(image_size) == (ws.crop, ws.crop):
            return ws.preprocessing()
        size = tuple(image_size)
        return Preprocessing(image_size=size, channels=3,
                             resize=round(min(size) * ws.resize / ws.crop), mean=ws.mean_rgb)
    if not os.path.isfile(weights):
        from kerascnn.weights.loading import weights_argument_error

        raise weights_argument_error(weights, network)
    size = tuple(image_size or get_model_info(network).input_shape[:2])
    mean = file_mean(weights)
    if mean is None:
        found, _ = Preprocessing.find(weights)
        if found is not None:
            return found
        from kerascnn.data.stats import IMAGENET_MEAN_RGB

        mean = IMAGENET_MEAN_RGB
    return Preprocessing(image_size=size, channels=3, resize=round(min(size) * RESIZE_RATIO),
                         mean=mean)


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
    return Pretrained(model, prep, imagenet_names(), ws)
