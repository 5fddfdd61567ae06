"""VGG: Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale
Image Recognition", ICLR 2015 (Table 1, configurations A to E).

One table of configurations, one constructor: an int is a 3×3 stride-1 "same" conv
with ReLU, ``("1x1", n)`` a 1×1 conv (config C), ``"LRN"`` a local response
normalisation with AlexNet's parameters (config A-LRN), ``"M"`` a 2×2 stride-2 max
pool. Head: ``flatten fc6 (4096, ReLU) drop6 (0.5) fc7 (4096, ReLU) drop7 fc8``.
Init: weights N(0, 1e-2), zero biases (the paper's init for net A; the paper then
initialises the deeper nets from a trained A, which is a training-recipe matter:
``kerascnn train --init-from``).

Layer names: ``block{b}_conv{i}``, ``block1_lrn``, ``block{b}_pool``, then
``flatten fc6 drop6 fc7 drop7 fc8`` (what the dense evaluation converts).
"""

from __future__ import annotations

import keras

from kerascnn.applications import _common
from kerascnn.applications.alexnet import fc_head
from kerascnn.applications.registry import ModelInfo, register_model, results
from kerascnn.layers import LocalResponseNormalization

DEFAULT_SIZE = (224, 224)
MIN_SIZE = 32  # five 2×2/2 pools

_C1 = "1x1"
CONFIGS = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "A-LRN": [64, "LRN", "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "C": [64, 64, "M", 128, 128, "M", 256, 256, (_C1, 256), "M",
          512, 512, (_C1, 512), "M", 512, 512, (_C1, 512), "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M",
          512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
          512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}
_DEFAULT_NAMES = {"A": "vgg11", "A-LRN": "vgg11_lrn", "B": "vgg13", "C": "vgg16c",
                  "D": "vgg16", "E": "vgg19"}


def _init():
    return keras.initializers.RandomNormal(mean=0.0, stddev=0.01)


def VGG(
    config="D",
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
):
    """A VGG net of configuration ``config`` (Simonyan & Zisserman, 2015, Table 1).

    Args:
        config: "A", "A-LRN", "B", "C", "D" or "E".
        include_top: include ``flatten fc6 drop6 fc7 drop7 fc8``; fc6 is sized for
            the 7×7×512 map of a 224×224 input, so ``include_top=True`` needs
            exactly that size (for other sizes, use include_top=False or the
            fully-convolutional conversion of ``kerascnn.evaluation``).
        weights: None (random init), a weight set's name (e.g. "imagenet": see
            ``get_model_info(name).weight_sets``) or the path of a weights file
            (Keras' own or a publisher's); inputs then are RGB, 0-255, minus the
            set's mean (``preprocess_input``).
        input_tensor: optional Keras tensor to use as the input.
        input_shape: (H, W, C), C in {1, 3}; default (224, 224, 3); at least
            32×32 with ``include_top=False``.
        pooling: with ``include_top=False``: None (the last pool's map), "avg", "max".
        classes: number of classes.
        classifier_activation: activation of fc8 (None gives logits).
        name: model name (default ``vgg11``, ``vgg11_lrn``, ``vgg13``, ``vgg16c``,
            ``vgg16``, ``vgg19``).

    Returns:
        A functional ``keras.Model``.
    """
    return build(
        config, include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name,
    )


def stage_width(filters, width):
    """Filters of a layer of Table 1 (``filters``: 64, 128, 256 or 512) in a net whose
    first stage has ``width`` filters (the paper's: 64): ``filters * width / 64``."""
    return filters * width // 64


def build(
    config,
    *,
    include_top,
    weights,
    input_tensor,
    input_shape,
    pooling,
    classes,
    classifier_activation,
    name,
    width=64,
    fc_width=4096,
    dropout=0.5,
    default_size=DEFAULT_SIZE,
    kernel_initializer=None,
    default_names=None,
):
    """The constructor behind :func:`VGG` and the scaled nets
    (:mod:`kerascnn.applications.vgg_scaled`): configuration ``config`` of Table 1 with
    its first stage ``width`` filters wide (the others in proportion,
    :func:`stage_width`), ``fc_width`` units in fc6/fc7, ``dropout`` after them, sized
    for ``default_size`` inputs; ``kernel_initializer``: None is the paper's N(0, 1e-2)
    (conv and fc layers), else a Keras initializer for every conv and fc kernel.
    ``width=64, fc_width=4096`` is the paper's network."""
    _common.check_choice("config", config, tuple(CONFIGS))
    names = default_names or _DEFAULT_NAMES
    size = tuple(default_size)
    last = stage_width(512, width)
    map_side = size[0] // 32
    input_shape = _common.check_common_args(
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        default_size=size,
        min_size=MIN_SIZE,
        exact_size_with_top=True,
        top_reason=f" (fc6 is sized for the {map_side}x{map_side}x{last} map of the last pool)",
    )
    weights_plan = _common.resolve_weights(
        weights, network=names[config], family="vgg", include_top=include_top,
        classes=classes, input_shape=input_shape,
    )

    def init():
        return _init() if kernel_initializer is None else keras.initializers.get(kernel_initializer)

    img_input = _common.make_input(input_tensor, input_shape)
    x = img_input
    block, conv = 1, 0
    for item in CONFIGS[config]:
        if item == "M":
            x = keras.layers.MaxPooling2D(2, strides=2, name=f"block{block}_pool")(x)
            block, conv = block + 1, 0
        elif item == "LRN":
            x = LocalResponseNormalization(name=f"block{block}_lrn")(x)
        else:
            kernel, filters = (1, item[1]) if isinstance(item, tuple) else (3, item)
            conv += 1
            x = keras.layers.Conv2D(
                stage_width(filters, width),
                kernel,
                padding="same",
                activation="relu",
                kernel_initializer=init(),
                bias_initializer="zeros",
                name=f"block{block}_conv{conv}",
            )(x)
    if include_top:
        x = fc_head(x, classes, classifier_activation, width=fc_width, dropout=dropout,
                    fc_bias=0.0, kernel_initializer=kernel_initializer)
    else:
        x = _common.global_pool(x, pooling)
    model = keras.Model(
        _common.model_inputs(input_tensor, img_input), x, name=name or names[config]
    )
    return _common.load_weights(model, weights_plan)


