"""A scaled-down GoogLeNet for small images: Table 1's nine inception modules and
the two auxiliary heads of Szegedy et al., "Going Deeper with Convolutions", CVPR 2015,
``width`` times as wide (default 1/8), after a stem for 28×28 inputs.

The same code as :func:`kerascnn.applications.GoogLeNet` (its ``build``, ``inception``
and ``aux_head``); what is scaled:

- the stem: a 3×3 stride-1 conv instead of the 7×7/2, and no ``pool2``, so the input
  is divided by 2 (not 8) before 3a: at 28×28 the modules see 14×14 (3a, 3b), 7×7
  (4a-4e) and 4×4 (5a, 5b) maps (the paper: 28, 14, 7 at 224×224). The stem keeps
  the paper's max-pool /2, both LRNs and the 1×1 reduction before the 3×3 conv;
- every filter count (stem, inception branches, the heads' 128-filter conv and
  1024-unit fc) times ``width`` (default 1/8, rounded; Table 1's counts are all
  multiples of 8 but the 5×5 reductions' 16 and 24, which give 2 and 3);
- the auxiliary heads keep the 5×5/3 average pool: on 4a's and 4d's 7×7 maps it
  gives 1×1 (the paper's 4×4 from 14×14).

Parameters at the default (28, 28, 1), 10 classes: 95,348 without the auxiliary heads
(the paper's GoogLeNet: 6,998,552 at 224×224×3 and 1000 classes, "about 6.8M" in
PAPERS.md), 104,392 with them. Layer names are the full network's (``inception_4a_1x1``,
``aux1_fc``, ...) except the stem's 3×3 conv, ``conv1_3x3``.
"""

from __future__ import annotations

import keras

from kerascnn.applications import _common, googlenet
from kerascnn.applications.registry import ModelInfo, register_model
from kerascnn.layers import LocalResponseNormalization

__all__ = ["GoogLeNetScaled", "PAPER_PARAMS", "small_stem"]

DEFAULT_SIZE = (28, 28)
PAPER_PARAMS = 6_998_552  # the full GoogLeNet's, without the auxiliary heads


def small_stem(x, width=0.125):
    """The stem for small inputs: 3×3/1 conv, max-pool 3×3/2, LRN, 1×1 and 3×3
    convs, LRN (1/2 of the input at 3a; Table 1's divides by 8)."""
    x = googlenet._conv(x, googlenet.scaled(64, width), 3, "conv1_3x3")
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="pool1_3x3_s2")(x)
    x = LocalResponseNormalization(name="pool1_norm1")(x)
    x = googlenet._conv(x, googlenet.scaled(64, width), 1, "conv2_3x3_reduce")
    x = googlenet._conv(x, googlenet.scaled(192, width), 3, "conv2_3x3")
    return LocalResponseNormalization(name="conv2_norm2")(x)


def GoogLeNetScaled(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    aux_logits=False,
    aux_loss_weight=0.3,
    width=0.125,
    dropout=0.4,
    aux_dropout=0.7,
    name="googlenet_scaled",
):
    """A scaled GoogLeNet (module docstring): 95,348 params at 28×28×1, 10 classes
    (the paper's network: 6,998,552).

    Args:
        include_top, weights, input_tensor, input_shape, pooling, classes,
        classifier_activation, aux_logits, aux_loss_weight, dropout, aux_dropout,
        name: as :func:`kerascnn.applications.GoogLeNet` (default input (28, 28, 1),
            10 classes; at least 17×17 with ``aux_logits=True``: the heads' 5×5 pool
            needs a 5×5 map at 4a, 1/4 of the input).
        width: multiplier of every filter count (> 0; 1 gives Table 1's widths).
    """
    _common.check_positive("width", width, integer=False)
    if input_shape is None and input_tensor is None:
        input_shape = (*DEFAULT_SIZE, 1)  # Fashion-MNIST's grey images
    return googlenet.build(
        stem=small_stem, width=float(width), network="googlenet_scaled",
        default_size=DEFAULT_SIZE, min_size=17 if aux_logits else 8,
        include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, aux_logits=aux_logits,
        aux_loss_weight=aux_loss_weight, dropout=dropout, aux_dropout=aux_dropout,
        name=name,
    )


register_model(ModelInfo(
    name="googlenet_scaled",
    builder=GoogLeNetScaled,
    family="googlenet",
    input_shape=(*DEFAULT_SIZE, 1),
    classes=10,
    params=95_348,
    macs=4_866_972,
    paper_results={},
    recipe="googlenet_scaled_fashion_mnist",
    description="scaled GoogLeNet (1/8 width, 28x28 stem; the paper's: 7.0M params)",
))
