"""ResNets and plain nets of He, Zhang, Ren, Sun, "Deep Residual Learning for Image
Recognition", CVPR 2016 (ImageNet §3.4/Table 1 and the CIFAR-10 nets of §4.2).

Variants are data: ``_IMAGENET[depth] = (block, blocks per stage)`` and
``_CIFAR[depth] = n``; every public builder has the keras.applications signature
(with its family's options) and calls :func:`_resnet` through ``_imagenet`` or
``_cifar``.

Faithful to the paper:
- conv layers without bias, each followed by batch norm; He (Kaiming) normal init,
  ``std = sqrt(2 / fan_in)`` untruncated (the paper's [13]), also for the fc layer;
- shortcut options (A) zero-padded identity, (B) projections where the dimensions
  grow (default for the ImageNet nets), (C) projections everywhere; the CIFAR nets
  use (A);
- the bottleneck's stride-2 sits on its first 1×1 conv (``stride_in_1x1=True``,
  as the paper and keras.applications.ResNet50); ``stride_in_1x1=False`` moves it to
  the 3×3 (torchvision's "ResNet v1.5");
- plain nets are the same stacks without shortcuts.

Departures / choices the paper leaves open: strided k×k convs and the stem pool pad
symmetrically (``ZeroPadding2D`` + valid, as Caffe/PyTorch), BN momentum 0.9 and
epsilon 1.001e-5 (torchvision's 1e-5 raised to the least value TensorFlow's fused
kernel takes, as keras.applications' ResNets; :class:`kerascnn.layers.BatchNormalization`
runs that kernel on the TensorFlow backend), ``zero_init_residual=True`` (off by default) zeroes
the last BN gamma of each residual block (Goyal et al., 2017).
"""

from __future__ import annotations

import functools

import keras

from kerascnn.applications import _common
from kerascnn.applications.registry import ModelInfo, register_model, results
from kerascnn.layers import BatchNormalization, ZeroPadShortcut
from kerascnn.layers.batch_norm import MIN_FUSED_EPSILON

SHORTCUTS = ("A", "B", "C")

_IMAGENET = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
_CIFAR = {20: 3, 32: 5, 44: 7, 56: 9, 110: 18}
# The CIFAR nets' output_stride (input side over the last feature map's): the strides of
# the first blocks of the three stages. The paper's is 4 (32x32 -> 8x8); 2 and 1 keep the
# later stages at the resolution before them (the CAM paper's finer last map, Zhou et al.
# 2016 §3: they remove GoogLeNet's layers after inception4e to get 14x14 at 224).
_OUTPUT_STRIDES = {4: (1, 2, 2), 2: (1, 2, 1), 1: (1, 1, 1)}

_BN = dict(axis=-1, momentum=0.9, epsilon=MIN_FUSED_EPSILON)


def _he_normal():
    return keras.initializers.VarianceScaling(
        scale=2.0, mode="fan_in", distribution="untruncated_normal"
    )


def _conv_bn(x, filters, kernel, strides, name, relu=True, zero_gamma=False):
    """conv (no bias) -> BN [-> ReLU]; strided k>1 convs pad symmetrically."""
    if strides > 1 and kernel > 1:
        x = keras.layers.ZeroPadding2D(kernel // 2, name=f"{name}_pad")(x)
        padding = "valid"
    else:
        padding = "same"
    x = keras.layers.Conv2D(
        filters,
        kernel,
        strides=strides,
        padding=padding,
        use_bias=False,
        kernel_initializer=_he_normal(),
        name=f"{name}_conv",
    )(x)
    x = BatchNormalization(
        gamma_initializer="zeros" if zero_gamma else "ones", name=f"{name}_bn", **_BN
    )(x)
    if relu:
        x = keras.layers.Activation("relu", name=f"{name}_relu")(x)
    return x


def _shortcut(x, filters, strides, shortcut, name):
    """The block's shortcut, or None for a plain net."""
    if shortcut is None:
        return None
    grows = strides != 1 or x.shape[-1] != filters
    if shortcut == "C" or (shortcut == "B" and grows):
        return _conv_bn(x, filters, 1, strides, f"{name}_0", relu=False)
    if grows:  # option A
        return ZeroPadShortcut(filters, strides, name=f"{name}_0_pad")(x)
    return x


def _merge(x, short, name):
    if short is not None:
        x = keras.layers.Add(name=f"{name}_add")([short, x])
    return keras.layers.Activation("relu", name=f"{name}_out")(x)


def _basic_block(x, width, strides, shortcut, zero_init, name):
    short = _shortcut(x, width, strides, shortcut, name)
    x = _conv_bn(x, width, 3, strides, f"{name}_1")
    x = _conv_bn(x, width, 3, 1, f"{name}_2", relu=False, zero_gamma=zero_init)
    return _merge(x, short, name)


def _bottleneck_block(x, width, strides, shortcut, zero_init, name, stride_in_1x1=True):
    short = _shortcut(x, 4 * width, strides, shortcut, name)
    s1, s3 = (strides, 1) if stride_in_1x1 else (1, strides)
    x = _conv_bn(x, width, 1, s1, f"{name}_1")
    x = _conv_bn(x, width, 3, s3, f"{name}_2")
    x = _conv_bn(x, 4 * width, 1, 1, f"{name}_3", relu=False, zero_gamma=zero_init)
    return _merge(x, short, name)


_BLOCKS = {"basic": _basic_block, "bottleneck": _bottleneck_block}


def _resnet(
    *,
    block,
    stage_blocks,
    widths,
    stage_strides=(1, 2, 2, 2),
    cifar,
    shortcut,
    stride_in_1x1,
    zero_init_residual,
    include_top,
    weights,
    input_tensor,
    input_shape,
    pooling,
    classes,
    classifier_activation,
    name,
    network,
    family,
    arch=None,
):
    arch = arch or {}
    residual = shortcut is not None
    if residual:
        _common.check_choice("shortcut", shortcut, SHORTCUTS)
    elif zero_init_residual:
        raise ValueError(
            "A plain net has no residual branch to zero-initialise. "
            f"Received: zero_init_residual={zero_init_residual!r}"
        )
    if not isinstance(stride_in_1x1, bool):
        raise ValueError(
            f"`stride_in_1x1` must be True or False. Received: stride_in_1x1={stride_in_1x1!r}"
        )
    input_shape = _common.check_common_args(
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        default_size=(32, 32) if cifar else (224, 224),
        min_size=8 if cifar else 32,
    )
    weights_plan = _common.resolve_weights(
        weights, network=network, family=family, include_top=include_top, classes=classes,
        input_shape=input_shape, shortcut=shortcut, stride_in_1x1=stride_in_1x1, **arch,
    )
    img_input = _common.make_input(input_tensor, input_shape)

    if cifar:
        x = _conv_bn(img_input, widths[0], 3, 1, "conv1")
    else:
        x = _conv_bn(img_input, 64, 7, 2, "conv1")
        x = keras.layers.ZeroPadding2D(1, name="pool1_pad")(x)
        x = keras.layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)

    block_fn = _BLOCKS[block]
    if block == "bottleneck":  # where the stride sits is the bottleneck's option only
        block_fn = functools.partial(block_fn, stride_in_1x1=stride_in_1x1)
    for stage, (n, width) in enumerate(zip(stage_blocks, widths)):
        for i in range(n):
            strides = stage_strides[stage] if i == 0 else 1
            x = block_fn(
                x,
                width,
                strides,
                shortcut,
                zero_init_residual,
                name=f"conv{stage + 2}_block{i + 1}",
            )

    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = keras.layers.Dense(
            classes,
            activation=classifier_activation,
            kernel_initializer=_he_normal(),
            dtype=_common.head_dtype(),
            name="predictions",
        )(x)
    else:
        x = _common.global_pool(x, pooling)
    model = keras.Model(_common.model_inputs(input_tensor, img_input), x, name=name)
    return _common.load_weights(model, weights_plan)


