"""The AlexNet paper's small networks (Krizhevsky, Sutskever, Hinton, "ImageNet
Classification with Deep Convolutional Neural Networks", NeurIPS 2012), for the
studies of ``kerascnn reproduce relu`` and ``alexnet-ablations``.

- :func:`AlexNetFig1` (``alexnet_fig1``): the "four-layer convolutional neural
  network" of §3.1 / Figure 1 (ReLU vs tanh on CIFAR-10). The paper does not give
  its layers; **our choice**, after cuda-convnet's ``layers-18pct`` CIFAR-10 net
  (Krizhevsky's code of the time): three 5×5 convolutions of ``width``, ``width``,
  ``2 width`` filters (32-32-64), each followed by a 3×3 stride-2 max pool ("same"
  padding), and one fully connected softmax layer: four layers with weights. The
  hidden units' ``activation`` is ``"relu"`` or ``"tanh"`` (the figure's two nets);
  no LRN, no dropout, no weight decay (the figure's nets are unregularised). Glorot
  uniform init (Keras' default) for both activations.
- :func:`AlexNetSmall` (``alexnet_small``): AlexNet scaled down to small images with
  AlexNet's own layer pattern and the same trunk and head functions
  (:func:`kerascnn.applications.alexnet.conv_stack`, ``fc_head``): five
  convolutions (LRN after conv1 and conv2, max pools after conv1, conv2, conv5),
  then fc6, fc7 (ReLU, dropout) and fc8. Scaled: the filters are ``width`` × the
  paper's 96-256-384-384-256 (default 1/8: 12-32-48-48-32), fc6/fc7 have
  ``fc_width`` units (default 256, the paper's 4096), conv1 is 5×5 stride 1 (the
  paper's 11×11 stride 4 is for 227-pixel images), every convolution and pool pads
  "same" (so the overlapping and the non-overlapping pools give the same map sizes
  and the variants the same parameters: 32 → 16 → 8 → 4), one tower (the paper's
  two-GPU split was for memory), He-normal init with zero biases (the paper's
  N(0, 0.01) with biases 1 starts too slowly for a short CPU budget). The options
  of the paper's ablations: ``lrn`` (§3.3), ``overlap`` (§3.4: z=3, s=2; False:
  z=s=2) and ``dropout`` (§4.2: 0.5; 0: none).
"""

from __future__ import annotations

import keras

from kerascnn.applications import _common
from kerascnn.applications.alexnet import _CONVS, conv_stack, fc_head
from kerascnn.applications.registry import ModelInfo, register_model

__all__ = ["AlexNetFig1", "AlexNetSmall", "PAPER_ALEXNET_PARAMS", "small_convs"]

# PAPERS.md: AlexNet (two towers, 1000 classes, 227x227): 60,965,224 parameters.
PAPER_ALEXNET_PARAMS = 60_965_224
_ACTIVATIONS = ("relu", "tanh")


def AlexNetFig1(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    activation="relu",
    width=32,
    input_scale=1 / 64,
    name="alexnet_fig1",
):
    """The four-layer network of AlexNet's Figure 1 (§3.1), as we choose it (module
    docstring): ``conv1 pool1 conv2 pool2 conv3 pool3`` (5×5, ``width``-``width``-
    ``2 width`` filters, 3×3 stride-2 max pools) then ``flatten predictions``.

    Args:
        include_top: include ``flatten`` and ``predictions``.
        weights: None (random initialisation) or the path of a Keras weights file.
        input_tensor: optional Keras tensor to use as the input.
        input_shape: (H, W, C), C in {1, 3}; default (32, 32, 3) (CIFAR-10); any
            size of at least 8×8 (with ``include_top``: a fixed size).
        pooling: with ``include_top=False``: None (4-D features), "avg" or "max".
        classes: number of classes (default 10).
        classifier_activation: activation of ``predictions``; None gives logits.
        activation: the hidden units' non-linearity: "relu" (the paper's ReLU) or
            "tanh" (the saturating unit it compares with).
        width: filters of conv1 and conv2 (conv3 has twice as many); default 32.
        input_scale: the first layer (``scale``, no weights) multiplies the input
            by this: kerascnn's pipelines give 0-255 pixels minus the mean (pixel std
            about 64), so 1/64 starts the units unsaturated (cuda-convnet did the
            same with a 1e-4 first-layer init); 1 keeps the raw scale.
        name: model name.

    Returns:
        A functional ``keras.Model``.
    """
    _common.check_choice("activation", activation, _ACTIVATIONS)
    _common.check_positive("width", width)
    _common.check_positive("input_scale", input_scale, integer=False)
    input_shape = _common.check_common_args(
        include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        default_size=(32, 32), min_size=8)
    weights_plan = _common.resolve_weights(
        weights, network="alexnet_fig1", family="alexnet", include_top=include_top,
        classes=classes, input_shape=input_shape)
    img_input = _common.make_input(input_tensor, input_shape)
    x = keras.layers.Rescaling(float(input_scale), name="scale")(img_input)
    for i, filters in enumerate((width, width, 2 * width), start=1):
        x = keras.layers.Conv2D(filters, 5, padding="same", activation=activation,
                                name=f"conv{i}")(x)
        x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name=f"pool{i}")(x)
    if include_top:
        x = keras.layers.Flatten(name="flatten")(x)
        x = keras.layers.Dense(classes, activation=classifier_activation,
                               dtype=_common.head_dtype(), name="predictions")(x)
    else:
        x = _common.global_pool(x, pooling)
    model = keras.Model(_common.model_inputs(input_tensor, img_input), x, name=name)
    return _common.load_weights(model, weights_plan)


