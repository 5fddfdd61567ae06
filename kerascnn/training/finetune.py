"""Fine-tuning from pretrained weights: a new classifier, and the new head first.

:func:`finetune_model` builds a registry network with its 1000-class ImageNet weights
and, when the data has another number of classes, :func:`replace_classifier` swaps
every classifier for a freshly initialised one of the same activation: ``fc8``
(AlexNet), ``predictions`` (VGG, ResNet, GoogLeNet) and GoogLeNet's auxiliary
``aux1_predictions`` / ``aux2_predictions`` when the model has them. It does this by
building the same network for the new classes (the builder's own initialisation of
the head) and copying every other variable by its path, so the result is the same
model class (GoogLeNet's ``AuxiliaryLossModel`` included) and its config round-trips.

:class:`FineTuneSchedule` is the usual transfer schedule (e.g. Yosinski et al. 2014;
keras.io's "Transfer learning & fine-tuning" guide): for the first ``head_epochs``
epochs only the new head learns (the rest of the network is held exactly, through
:class:`~kerascnn.training.optimizers.L2SGD`'s learning-rate multipliers), then the
whole network learns at ``factor`` times the schedule's rate. It derives both
multipliers from the epoch number alone at each epoch's start, so a run resumed at
any epoch continues the same schedule. Departure from a frozen-trunk recipe: the
trunk's batch-norm statistics still follow the new data during the head epochs (the
layers run in training mode); their learned scales and shifts stay fixed.
"""

from __future__ import annotations

import re

import keras

__all__ = ["FineTuneSchedule", "finetune_model", "head_layers", "head_patterns",
           "replace_classifier"]

CLASSIFIERS = ("predictions", "fc8")
AUX_SUFFIX = "_predictions"


def _layer_of(path):
    return path.split("/", 1)[0]


def _is_head_layer(name):
    return name in CLASSIFIERS or name.endswith(AUX_SUFFIX)


def head_layers(model) -> list[str]:
    """Names of ``model``'s classifier layers (with GoogLeNet's auxiliary ones)."""
    names = []
    for v in model.weights:
        layer = _layer_of(v.path)
        if _is_head_layer(layer) and layer not in names:
            names.append(layer)
    return names


def head_patterns(model) -> list[str]:
    """Regular expressions of the head variables' paths (for ``L2SGD(head=...)``)."""
    return [f"^{re.escape(name)}/" for name in head_layers(model)]


def replace_classifier(model, classes, rebuild):
    """``model`` with its classifiers replaced by new ones of ``classes`` outputs.

    Args:
        model: a built network with pretrained weights.
        classes: the new number of classes.
        rebuild: ``rebuild(classes)`` builds the same network (same arguments) with
            ``classes`` outputs and fresh weights: its heads are the new heads.

    Returns:
        The rebuilt model with every non-head variable copied from ``model``.
    """
    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 1:
        raise ValueError(f"`classes` must be an integer >= 1. Received: classes={classes!r}")
    heads = head_layers(model)
    if not heads:
        raise ValueError(
            f"{model.name} has no classifier layer named {' or '.join(CLASSIFIERS)}: built "
            "with include_top=False? Received: a model without its top")
    new = rebuild(classes)
    source = {v.path: v for v in model.weights}
    for v in new.weights:
        if _is_head_layer(_layer_of(v.path)):
            continue
        old = source.get(v.path)
        if old is None or tuple(old.shape) != tuple(v.shape):
            found = None if old is None else tuple(old.shape)
            raise ValueError(
                f"Cannot carry {v.path} {tuple(v.shape)} over from the pretrained "
                f"network (it has {found}): the rebuilt network differs.")
        v.assign(old)
    return new


def finetune_model(network, weights, classes, input_shape, **options):
    """``network`` with pretrained ``weights`` (a set name or a file of the 1000-class
    network) and, when ``classes`` is not 1000, new classifiers of ``classes``."""
    from kerascnn.applications.registry import get_model

    model = get_model(network, weights=weights, classes=1000, include_top=True,
                      input_shape=tuple(input_shape), **options)
    if classes == 1000:
        return model
    new = replace_classifier(
        model, classes,
        lambda c: get_model(network, classes=c, include_top=True,
                            input_shape=tuple(input_shape), **options))
    from kerascnn.data.carried import attach, carried  # the weights' input, new classes

    prep, _, where = carried(model)
    return new if prep is None else attach(new, prep, where=where)


class FineTuneSchedule(keras.callbacks.Callback):
    """New head only for ``head_epochs`` epochs, then the whole network at ``factor``
    times the learning rate (see the module doc). The model's optimizer must be an
    ``L2SGD`` built with ``head=head_patterns(model)``."""

    def __init__(self, head_epochs, factor):
        super().__init__()
        if isinstance(head_epochs, bool) or not isinstance(head_epochs, int) or head_epochs < 0:
            raise ValueError(f"`head_epochs` must be an int >= 0. Received: head_epochs={head_epochs!r}")
        if not 0.0 < factor <= 1.0:
            raise ValueError(f"`factor` must be in (0, 1]. Received: factor={factor!r}")
        self.head_epochs, self.factor = head_epochs, float(factor)

    def scales(self, epoch):
        """``(head, body)`` learning-rate multipliers of epoch ``epoch`` (0-based)."""
        if epoch < self.head_epochs:
            return 1.0, 0.0
        return (self.factor, self.factor) if self.head_epochs else (1.0, 1.0)

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.model.optimizer
        if not getattr(optimizer, "head", None):
            raise ValueError("FineTuneSchedule needs an L2SGD built with head=[...]. "
                             f"Received: optimizer={type(optimizer).__name__}")
        if not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        optimizer.set_scales(*self.scales(epoch))