def _imagenet(depth, residual, *, name, shortcut="B", stride_in_1x1=True,
              zero_init_residual=False, **kwargs):
    block, stage_blocks = _IMAGENET[depth]
    return _resnet(
        block=block,
        stage_blocks=stage_blocks,
        widths=(64, 128, 256, 512),
        cifar=False,
        shortcut=shortcut if residual else None,
        stride_in_1x1=stride_in_1x1,
        zero_init_residual=zero_init_residual,
        name=name,
        network=f"{'resnet' if residual else 'plain'}{depth}",
        family="resnet" if residual else "plain",
        **kwargs,
    )


def _cifar(depth, residual, *, name, shortcut="A", zero_init_residual=False, width=16,
           output_stride=4, blocks=None, **kwargs):
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(f"`width` must be an int >= 1 (the first stage's filters). "
                         f"Received: width={width!r}")
    _common.check_choice("output_stride", output_stride, _OUTPUT_STRIDES)
    arch = dict(width=width, output_stride=output_stride)
    if blocks is not None:  # only when set: the arguments a weights file is checked against
        _common.check_positive("blocks", blocks)
        arch["blocks"] = blocks
    return _resnet(
        block="basic",
        stage_blocks=(_CIFAR[depth] if blocks is None else blocks,) * 3,
        widths=(width, 2 * width, 4 * width),
        stage_strides=_OUTPUT_STRIDES[output_stride],
        cifar=True,
        shortcut=shortcut if residual else None,
        stride_in_1x1=True,
        zero_init_residual=zero_init_residual,
        name=name,
        network=f"{'resnet' if residual else 'plain'}{depth}",
        family="resnet_cifar" if residual else "plain_cifar",
        arch=arch,
        **kwargs,
    )


# Public builders: the keras.applications signature plus the family's options, over
# _imagenet / _cifar above.
def ResNet18(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    shortcut="B",
    zero_init_residual=False,
    name="resnet18",
):
    """ResNet-18 (He et al., 2016, Table 1): basic blocks 2-2-2-2, ImageNet,
    224x224x3 by default.

    Args:
        include_top: include the global average pool and the fc layer
            (``predictions``).
        weights: None (random initialisation), a weight set's name
            (``get_model_info("resnet18").weight_sets``, e.g. "imagenet"; downloaded once
            into Keras' cache) or the path of a weights file (Keras'
            ``.weights.h5``/``.keras`` or a publisher's file: keras.applications
            HDF5, PyTorch ``.pth``, ``.safetensors``). Pretrained models take RGB,
            0-255, minus the set's mean (``preprocess_input``).
        input_tensor: optional Keras tensor to use as the input.
        input_shape: (H, W, C) with C in {1, 3}; default (224, 224, 3). Any size of at
            least 32×32 works (H, W may be None): the network ends in
            global average pooling.
        pooling: with ``include_top=False``: None (4-D features), "avg" or "max".
        classes: number of classes (default 1000).
        classifier_activation: activation of the fc layer; None gives logits.
        shortcut: "A" (zero-padded identity), "B" (projection where the
            dimensions grow) or "C" (projection everywhere). Default "B".
        zero_init_residual: zero-initialise the last BN gamma of every block.
        name: model name.

    Returns:
        A functional ``keras.Model``.
    """
    return _imagenet(
        18, True, include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, shortcut=shortcut,
        zero_init_residual=zero_init_residual, name=name,
    )


