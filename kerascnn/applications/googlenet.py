"""GoogLeNet (Inception v1): Szegedy et al., "Going Deeper with Convolutions",
CVPR 2015 (Table 1, Figure 3, §5).

Faithful to the paper: the 5×5 branch really is 5×5 (torchvision uses 3×3, a known
bug kept for its ported weights), no batch norm, ReLU after every conv, LRN in the
stem (after pool1 and after conv2), dropout 0.4 before the classifier, and the two
auxiliary classifiers on the outputs of 4a and 4d: 5×5/3 average pool, 128 1×1 conv
+ ReLU, fc 1024 + ReLU, dropout 0.7, fc ``classes``; their losses are added with
weight 0.3 during training and they are dropped at inference
(:class:`kerascnn.layers.AuxiliaryLossModel`).

Choices the paper leaves open / departures:
- the 7×7/2 stem conv pads symmetrically (3 pixels); max pools use "same" padding,
  which gives the paper's (Caffe ceil-mode) map sizes 112→56→28→14→7;
- the final 7×7 average pool is a global average pool (identical at 224×224, and
  it lets any input size through);
- LRN uses the layer's defaults (AlexNet's k=2, n=5, α=1e-4, β=0.75); the paper
  gives no values (Caffe's bvlc_googlenet uses k=1, α=1e-4/n);
- init: the paper gives none; we use the Caffe reference model's: Xavier (Glorot
  uniform) weights, conv biases 0.2, fc biases 0.

Layer names follow the Caffe model: ``conv1_7x7_s2``, ``pool1_3x3_s2``, ``pool1_norm1``,
``conv2_3x3_reduce``, ``conv2_3x3``, ``conv2_norm2``, ``pool2_3x3_s2``,
``inception_3a_1x1`` ... ``inception_3a_output``, ``pool3_3x3_s2``, ...,
``avg_pool``, ``dropout``, ``predictions``; auxiliary heads ``aux1_*``/``aux2_*``.
"""

from __future__ import annotations

import keras

from kerascnn.applications import _common
from kerascnn.applications.registry import ModelInfo, register_model, results
from kerascnn.layers import AuxiliaryLossModel, LocalResponseNormalization

DEFAULT_SIZE = (224, 224)

# name: (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj)  (Table 1)
INCEPTION = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}
_POOL_AFTER = {"3b": "pool3_3x3_s2", "4e": "pool4_3x3_s2"}
_AUX_AFTER = {"4a": "aux1", "4d": "aux2"}


def _conv(x, filters, kernel, name, strides=1, padding="same"):
    return keras.layers.Conv2D(
        filters,
        kernel,
        strides=strides,
        padding=padding,
        activation="relu",
        kernel_initializer="glorot_uniform",
        bias_initializer=keras.initializers.Constant(0.2),
        name=name,
    )(x)


def scaled(filters, width):
    """``filters`` times ``width``, rounded, at least 1 (``width=1``: the paper's)."""
    return max(1, int(round(filters * width)))


def inception(x, spec, name, width=1.0):
    """The Inception module with dimension reductions (Figure 2b); ``width`` scales
    every branch's filters (1: Table 1's)."""
    n1, n3r, n3, n5r, n5, proj = (scaled(c, width) for c in spec)
    b1 = _conv(x, n1, 1, f"{name}_1x1")
    b3 = _conv(_conv(x, n3r, 1, f"{name}_3x3_reduce"), n3, 3, f"{name}_3x3")
    b5 = _conv(_conv(x, n5r, 1, f"{name}_5x5_reduce"), n5, 5, f"{name}_5x5")
    bp = keras.layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    bp = _conv(bp, proj, 1, f"{name}_pool_proj")
    return keras.layers.Concatenate(axis=-1, name=f"{name}_output")([b1, b3, b5, bp])


def aux_head(x, classes, classifier_activation, dropout, name, width=1.0):
    """An auxiliary classifier (§5): avgpool 5/3, 1×1×128, fc 1024, dropout, fc
    (``width`` scales the 128 and 1024)."""
    x = keras.layers.AveragePooling2D(5, strides=3, name=f"{name}_ave_pool")(x)
    x = _conv(x, scaled(128, width), 1, f"{name}_conv")
    x = keras.layers.Flatten(name=f"{name}_flatten")(x)
    x = keras.layers.Dense(scaled(1024, width), activation="relu", name=f"{name}_fc")(x)
    x = keras.layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return keras.layers.Dense(
        classes,
        activation=classifier_activation,
        dtype=_common.head_dtype(),
        name=f"{name}_predictions",
    )(x)