# Public builders: the keras.applications signature, one configuration of Table 1 each.
def VGG11(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="vgg11",
):
    """VGG-11: 11 weight layers (configuration A)
    (Simonyan & Zisserman, 2015, Table 1); ``VGG(config="A")``.

    Args:
        include_top: include ``flatten fc6 drop6 fc7 drop7 fc8``; fc6 is sized for
            the 7×7×512 map of a 224×224 input, so ``include_top=True`` needs
            exactly that size.
        weights: None (random init), a weight set's name
            (``get_model_info("vgg11").weight_sets``) or the path of a weights file
            (Keras' own or a publisher's); inputs then are RGB, 0-255, minus the
            set's mean (``preprocess_input``).
        input_tensor: optional Keras tensor to use as the input.
        input_shape: (H, W, C), C in {1, 3}; default (224, 224, 3); at least
            32×32 with ``include_top=False``.
        pooling: with ``include_top=False``: None (the last pool's map), "avg", "max".
        classes: number of classes.
        classifier_activation: activation of fc8 (None gives logits).
        name: model name.

    Returns:
        A functional ``keras.Model``.
    """
    return VGG(
        "A", include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name,
    )


def VGG11LRN(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="vgg11_lrn",
):
    """VGG-11-LRN: configuration A with local response normalisation after the first
    conv (Simonyan & Zisserman, 2015, Table 1, A-LRN); ``VGG(config="A-LRN")``.

    Args:
        include_top: include ``flatten fc6 drop6 fc7 drop7 fc8``; fc6 is sized for
            the 7×7×512 map of a 224×224 input, so ``include_top=True`` needs
            exactly that size.
        weights: None (random init), a weight set's name
            (``get_model_info("vgg11_lrn").weight_sets``) or the path of a weights file
            (Keras' own or a publisher's); inputs then are RGB, 0-255, minus the
            set's mean (``preprocess_input``).
        input_tensor: optional Keras tensor to use as the input.
        input_shape: (H, W, C), C in {1, 3}; default (224, 224, 3); at least
            32×32 with ``include_top=False``.
        pooling: with ``include_top=False``: None (the last pool's map), "avg", "max".
        classes: number of classes.
        classifier_activation: activation of fc8 (None gives logits).
        name: model name.

    Returns:
        A functional ``keras.Model``.
    """
    return VGG(
        "A-LRN", include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name,
    )


def VGG13(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="vgg13",
):
    """VGG-13: 13 weight layers (configuration B)
    (Simonyan & Zisserman, 2015, Table 1); ``VGG(config="B")``.

    Args:
        include_top: include ``flatten fc6 drop6 fc7 drop7 fc8``; fc6 is sized for
            the 7×7×512 map of a 224×224 input, so ``include_top=True`` needs
            exactly that size.
        weights: None (random init), a weight set's name
            (``get_model_info("vgg13").weight_sets``) or the path of a weights file
            (Keras' own or a publisher's); inputs then are RGB, 0-255, minus the
            set's mean (``preprocess_input``).
        input_tensor: optional Keras tensor to use as the input.
        input_shape: (H, W, C), C in {1, 3}; default (224, 224, 3); at least
            32×32 with ``include_top=False``.
        pooling: with ``include_top=False``: None (the last pool's map), "avg", "max".
        classes: number of classes.
        classifier_activation: activation of fc8 (None gives logits).
        name: model name.

    Returns:
        A functional ``keras.Model``.
    """
    return VGG(
        "B", include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name,
    )