def ResNet34(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    shortcut="B",
    zero_init_residual=False,
    name="resnet34",
):
    """ResNet-34 (He et al., 2016, Table 1): basic blocks 3-4-6-3, ImageNet,
    224x224x3 by default.

    Args:
        include_top: include the global average pool and the fc layer
            (``predictions``).
        weights: None (random initialisation), a weight set's name
            (``get_model_info("resnet34").weight_sets``, e.g. "imagenet"; downloaded once
            into Keras' cache) or the path of a weights file (Keras'
            ``.weights.h5``/``.keras`` or a publisher's file: keras.applications
            HDF5, PyTorch ``.pth``, ``.safetensors``). Pretrained models take RGB,
            0-255, minus the set's mean (``preprocess_input``).
        input_tensor: optional Keras tensor to use as the input.
        input_shape: (H, W, C) with C in {1, 3}; default (224, 224, 3). Any size of at
            least 32×32 works (H, W may be None): the network ends in
            global average pooling.
        pooling: with ``include_top=False``: None (4-D features), "avg" or "max".
        classes: number of classes (default 1000).
        classifier_activation: activation of the fc layer; None gives logits.
        shortcut: "A" (zero-padded identity), "B" (projection where the
            dimensions grow) or "C" (projection everywhere). Default "B".
        zero_init_residual: zero-initialise the last BN gamma of every block.
        name: model name.

    Returns:
        A functional ``keras.Model``.
    """
    return _imagenet(
        34, True, include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, shortcut=shortcut,
        zero_init_residual=zero_init_residual, name=name,
    )


def ResNet50(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    shortcut="B",
    stride_in_1x1=True,
    zero_init_residual=False,
    name="resnet50",
):
    """ResNet-50 (He et al., 2016, Table 1): bottleneck blocks 3-4-6-3, ImageNet,
    224x224x3 by default.

    Args:
        include_top: include the global average pool and the fc layer
            (``predictions``).
        weights: None (random initialisation), a weight set's name
            (``get_model_info("resnet50").weight_sets``, e.g. "imagenet"; downloaded once
            into Keras' cache) or the path of a weights file (Keras'
            ``.weights.h5``/``.keras`` or a publisher's file: keras.applications
            HDF5, PyTorch ``.pth``, ``.safetensors``). Pretrained models take RGB,
            0-255, minus the set's mean (``preprocess_input``).
        input_tensor: optional Keras tensor to use as the input.
        input_shape: (H, W, C) with C in {1, 3}; default (224, 224, 3). Any size of at
            least 32×32 works (H, W may be None): the network ends in
            global average pooling.
        pooling: with ``include_top=False``: None (4-D features), "avg" or "max".
        classes: number of classes (default 1000).
        classifier_activation: activation of the fc layer; None gives logits.
        shortcut: "A" (zero-padded identity), "B" (projection where the
            dimensions grow) or "C" (projection everywhere). Default "B".
        stride_in_1x1: True (the paper, keras.applications): the stride-2 of
            a down-sampling bottleneck is on its first 1x1 conv; False: on the
            3x3 (torchvision's v1.5).
        zero_init_residual: zero-initialise the last BN gamma of every block.
        name: model name.

    Returns:
        A functional ``keras.Model``.
    """
    return _imagenet(
        50, True, include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, shortcut=shortcut,
        stride_in_1x1=stride_in_1x1, zero_init_residual=zero_init_residual, name=name,
    )


def ResNet101(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    shortcut="B",
    stride_in_1x1=True,
    zero_init_residual=False,
    name="resnet101",
):
    """ResNet-101 (He et al., 2016, Table 1): bottleneck blocks 3-4-23-3, ImageNet,
    224x224x3 by default.

    Args:
        include_top: include the global average pool and the fc layer
            (``predictions``).
        weights: None (random initialisation), a weight set's name
            (``get_model_info("resnet101").weight_sets``, e.g. "imagenet"; downloaded once
            into Keras' cache) or the path of a weights file (Keras'
            ``.weights.h5``/``.keras`` or a publisher's file: keras.applications
            HDF5, PyTorch ``.pth``, ``.safetensors``). Pretrained models take RGB,
            0-255, minus the set's mean (``preprocess_input``).
        input_tensor: optional Keras tensor to use as the input.
        input_shape: (H, W, C) with C in {1, 3}; default (224, 224, 3). Any size of at
            least 32×32 works (H, W may be None): the network ends in
            global average pooling.
        pooling: with ``include_top=False``: None (4-D features), "avg" or "max".
        classes: number of classes (default 1000).
        classifier_activation: activation of the fc layer; None gives logits.
        shortcut: "A" (zero-padded identity), "B" (projection where the
            dimensions grow) or "C" (projection everywhere). Default "B".
        stride_in_1x1: True (the paper, keras.applications): the stride-2 of
            a down-sampling bottleneck is on its first 1x1 conv; False: on the
            3x3 (torchvision's v1.5).
        zero_init_residual: zero-initialise the last BN gamma of every block.
        name: model name.

    Returns:
        A functional ``keras.Model``.
    """
    return _imagenet(
        101, True, include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, shortcut=shortcut,
        stride_in_1x1=stride_in_1x1, zero_init_residual=zero_init_residual, name=name,
    )