def GoogLeNet(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    aux_logits=False,
    aux_loss_weight=0.3,
    dropout=0.4,
    aux_dropout=0.7,
    name="googlenet",
):
    """GoogLeNet (Szegedy et al., 2015): 6,998,552 params, 13,378,280 with aux heads.

    Args:
        include_top: include global average pool, dropout and the classifier.
        weights: None (random init), a weight set's name (e.g. "imagenet": see
            ``get_model_info(name).weight_sets``) or the path of a weights file
            (Keras' own or a publisher's); inputs then are RGB, 0-255, minus the
            set's mean (``preprocess_input``).
        input_tensor: optional Keras tensor to use as the input.
        input_shape: (H, W, C), C in {1, 3}; default (224, 224, 3). Any size of at
            least 32×32 works (65×65 with ``aux_logits=True``: the auxiliary 5×5
            pool needs a 5×5 map at 4a, which is 1/16 of the input).
        pooling: with ``include_top=False``: None (the 5b map), "avg" or "max".
        classes: number of classes.
        classifier_activation: activation of the classifiers (None gives logits;
            then compile with ``from_logits=True``).
        aux_logits: add the two auxiliary classifiers for training. The model's
            output is still the main head only (one tensor, in training and at
            inference); ``fit`` adds ``aux_loss_weight * (aux1 + aux2)`` to the
            compiled loss, computed with the compiled loss function.
            ``model.with_aux_outputs()`` gives ``inputs -> [main, aux1, aux2]``.
        aux_loss_weight: weight of the auxiliary losses (0.3 in the paper).
        dropout: dropout rate before the main classifier (0.4 in the paper).
        aux_dropout: dropout rate in the auxiliary heads (0.7 in the paper).
        name: model name.

    Returns:
        A functional ``keras.Model``; with ``aux_logits=True`` a
        :class:`kerascnn.layers.AuxiliaryLossModel` (also functional).
    """
    return build(
        stem=imagenet_stem, width=1.0, network="googlenet", default_size=DEFAULT_SIZE,
        min_size=65 if aux_logits else 32, include_top=include_top, weights=weights,
        input_tensor=input_tensor, input_shape=input_shape, pooling=pooling,
        classes=classes, classifier_activation=classifier_activation,
        aux_logits=aux_logits, aux_loss_weight=aux_loss_weight, dropout=dropout,
        aux_dropout=aux_dropout, name=name,
    )


def imagenet_stem(x, width=1.0):
    """Table 1's stem: 7×7/2 conv, max-pool /2, LRN, 1×1 and 3×3 convs, LRN,
    max-pool /2 (1/8 of the input at 3a)."""
    x = keras.layers.ZeroPadding2D(3, name="conv1_pad")(x)
    x = _conv(x, scaled(64, width), 7, "conv1_7x7_s2", strides=2, padding="valid")
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="pool1_3x3_s2")(x)
    x = LocalResponseNormalization(name="pool1_norm1")(x)
    x = _conv(x, scaled(64, width), 1, "conv2_3x3_reduce")
    x = _conv(x, scaled(192, width), 3, "conv2_3x3")
    x = LocalResponseNormalization(name="conv2_norm2")(x)
    return keras.layers.MaxPooling2D(3, strides=2, padding="same", name="pool2_3x3_s2")(x)


def build(*, stem, width, network, default_size, min_size, include_top, weights,
          input_tensor, input_shape, pooling, classes, classifier_activation, aux_logits,
          aux_loss_weight, dropout, aux_dropout, name):
    """The network of Table 1 after ``stem(x, width)`` (the input -> 3a's input), its
    inception modules and auxiliary heads ``width`` wide: :func:`GoogLeNet` and the
    scaled networks (:mod:`kerascnn.applications.googlenet_scaled`) share it.
    ``network``: the registry name (weights)."""
    if not isinstance(aux_logits, bool):
        raise ValueError(f"`aux_logits` must be True or False. Received: aux_logits={aux_logits!r}")
    if aux_logits and not include_top:
        raise ValueError(
            "The auxiliary classifiers need the classification top; use "
            f"include_top=True or aux_logits=False. Received: aux_logits={aux_logits}"
        )
    for arg, rate in (("dropout", dropout), ("aux_dropout", aux_dropout)):
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"`{arg}` must be in [0, 1). Received: {arg}={rate!r}")
    if not aux_loss_weight >= 0:
        raise ValueError(
            f"`aux_loss_weight` must be >= 0. Received: aux_loss_weight={aux_loss_weight!r}"
        )
    input_shape = _common.check_common_args(
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        default_size=default_size,
        min_size=min_size,
    )
    weights_plan = _common.resolve_weights(
        weights, network=network, family="googlenet", include_top=include_top, classes=classes,
        input_shape=input_shape, aux_logits=aux_logits,
    )
    img_input = _common.make_input(input_tensor, input_shape)

    x = stem(img_input, width)

    aux_outputs = []
    for block, spec in INCEPTION.items():
        x = inception(x, spec, f"inception_{block}", width)
        if aux_logits and block in _AUX_AFTER:
            aux_outputs.append(
                aux_head(x, classes, classifier_activation, aux_dropout, _AUX_AFTER[block],
                         width)
            )
        if block in _POOL_AFTER:
            x = keras.layers.MaxPooling2D(
                3, strides=2, padding="same", name=_POOL_AFTER[block]
            )(x)

    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = keras.layers.Dropout(dropout, name="dropout")(x)
        x = keras.layers.Dense(
            classes,
            activation=classifier_activation,
            dtype=_common.head_dtype(),
            name="predictions",
        )(x)
    else:
        x = _common.global_pool(x, pooling)
    inputs = _common.model_inputs(input_tensor, img_input)
    if aux_logits:
        model = AuxiliaryLossModel(
            inputs, x, aux_outputs, aux_loss_weight=aux_loss_weight, name=name
        )
    else:
        model = keras.Model(inputs, x, name=name)
    return _common.load_weights(model, weights_plan)


register_model(ModelInfo(
    name="googlenet",
    builder=GoogLeNet,
    family="googlenet",
    input_shape=(*DEFAULT_SIZE, 3),
    classes=1000,
    params=6_998_552,
    macs=1_582_671_872,
    paper_results={
        **results("center", None, 10.07, "ILSVRC-2014 val", "1 model, 1 crop (Table 3)"),
        **results("10crop", None, 9.15, "ILSVRC-2014 val", "1 model, 10 crops (Table 3)"),
        **results("144crop", None, 7.89, "ILSVRC-2014 val", "1 model, 144 crops (Table 3)"),
    },
    recipe="googlenet_imagenet",
    description="GoogLeNet (Inception v1); aux_logits=True adds the training heads",
))