def VGG16C(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="vgg16c",
):
    """VGG-16-C: 16 weight layers with three 1×1 convs (configuration C)
    (Simonyan & Zisserman, 2015, Table 1); ``VGG(config="C")``.

    Args:
        include_top: include ``flatten fc6 drop6 fc7 drop7 fc8``; fc6 is sized for
            the 7×7×512 map of a 224×224 input, so ``include_top=True`` needs
            exactly that size.
        weights: None (random init), a weight set's name
            (``get_model_info("vgg16c").weight_sets``) or the path of a weights file
            (Keras' own or a publisher's); inputs then are RGB, 0-255, minus the
            set's mean (``preprocess_input``).
        input_tensor: optional Keras tensor to use as the input.
        input_shape: (H, W, C), C in {1, 3}; default (224, 224, 3); at least
            32×32 with ``include_top=False``.
        pooling: with ``include_top=False``: None (the last pool's map), "avg", "max".
        classes: number of classes.
        classifier_activation: activation of fc8 (None gives logits).
        name: model name.

    Returns:
        A functional ``keras.Model``.
    """
    return VGG(
        "C", include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name,
    )


def VGG16(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="vgg16",
):
    """VGG-16: 16 weight layers (configuration D)
    (Simonyan & Zisserman, 2015, Table 1); ``VGG(config="D")``.

    Args:
        include_top: include ``flatten fc6 drop6 fc7 drop7 fc8``; fc6 is sized for
            the 7×7×512 map of a 224×224 input, so ``include_top=True`` needs
            exactly that size.
        weights: None (random init), a weight set's name
            (``get_model_info("vgg16").weight_sets``) or the path of a weights file
            (Keras' own or a publisher's); inputs then are RGB, 0-255, minus the
            set's mean (``preprocess_input``).
        input_tensor: optional Keras tensor to use as the input.
        input_shape: (H, W, C), C in {1, 3}; default (224, 224, 3); at least
            32×32 with ``include_top=False``.
        pooling: with ``include_top=False``: None (the last pool's map), "avg", "max".
        classes: number of classes.
        classifier_activation: activation of fc8 (None gives logits).
        name: model name.

    Returns:
        A functional ``keras.Model``.
    """
    return VGG(
        "D", include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name,
    )


def VGG19(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="vgg19",
):
    """VGG-19: 19 weight layers (configuration E)
    (Simonyan & Zisserman, 2015, Table 1); ``VGG(config="E")``.

    Args:
        include_top: include ``flatten fc6 drop6 fc7 drop7 fc8``; fc6 is sized for
            the 7×7×512 map of a 224×224 input, so ``include_top=True`` needs
            exactly that size.
        weights: None (random init), a weight set's name
            (``get_model_info("vgg19").weight_sets``) or the path of a weights file
            (Keras' own or a publisher's); inputs then are RGB, 0-255, minus the
            set's mean (``preprocess_input``).
        input_tensor: optional Keras tensor to use as the input.
        input_shape: (H, W, C), C in {1, 3}; default (224, 224, 3); at least
            32×32 with ``include_top=False``.
        pooling: with ``include_top=False``: None (the last pool's map), "avg", "max".
        classes: number of classes.
        classifier_activation: activation of fc8 (None gives logits).
        name: model name.

    Returns:
        A functional ``keras.Model``.
    """
    return VGG(
        "E", include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name,
    )


_PUBLIC = {"A": VGG11, "A-LRN": VGG11LRN, "B": VGG13, "C": VGG16C, "D": VGG16, "E": VGG19}

# -- registry -----------------------------------------------------------------
_VAL = "ILSVRC-2012 val"
_T3 = "Table 3: dense, single scale, train S=256, test Q=256"
_T5 = "Table 5: train S in [256, 512], test Q in {256, 384, 512}"
_TABLE = {
    # config: (params (PAPERS.md), macs, paper_results)
    "A": (132_863_336, 7_609_090_048, results("dense", 29.6, 10.4, _VAL, _T3)),
    "A-LRN": (132_863_336, 7_609_090_048, results("dense", 29.7, 10.5, _VAL, _T3)),
    "B": (133_047_848, 11_308_466_176, results("dense", 28.7, 9.9, _VAL, _T3)),
    "C": (133_638_952, 11_770_888_192, results("dense", 28.1, 9.4, _VAL, _T3)),
    "D": (138_357_544, 15_470_264_320, {
        **results("dense", 24.8, 7.5, _VAL, _T5),
        **results("multicrop", 24.6, 7.5, _VAL, _T5),
        **results("dense+multicrop", 24.4, 7.2, _VAL, _T5),
    }),
    "E": (143_667_240, 19_632_062_464, {
        **results("dense", 24.8, 7.5, _VAL, _T5),
        **results("multicrop", 24.6, 7.4, _VAL, _T5),
        **results("dense+multicrop", 24.4, 7.1, _VAL, _T5),
    }),
}
for _config, (_params, _macs, _results) in _TABLE.items():
    _name = _DEFAULT_NAMES[_config]
    register_model(ModelInfo(
        name=_name,
        builder=_PUBLIC[_config],
        family="vgg",
        input_shape=(*DEFAULT_SIZE, 3),
        classes=1000,
        params=_params,
        macs=_macs,
        paper_results=_results,
        recipe=f"vgg_{_config.lower().replace('-', '_')}_imagenet",
        description=f"VGG configuration {_config}",
    ))