def ResNet152(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    shortcut="B",
    stride_in_1x1=True,
    zero_init_residual=False,
    name="resnet152",
):
    """ResNet-152 (He et al., 2016, Table 1): bottleneck blocks 3-8-36-3, ImageNet,
    224x224x3 by default.

    Args:
        include_top: include the global average pool and the fc layer
            (``predictions``).
        weights: None (random initialisation), a weight set's name
            (``get_model_info("resnet152").weight_sets``, e.g. "imagenet"; downloaded once
            into Keras' cache) or the path of a weights file (Keras'
            ``.weights.h5``/``.keras`` or a publisher's file: keras.applications
            HDF5, PyTorch ``.pth``, ``.safetensors``). Pretrained models take RGB,
            0-255, minus the set's mean (``preprocess_input``).
        input_tensor: optional Keras tensor to use as the input.
        input_shape: (H, W, C) with C in {1, 3}; default (224, 224, 3). Any size of at
            least 32×32 works (H, W may be None): the network ends in
            global average pooling.
        pooling: with ``include_top=False``: None (4-D features), "avg" or "max".
        classes: number of classes (default 1000).
        classifier_activation: activation of the fc layer; None gives logits.
        shortcut: "A" (zero-padded identity), "B" (projection where the
            dimensions grow) or "C" (projection everywhere). Default "B".
        stride_in_1x1: True (the paper, keras.applications): the stride-2 of
            a down-sampling bottleneck is on its first 1x1 conv; False: on the
            3x3 (torchvision's v1.5).
        zero_init_residual: zero-initialise the last BN gamma of every block.
        name: model name.

    Returns:
        A functional ``keras.Model``.
    """
    return _imagenet(
        152, True, include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, shortcut=shortcut,
        stride_in_1x1=stride_in_1x1, zero_init_residual=zero_init_residual, name=name,
    )


def Plain18(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="plain18",
):
    """plain-18 (He et al., 2016, §4.1): ResNet-18 without shortcuts, ImageNet,
    224x224x3 by default.

    Args:
        include_top: include the global average pool and the fc layer
            (``predictions``).
        weights: None (random initialisation) or the path of a Keras weights file
            (``.weights.h5``/``.keras``): no publisher has weights of this network.
        input_tensor: optional Keras tensor to use as the input.
        input_shape: (H, W, C) with C in {1, 3}; default (224, 224, 3). Any size of at
            least 32×32 works (H, W may be None): the network ends in
            global average pooling.
        pooling: with ``include_top=False``: None (4-D features), "avg" or "max".
        classes: number of classes (default 1000).
        classifier_activation: activation of the fc layer; None gives logits.
        name: model name.

    Returns:
        A functional ``keras.Model``.
    """
    return _imagenet(
        18, False, include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name,
    )


def Plain34(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="plain34",
):
    """plain-34 (He et al., 2016, §4.1): ResNet-34 without shortcuts, ImageNet,
    224x224x3 by default.

    Args:
        include_top: include the global average pool and the fc layer
            (``predictions``).
        weights: None (random initialisation) or the path of a Keras weights file
            (``.weights.h5``/``.keras``): no publisher has weights of this network.
        input_tensor: optional Keras tensor to use as the input.
        input_shape: (H, W, C) with C in {1, 3}; default (224, 224, 3). Any size of at
            least 32×32 works (H, W may be None): the network ends in
            global average pooling.
        pooling: with ``include_top=False``: None (4-D features), "avg" or "max".
        classes: number of classes (default 1000).
        classifier_activation: activation of the fc layer; None gives logits.
        name: model name.

    Returns:
        A functional ``keras.Model``.
    """
    return _imagenet(
        34, False, include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name,
    )


def ResNet20(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    shortcut="A",
    zero_init_residual=False,
    width=16,
    output_stride=4,
    blocks=None,
    name="resnet20",
):
    """ResNet-20 for CIFAR-10 (He et al., 2016, §4.2): 6n+2 layers, n=3,
    16-32-64 filters, option-A shortcuts.

    Args:
        include_top: include the global average pool and the fc layer
            (``predictions``).
        weights: None (random initialisation) or the path of a Keras weights file
            (``.weights.h5``/``.keras``): no publisher has weights of this network.
        input_tensor: optional Keras tensor to use as the input.
        input_shape: (H, W, C) with C in {1, 3}; default (32, 32, 3). Any size of at
            least 8×8 works (H, W may be None): the network ends in
            global average pooling.
        pooling: with ``include_top=False``: None (4-D features), "avg" or "max".
        classes: number of classes (default 10).
        classifier_activation: activation of the fc layer; None gives logits.
        shortcut: "A" (zero-padded identity), "B" (projection where the
            dimensions grow) or "C" (projection everywhere). Default "A".
        zero_init_residual: zero-initialise the last BN gamma of every block.
        width: filters of the first stage; the stages have width, 2 width,
            4 width (the paper's 16-32-64: 16). A departure for cheaper nets.
        output_stride: input side over the last feature map's: 4 (the paper:
            the second and third stages start with a stride of 2), 2 (the
            third stage keeps the second's resolution) or 1 (no striding). A
            departure: a finer map for class activation maps, as the CAM paper
            (Zhou et al., 2016, §3) removes GoogLeNet's layers after inception4e
            to get 14x14 at 224.
        blocks: blocks per stage; None: the paper's n of this depth (6n+2
            layers). A departure: ``blocks=b`` builds the 6b+2-layer net of
            these widths whatever the builder's name (2: 14 layers, 1: 8), a
            shallower net with a smaller receptive field (finer class
            activation maps: a trial in docs/localization.md).
        name: model name.

    Returns:
        A functional ``keras.Model``.
    """
    return _cifar(
        20, True, include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, shortcut=shortcut,
        zero_init_residual=zero_init_residual, width=width, output_stride=output_stride,
        blocks=blocks, name=name,
    )


