"""AlexNet: Krizhevsky, Sutskever, Hinton, "ImageNet Classification with Deep
Convolutional Neural Networks", NeurIPS 2012.

The paper's net, not torchvision's "one weird trick" variant: 96-256-384-384-256
filters, ReLU, local response normalisation after conv1 and conv2 (k=2, n=5,
α=1e-4, β=0.75, α not divided by n), overlapping 3×3 stride-2 max pooling, dropout
0.5 in fc6 and fc7. ``groups=2`` (default) is the paper's two-GPU split: conv2,
conv4 and conv5 only see the half of the previous layer on their own GPU (conv3 and
the fc layers are fully connected across the halves); ``groups=1`` is the one-tower
net. Init as §5: weights N(0, 0.01), biases 1 in conv2, conv4, conv5, fc6, fc7 and 0
elsewhere.

Departures: the input is 227×227 (the paper writes 224, but 227 makes conv1's
arithmetic give 55×55); the split is a grouped convolution on one device.

Layer names: ``conv1 norm1 pool1 conv2 norm2 pool2 conv3 conv4 conv5 pool5`` then
the head ``flatten fc6 drop6 fc7 drop7 fc8`` (ReLU inside the conv/fc layers).
"""

from __future__ import annotations

import keras

from kerascnn.applications import _common
from kerascnn.applications.registry import ModelInfo, register_model, results
from kerascnn.layers import LocalResponseNormalization

DEFAULT_SIZE = (227, 227)
# The smallest input whose conv5 map survives pool5 (conv1 11/4 valid, three
# 3×3/2 valid pools): 11 + 4 * (2 * (2 * 3 + 1) + 1 - 1) = 67.
MIN_SIZE = 67

# (name, filters, kernel, strides, padding, grouped, bias, LRN after, pool after)
_CONVS = (
    ("conv1", 96, 11, 4, "valid", False, 0.0, True, True),
    ("conv2", 256, 5, 1, "same", True, 1.0, True, True),
    ("conv3", 384, 3, 1, "same", False, 0.0, False, False),
    ("conv4", 384, 3, 1, "same", True, 1.0, False, False),
    ("conv5", 256, 3, 1, "same", True, 1.0, False, True),
)


def _weights_init():
    return keras.initializers.RandomNormal(mean=0.0, stddev=0.01)


def _kernel_init(kernel_initializer):
    """A fresh initializer per layer: the paper's N(0, 0.01) (None), else Keras' own."""
    if kernel_initializer is None:
        return _weights_init()
    return keras.initializers.get(kernel_initializer)


def conv_stack(x, convs, *, groups, lrn=True, pool_size=3, pool_strides=2,
               pool_padding="valid", kernel_initializer=None, biases=True):
    """The trunk ``conv1 norm1 pool1 conv2 norm2 pool2 conv3 conv4 conv5 pool5``.

    Args:
      convs: rows as ``_CONVS`` (name, filters, kernel, strides, padding, grouped,
        bias, LRN after, pool after).
      groups: the groups of the rows marked grouped (the paper's two-GPU split: 2).
      lrn: the local response normalisation of §3.3 after the rows marked so.
      pool_size, pool_strides, pool_padding: the max pools after the rows marked so
        (§3.4: the paper's overlapping z=3, s=2; z=s=2 is the non-overlapping
        pooling it compares with).
      kernel_initializer: default the paper's N(0, 0.01) (§5).
      biases: the table's constant biases (§5: 1 in conv2, conv4, conv5); False: 0.
    """
    for layer_name, filters, kernel, strides, padding, grouped, bias, norm, pool in convs:
        x = keras.layers.Conv2D(
            filters,
            kernel,
            strides=strides,
            padding=padding,
            groups=groups if grouped else 1,
            activation="relu",
            kernel_initializer=_kernel_init(kernel_initializer),
            bias_initializer=keras.initializers.Constant(bias if biases else 0.0),
            name=layer_name,
        )(x)
        index = layer_name[-1]
        if norm and lrn:
            x = LocalResponseNormalization(
                depth_radius=2, bias=2.0, alpha=1e-4, beta=0.75, name=f"norm{index}"
            )(x)
        if pool:
            x = keras.layers.MaxPooling2D(pool_size, strides=pool_strides,
                                          padding=pool_padding, name=f"pool{index}")(x)
    return x