def small_convs(width):
    """AlexNet's conv table (``alexnet._CONVS``) scaled: filters × ``width``, conv1
    5×5 stride 1, "same" padding everywhere (module docstring)."""
    rows = []
    for layer, filters, kernel, strides, _, grouped, bias, lrn, pool in _CONVS:
        if layer == "conv1":
            kernel, strides = 5, 1
        rows.append((layer, max(1, int(round(filters * width))), kernel, strides, "same",
                     grouped, bias, lrn, pool))
    return tuple(rows)


def AlexNetSmall(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    width=0.125,
    fc_width=256,
    lrn=True,
    overlap=True,
    dropout=0.5,
    input_scale=1 / 64,
    name="alexnet_small",
):
    """AlexNet scaled down for 32-pixel images (module docstring): the paper's layer
    pattern ``conv1 norm1 pool1 conv2 norm2 pool2 conv3 conv4 conv5 pool5 flatten fc6
    drop6 fc7 drop7 fc8``, narrower.

    Args:
        include_top: include ``flatten fc6 drop6 fc7 drop7 fc8`` (fc6 is sized for
            the pool5 map, so the input size is then fixed by ``input_shape``).
        weights: None (random initialisation) or the path of a Keras weights file.
        input_tensor: optional Keras tensor to use as the input.
        input_shape: (H, W, C), C in {1, 3}; default (32, 32, 3); at least 8×8.
        pooling: with ``include_top=False``: None (the pool5 map), "avg" or "max".
        classes: number of classes (default 10).
        classifier_activation: activation of fc8; None gives logits.
        width: the filters as a fraction of the paper's 96-256-384-384-256
            (default 0.125: 12-32-48-48-32).
        fc_width: units of fc6 and fc7 (the paper's 4096; default 256).
        lrn: local response normalisation after conv1 and conv2 (§3.3; default True).
        overlap: overlapping max pooling, 3×3 stride 2 (§3.4; default True); False:
            2×2 stride 2, the non-overlapping pooling the paper compares with.
        dropout: the rate of drop6 and drop7 (§4.2: 0.5; 0 trains without dropout).
        input_scale: the first layer (``scale``, no weights) multiplies the input
            by this: kerascnn's pipelines give 0-255 pixels minus the mean (pixel std
            about 64), so 1/64 starts the units unsaturated (cuda-convnet did the
            same with a 1e-4 first-layer init); 1 keeps the raw scale.
        name: model name.

    Returns:
        A functional ``keras.Model``.
    """
    _common.check_positive("width", width, integer=False)
    _common.check_positive("fc_width", fc_width)
    _common.check_positive("input_scale", input_scale, integer=False)
    for flag, value in (("lrn", lrn), ("overlap", overlap)):
        if not isinstance(value, bool):
            raise ValueError(f"`{flag}` must be True or False. Received: {flag}={value!r}")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) \
            or not 0 <= dropout < 1:
        raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout!r}")
    input_shape = _common.check_common_args(
        include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        default_size=(32, 32), min_size=8)
    weights_plan = _common.resolve_weights(
        weights, network="alexnet_small", family="alexnet", include_top=include_top,
        classes=classes, input_shape=input_shape)
    img_input = _common.make_input(input_tensor, input_shape)
    size = 3 if overlap else 2
    x = keras.layers.Rescaling(float(input_scale), name="scale")(img_input)
    x = conv_stack(x, small_convs(width), groups=1, lrn=lrn, pool_size=size,
                   pool_strides=2, pool_padding="same", kernel_initializer="he_normal",
                   biases=False)
    if include_top:
        x = fc_head(x, classes, classifier_activation, width=int(fc_width),
                    dropout=float(dropout), fc_bias=0.0, kernel_initializer="he_normal")
    else:
        x = _common.global_pool(x, pooling)
    model = keras.Model(_common.model_inputs(input_tensor, img_input), x, name=name)
    return _common.load_weights(model, weights_plan)


# name: (builder, params, macs at the default input, recipe, description); the counts
# are checked against hand counts by tests/applications/test_alexnet_scaled.py
_TABLE = {
    "alexnet_fig1": (AlexNetFig1, 89_578, 12_298_240, "alexnet_fig1_cifar10",
                     "AlexNet Figure 1's four-layer net (our layers), relu or tanh"),
    "alexnet_small": (AlexNetSmall, 258_746, 6_674_944, "alexnet_small_cifar10",
                      "AlexNet scaled to 32x32 (widths 1/8, fc 256): the ablations' net"),
}
for _name, (_builder, _params, _macs, _recipe, _description) in _TABLE.items():
    register_model(ModelInfo(name=_name, builder=_builder, family="alexnet",
                             input_shape=(32, 32, 3), classes=10, params=_params,
                             macs=_macs, paper_results={}, recipe=_recipe,
                             description=_description))