def ResNet32(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    shortcut="A",
    zero_init_residual=False,
    width=16,
    output_stride=4,
    blocks=None,
    name="resnet32",
):
    """ResNet-32 for CIFAR-10 (He et al., 2016, §4.2): 6n+2 layers, n=5,
    16-32-64 filters, option-A shortcuts.

    Args:
        include_top: include the global average pool and the fc layer
            (``predictions``).
        weights: None (random initialisation) or the path of a Keras weights file
            (``.weights.h5``/``.keras``): no publisher has weights of this network.
        input_tensor: optional Keras tensor to use as the input.
        input_shape: (H, W, C) with C in {1, 3}; default (32, 32, 3). Any size of at
            least 8×8 works (H, W may be None): the network ends in
            global average pooling.
        pooling: with ``include_top=False``: None (4-D features), "avg" or "max".
        classes: number of classes (default 10).
        classifier_activation: activation of the fc layer; None gives logits.
        shortcut: "A" (zero-padded identity), "B" (projection where the
            dimensions grow) or "C" (projection everywhere). Default "A".
        zero_init_residual: zero-initialise the last BN gamma of every block.
        width: filters of the first stage; the stages have width, 2 width,
            4 width (the paper's 16-32-64: 16). A departure for cheaper nets.
        output_stride: input side over the last feature map's: 4 (the paper:
            the second and third stages start with a stride of 2), 2 (the
            third stage keeps the second's resolution) or 1 (no striding). A
            departure: a finer map for class activation maps, as the CAM paper
            (Zhou et al., 2016, §3) removes GoogLeNet's layers after inception4e
            to get 14x14 at 224.
        blocks: blocks per stage; None: the paper's n of this depth (6n+2
            layers). A departure: ``blocks=b`` builds the 6b+2-layer net of
            these widths whatever the builder's name (2: 14 layers, 1: 8), a
            shallower net with a smaller receptive field (finer class
            activation maps: a trial in docs/localization.md).
        name: model name.

    Returns:
        A functional ``keras.Model``.
    """
    return _cifar(
        32, True, include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, shortcut=shortcut,
        zero_init_residual=zero_init_residual, width=width, output_stride=output_stride,
        blocks=blocks, name=name,
    )


def ResNet44(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    shortcut="A",
    zero_init_residual=False,
    width=16,
    output_stride=4,
    blocks=None,
    name="resnet44",
):
    """ResNet-44 for CIFAR-10 (He et al., 2016, §4.2): 6n+2 layers, n=7,
    16-32-64 filters, option-A shortcuts.

    Args:
        include_top: include the global average pool and the fc layer
            (``predictions``).
        weights: None (random initialisation) or the path of a Keras weights file
            (``.weights.h5``/``.keras``): no publisher has weights of this network.
        input_tensor: optional Keras tensor to use as the input.
        input_shape: (H, W, C) with C in {1, 3}; default (32, 32, 3). Any size of at
            least 8×8 works (H, W may be None): the network ends in
            global average pooling.
        pooling: with ``include_top=False``: None (4-D features), "avg" or "max".
        classes: number of classes (default 10).
        classifier_activation: activation of the fc layer; None gives logits.
        shortcut: "A" (zero-padded identity), "B" (projection where the
            dimensions grow) or "C" (projection everywhere). Default "A".
        zero_init_residual: zero-initialise the last BN gamma of every block.
        width: filters of the first stage; the stages have width, 2 width,
            4 width (the paper's 16-32-64: 16). A departure for cheaper nets.
        output_stride: input side over the last feature map's: 4 (the paper:
            the second and third stages start with a stride of 2), 2 (the
            third stage keeps the second's resolution) or 1 (no striding). A
            departure: a finer map for class activation maps, as the CAM paper
            (Zhou et al., 2016, §3) removes GoogLeNet's layers after inception4e
            to get 14x14 at 224.
        blocks: blocks per stage; None: the paper's n of this depth (6n+2
            layers). A departure: ``blocks=b`` builds the 6b+2-layer net of
            these widths whatever the builder's name (2: 14 layers, 1: 8), a
            shallower net with a smaller receptive field (finer class
            activation maps: a trial in docs/localization.md).
        name: model name.

    Returns:
        A functional ``keras.Model``.
    """
    return _cifar(
        44, True, include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, shortcut=shortcut,
        zero_init_residual=zero_init_residual, width=width, output_stride=output_stride,
        blocks=blocks, name=name,
    )