def fc_head(x, classes, classifier_activation, *, width, dropout, fc_bias,
            kernel_initializer=None):
    """``flatten -> fc6 -> drop6 -> fc7 -> drop7 -> fc8``, shared with VGG and the
    scaled AlexNet (``kernel_initializer``: default the paper's N(0, 0.01))."""
    x = keras.layers.Flatten(name="flatten")(x)
    for i in (6, 7):
        x = keras.layers.Dense(
            width,
            activation="relu",
            kernel_initializer=_kernel_init(kernel_initializer),
            bias_initializer=keras.initializers.Constant(fc_bias),
            name=f"fc{i}",
        )(x)
        x = keras.layers.Dropout(dropout, name=f"drop{i}")(x)
    return keras.layers.Dense(
        classes,
        activation=classifier_activation,
        kernel_initializer=_kernel_init(kernel_initializer),
        bias_initializer="zeros",
        dtype=_common.head_dtype(),
        name="fc8",
    )(x)


def AlexNet(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    groups=2,
    name="alexnet",
):
    """AlexNet (Krizhevsky et al., 2012), 60,965,224 params (62,378,344 one-tower).

    Args:
        include_top: include ``flatten fc6 drop6 fc7 drop7 fc8``. fc6 is sized for
            the 6×6×256 map of a 227×227 input, so ``include_top=True`` needs
            exactly that size.
        weights: None (random init), a weight set's name (e.g. "imagenet": see
            ``get_model_info(name).weight_sets``) or the path of a weights file
            (Keras' own or a publisher's); inputs then are RGB, 0-255, minus the
            set's mean (``preprocess_input``).
        input_tensor: optional Keras tensor to use as the input.
        input_shape: (H, W, C), C in {1, 3}; default (227, 227, 3); at least
            67×67 with ``include_top=False``.
        pooling: with ``include_top=False``: None (the pool5 map), "avg", "max".
        classes: number of classes.
        classifier_activation: activation of fc8 (None gives logits).
        groups: 2 (the paper's two-GPU split, default) or 1 (one tower).
        name: model name.

    Returns:
        A functional ``keras.Model``.
    """
    _common.check_choice("groups", groups, (1, 2))
    input_shape = _common.check_common_args(
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        default_size=DEFAULT_SIZE,
        min_size=MIN_SIZE,
        exact_size_with_top=True,
        top_reason=" (fc6 is sized for the 6x6x256 pool5 map)",
    )
    weights_plan = _common.resolve_weights(
        weights, network="alexnet", family="alexnet", include_top=include_top, classes=classes,
        input_shape=input_shape, groups=groups,
    )
    img_input = _common.make_input(input_tensor, input_shape)
    x = conv_stack(img_input, _CONVS, groups=groups)
    if include_top:
        x = fc_head(x, classes, classifier_activation, width=4096, dropout=0.5, fc_bias=1.0)
    else:
        x = _common.global_pool(x, pooling)
    model = keras.Model(_common.model_inputs(input_tensor, img_input), x, name=name)
    return _common.load_weights(model, weights_plan)


register_model(ModelInfo(
    name="alexnet",
    builder=AlexNet,
    family="alexnet",
    input_shape=(*DEFAULT_SIZE, 3),
    classes=1000,
    params=60_965_224,
    macs=724_406_816,
    paper_results=results("10crop", 40.7, 18.2, "ILSVRC-2012 val", "1 CNN (§6)"),
    recipe="alexnet_imagenet",
    description="AlexNet, two-GPU grouping (groups=2)",
))