def ResNet56(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    shortcut="A",
    zero_init_residual=False,
    width=16,
    output_stride=4,
    blocks=None,
    name="resnet56",
):
    """ResNet-56 for CIFAR-10 (He et al., 2016, §4.2): 6n+2 layers, n=9,
    16-32-64 filters, option-A shortcuts.

    Args:
        include_top: include the global average pool and the fc layer
            (``predictions``).
        weights: None (random initialisation) or the path of a Keras weights file
            (``.weights.h5``/``.keras``): no publisher has weights of this network.
        input_tensor: optional Keras tensor to use as the input.
        input_shape: (H, W, C) with C in {1, 3}; default (32, 32, 3). Any size of at
            least 8×8 works (H, W may be None): the network ends in
            global average pooling.
        pooling: with ``include_top=False``: None (4-D features), "avg" or "max".
        classes: number of classes (default 10).
        classifier_activation: activation of the fc layer; None gives logits.
        shortcut: "A" (zero-padded identity), "B" (projection where the
            dimensions grow) or "C" (projection everywhere). Default "A".
        zero_init_residual: zero-initialise the last BN gamma of every block.
        width: filters of the first stage; the stages have width, 2 width,
            4 width (the paper's 16-32-64: 16). A departure for cheaper nets.
        output_stride: input side over the last feature map's: 4 (the paper:
            the second and third stages start with a stride of 2), 2 (the
            third stage keeps the second's resolution) or 1 (no striding). A
            departure: a finer map for class activation maps, as the CAM paper
            (Zhou et al., 2016, §3) removes GoogLeNet's layers after inception4e
            to get 14x14 at 224.
        blocks: blocks per stage; None: the paper's n of this depth (6n+2
            layers). A departure: ``blocks=b`` builds the 6b+2-layer net of
            these widths whatever the builder's name (2: 14 layers, 1: 8), a
            shallower net with a smaller receptive field (finer class
            activation maps: a trial in docs/localization.md).
        name: model name.

    Returns:
        A functional ``keras.Model``.
    """
    return _cifar(
        56, True, include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, shortcut=shortcut,
        zero_init_residual=zero_init_residual, width=width, output_stride=output_stride,
        blocks=blocks, name=name,
    )


def ResNet110(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    shortcut="A",
    zero_init_residual=False,
    width=16,
    output_stride=4,
    blocks=None,
    name="resnet110",
):
    """ResNet-110 for CIFAR-10 (He et al., 2016, §4.2): 6n+2 layers, n=18,
    16-32-64 filters, option-A shortcuts.

    Args:
        include_top: include the global average pool and the fc layer
            (``predictions``).
        weights: None (random initialisation) or the path of a Keras weights file
            (``.weights.h5``/``.keras``): no publisher has weights of this network.
        input_tensor: optional Keras tensor to use as the input.
        input_shape: (H, W, C) with C in {1, 3}; default (32, 32, 3). Any size of at
            least 8×8 works (H, W may be None): the network ends in
            global average pooling.
        pooling: with ``include_top=False``: None (4-D features), "avg" or "max".
        classes: number of classes (default 10).
        classifier_activation: activation of the fc layer; None gives logits.
        shortcut: "A" (zero-padded identity), "B" (projection where the
            dimensions grow) or "C" (projection everywhere). Default "A".
        zero_init_residual: zero-initialise the last BN gamma of every block.
        width: filters of the first stage; the stages have width, 2 width,
            4 width (the paper's 16-32-64: 16). A departure for cheaper nets.
        output_stride: input side over the last feature map's: 4 (the paper:
            the second and third stages start with a stride of 2), 2 (the
            third stage keeps the second's resolution) or 1 (no striding). A
            departure: a finer map for class activation maps, as the CAM paper
            (Zhou et al., 2016, §3) removes GoogLeNet's layers after inception4e
            to get 14x14 at 224.
        blocks: blocks per stage; None: the paper's n of this depth (6n+2
            layers). A departure: ``blocks=b`` builds the 6b+2-layer net of
            these widths whatever the builder's name (2: 14 layers, 1: 8), a
            shallower net with a smaller receptive field (finer class
            activation maps: a trial in docs/localization.md).
        name: model name.

    Returns:
        A functional ``keras.Model``.
    """
    return _cifar(
        110, True, include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, shortcut=shortcut,
        zero_init_residual=zero_init_residual, width=width, output_stride=output_stride,
        blocks=blocks, name=name,
    )


def Plain20(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    width=16,
    output_stride=4,
    blocks=None,
    name="plain20",
):
    """plain-20 for CIFAR-10 (He et al., 2016, §4.2): ResNet-20 without shortcuts.

    Args:
        include_top: include the global average pool and the fc layer
            (``predictions``).
        weights: None (random initialisation) or the path of a Keras weights file
            (``.weights.h5``/``.keras``): no publisher has weights of this network.
        input_tensor: optional Keras tensor to use as the input.
        input_shape: (H, W, C) with C in {1, 3}; default (32, 32, 3). Any size of at
            least 8×8 works (H, W may be None): the network ends in
            global average pooling.
        pooling: with ``include_top=False``: None (4-D features), "avg" or "max".
        classes: number of classes (default 10).
        classifier_activation: activation of the fc layer; None gives logits.
        width: filters of the first stage; the stages have width, 2 width,
            4 width (the paper's 16-32-64: 16). A departure for cheaper nets.
        output_stride: input side over the last feature map's: 4 (the paper:
            the second and third stages start with a stride of 2), 2 (the
            third stage keeps the second's resolution) or 1 (no striding). A
            departure: a finer map for class activation maps, as the CAM paper
            (Zhou et al., 2016, §3) removes GoogLeNet's layers after inception4e
            to get 14x14 at 224.
        blocks: blocks per stage; None: the paper's n of this depth (6n+2
            layers). A departure: ``blocks=b`` builds the 6b+2-layer net of
            these widths whatever the builder's name (2: 14 layers, 1: 8), a
            shallower net with a smaller receptive field (finer class
            activation maps: a trial in docs/localization.md).
        name: model name.

    Returns:
        A functional ``keras.Model``.
    """
    return _cifar(
        20, False, include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, width=width,
        output_stride=output_stride, blocks=blocks, name=name,
    )


def Plain32(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    width=16,
    output_stride=4,
    blocks=None,
    name="plain32",
):
    """plain-32 for CIFAR-10 (He et al., 2016, §4.2): ResNet-32 without shortcuts.

    Args:
        include_top: include the global average pool and the fc layer
            (``predictions``).
        weights: None (random initialisation) or the path of a Keras weights file
            (``.weights.h5``/``.keras``): no publisher has weights of this network.
        input_tensor: optional Keras tensor to use as the input.
        input_shape: (H, W, C) with C in {1, 3}; default (32, 32, 3). Any size of at
            least 8×8 works (H, W may be None): the network ends in
            global average pooling.
        pooling: with ``include_top=False``: None (4-D features), "avg" or "max".
        classes: number of classes (default 10).
        classifier_activation: activation of the fc layer; None gives logits.
        width: filters of the first stage; the stages have width, 2 width,
            4 width (the paper's 16-32-64: 16). A departure for cheaper nets.
        output_stride: input side over the last feature map's: 4 (the paper:
            the second and third stages start with a stride of 2), 2 (the
            third stage keeps the second's resolution) or 1 (no striding). A
            departure: a finer map for class activation maps, as the CAM paper
            (Zhou et al., 2016, §3) removes GoogLeNet's layers after inception4e
            to get 14x14 at 224.
        blocks: blocks per stage; None: the paper's n of this depth (6n+2
            layers). A departure: ``blocks=b`` builds the 6b+2-layer net of
            these widths whatever the builder's name (2: 14 layers, 1: 8), a
            shallower net with a smaller receptive field (finer class
            activation maps: a trial in docs/localization.md).
        name: model name.

    Returns:
        A functional ``keras.Model``.
    """
    return _cifar(
        32, False, include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, width=width,
        output_stride=output_stride, blocks=blocks, name=name,
    )


def Plain44(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    width=16,
    output_stride=4,
    blocks=None,
    name="plain44",
):
    """plain-44 for CIFAR-10 (He et al., 2016, §4.2): ResNet-44 without shortcuts.

    Args:
        include_top: include the global average pool and the fc layer
            (``predictions``).
        weights: None (random initialisation) or the path of a Keras weights file
            (``.weights.h5``/``.keras``): no publisher has weights of this network.
        input_tensor: optional Keras tensor to use as the input.
        input_shape: (H, W, C) with C in {1, 3}; default (32, 32, 3). Any size of at
            least 8×8 works (H, W may be None): the network ends in
            global average pooling.
        pooling: with ``include_top=False``: None (4-D features), "avg" or "max".
        classes: number of classes (default 10).
        classifier_activation: activation of the fc layer; None gives logits.
        width: filters of the first stage; the stages have width, 2 width,
            4 width (the paper's 16-32-64: 16). A departure for cheaper nets.
        output_stride: input side over the last feature map's: 4 (the paper:
            the second and third stages start with a stride of 2), 2 (the
            third stage keeps the second's resolution) or 1 (no striding). A
            departure: a finer map for class activation maps, as the CAM paper
            (Zhou et al., 2016, §3) removes GoogLeNet's layers after inception4e
            to get 14x14 at 224.
        blocks: blocks per stage; None: the paper's n of this depth (6n+2
            layers). A departure: ``blocks=b`` builds the 6b+2-layer net of
            these widths whatever the builder's name (2: 14 layers, 1: 8), a
            shallower net with a smaller receptive field (finer class
            activation maps: a trial in docs/localization.md).
        name: model name.

    Returns:
        A functional ``keras.Model``.
    """
    return _cifar(
        44, False, include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, width=width,
        output_stride=output_stride, blocks=blocks, name=name,
    )


def Plain56(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    width=16,
    output_stride=4,
    blocks=None,
    name="plain56",
):
    """plain-56 for CIFAR-10 (He et al., 2016, §4.2): ResNet-56 without shortcuts.

    Args:
        include_top: include the global average pool and the fc layer
            (``predictions``).
        weights: None (random initialisation) or the path of a Keras weights file
            (``.weights.h5``/``.keras``): no publisher has weights of this network.
        input_tensor: optional Keras tensor to use as the input.
        input_shape: (H, W, C) with C in {1, 3}; default (32, 32, 3). Any size of at
            least 8×8 works (H, W may be None): the network ends in
            global average pooling.
        pooling: with ``include_top=False``: None (4-D features), "avg" or "max".
        classes: number of classes (default 10).
        classifier_activation: activation of the fc layer; None gives logits.
        width: filters of the first stage; the stages have width, 2 width,
            4 width (the paper's 16-32-64: 16). A departure for cheaper nets.
        output_stride: input side over the last feature map's: 4 (the paper:
            the second and third stages start with a stride of 2), 2 (the
            third stage keeps the second's resolution) or 1 (no striding). A
            departure: a finer map for class activation maps, as the CAM paper
            (Zhou et al., 2016, §3) removes GoogLeNet's layers after inception4e
            to get 14x14 at 224.
        blocks: blocks per stage; None: the paper's n of this depth (6n+2
            layers). A departure: ``blocks=b`` builds the 6b+2-layer net of
            these widths whatever the builder's name (2: 14 layers, 1: 8), a
            shallower net with a smaller receptive field (finer class
            activation maps: a trial in docs/localization.md).
        name: model name.

    Returns:
        A functional ``keras.Model``.
    """
    return _cifar(
        56, False, include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, width=width,
        output_stride=output_stride, blocks=blocks, name=name,
    )


def Plain110(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    width=16,
    output_stride=4,
    blocks=None,
    name="plain110",
):
    """plain-110 for CIFAR-10 (He et al., 2016, §4.2): ResNet-110 without shortcuts.

    Args:
        include_top: include the global average pool and the fc layer
            (``predictions``).
        weights: None (random initialisation) or the path of a Keras weights file
            (``.weights.h5``/``.keras``): no publisher has weights of this network.
        input_tensor: optional Keras tensor to use as the input.
        input_shape: (H, W, C) with C in {1, 3}; default (32, 32, 3). Any size of at
            least 8×8 works (H, W may be None): the network ends in
            global average pooling.
        pooling: with ``include_top=False``: None (4-D features), "avg" or "max".
        classes: number of classes (default 10).
        classifier_activation: activation of the fc layer; None gives logits.
        width: filters of the first stage; the stages have width, 2 width,
            4 width (the paper's 16-32-64: 16). A departure for cheaper nets.
        output_stride: input side over the last feature map's: 4 (the paper:
            the second and third stages start with a stride of 2), 2 (the
            third stage keeps the second's resolution) or 1 (no striding). A
            departure: a finer map for class activation maps, as the CAM paper
            (Zhou et al., 2016, §3) removes GoogLeNet's layers after inception4e
            to get 14x14 at 224.
        blocks: blocks per stage; None: the paper's n of this depth (6n+2
            layers). A departure: ``blocks=b`` builds the 6b+2-layer net of
            these widths whatever the builder's name (2: 14 layers, 1: 8), a
            shallower net with a smaller receptive field (finer class
            activation maps: a trial in docs/localization.md).
        name: model name.

    Returns:
        A functional ``keras.Model``.
    """
    return _cifar(
        110, False, include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, width=width,
        output_stride=output_stride, blocks=blocks, name=name,
    )


# -- registry ---------------------------------------------------------------------
# params: PAPERS.md (torchvision's counts) for the ImageNet ResNets; the plain and
# CIFAR nets have no exact count in the paper (CIFAR: 0.27M ... 1.7M), the tests
# derive them independently. macs: the analytic counter at the default input.
_VAL12 = "ILSVRC-2012 val"
_IMAGENET_TABLE = {
    # name: (params, macs, paper_results)
    "resnet18": (11_689_512, 1_814_073_344,
                 results("10crop", 27.88, None, _VAL12, "Table 2 (option A shortcuts)")),
    "resnet34": (21_797_672, 3_663_761_408,
                 results("10crop", 24.52, 7.46, _VAL12, "Table 3, 34 B")),
    "resnet50": (25_557_032, 3_857_973_248, results("10crop", 22.85, 6.71, _VAL12, "Table 3")),
    "resnet101": (44_549_160, 7_570_194_432, results("10crop", 21.75, 6.05, _VAL12, "Table 3")),
    "resnet152": (60_192_808, 11_282_415_616, {
        **results("10crop", 21.43, 5.71, _VAL12, "Table 3"),
        **results("dense", 19.38, 4.49, _VAL12,
                  "Table 4, single model, fully-convolutional multi-scale"),
    }),
    "plain18": (11_515_688, 1_794_805_760, results("10crop", 27.94, None, _VAL12, "Table 2")),
    "plain34": (21_623_848, 3_644_493_824, results("10crop", 28.54, None, _VAL12, "Table 2")),
}
_CIFAR_TABLE = {
    # depth: (params, macs, paper test error of the ResNet; the plain net's counts are
    # the same: option-A shortcuts have no weights)
    20: (269_722, 40_551_040, 8.75),
    32: (464_154, 68_862_592, 7.51),
    44: (658_586, 97_174_144, 7.17),
    56: (853_018, 125_485_696, 6.97),
    110: (1_727_962, 252_887_680, 6.43),
}
_TABLE = {  # name: (family, params, macs, paper_results), registration order
    **{name: ("plain" if name.startswith("plain") else "resnet", *row)
       for name, row in _IMAGENET_TABLE.items()},
    **{f"{kind}{depth}": (family, params, macs,
                          results("test", err, None, "CIFAR-10 test", "Table 6")
                          if kind == "resnet" else {})
       for depth, (params, macs, err) in _CIFAR_TABLE.items()
       for kind, family in (("resnet", "resnet_cifar"), ("plain", "plain_cifar"))},
}
_FAMILIES = {  # family: (input_shape, classes, recipe suffix, description)
    "resnet": ((224, 224, 3), 1000, "imagenet", "ResNet-{depth}, shortcut B"),
    "plain": ((224, 224, 3), 1000, "imagenet", "plain-{depth} (ResNet-{depth} without shortcuts)"),
    "resnet_cifar": ((32, 32, 3), 10, "cifar10", "CIFAR ResNet-{depth}, shortcut A"),
    "plain_cifar": ((32, 32, 3), 10, "cifar10", "CIFAR plain-{depth}"),
}

_BUILDERS = {
    "resnet18": ResNet18, "resnet34": ResNet34, "resnet50": ResNet50, "resnet101": ResNet101,
    "resnet152": ResNet152, "plain18": Plain18, "plain34": Plain34,
    "resnet20": ResNet20, "resnet32": ResNet32, "resnet44": ResNet44, "resnet56": ResNet56,
    "resnet110": ResNet110, "plain20": Plain20, "plain32": Plain32, "plain44": Plain44,
    "plain56": Plain56, "plain110": Plain110,
}
for _name, (_family, _params, _macs, _results) in _TABLE.items():
    _depth = int(_name.removeprefix("plain").removeprefix("resnet"))
    _shape, _classes, _dataset, _description = _FAMILIES[_family]
    register_model(ModelInfo(
        name=_name,
        builder=_BUILDERS[_name],
        family=_family,
        input_shape=_shape,
        classes=_classes,
        params=_params,
        macs=_macs,
        paper_results=_results,
        recipe=f"{_name}_{_dataset}",
        description=_description.format(depth=_depth),
    ))
