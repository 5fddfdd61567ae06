"""What every builder shares: argument checks, the input, the head, the weights.

Everything here runs *before* a layer is built, so a bad argument costs nothing
and the error names the argument and what was received (keras.applications style).
"""

from __future__ import annotations

import os

import keras

POOLINGS = (None, "avg", "max")


def check_common_args(
    *,
    include_top,
    weights,
    input_tensor,
    input_shape,
    pooling,
    classes,
    default_size,
    min_size,
    exact_size_with_top=False,
    top_reason="",
):
    """Validates the keras.applications arguments; returns the input shape (H, W, C).

    Args:
        default_size: (H, W) of the paper's input.
        min_size: the smallest H and W the convolutional trunk accepts.
        exact_size_with_top: AlexNet/VGG: their fc6 is sized for the default input,
            so ``include_top=True`` needs exactly ``default_size``.
        top_reason: appended to that error (which layer fixes the size).
    """
    if weights is not None and not isinstance(weights, (str, os.PathLike)):
        raise ValueError(
            "The `weights` argument should be `None` (random initialization), the name "
            "of a weight set (e.g. 'imagenet') or the path of a weights file. "
            f"Received: weights={weights!r}"
        )
    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 1:
        raise ValueError(
            f"`classes` must be an integer >= 1. Received: classes={classes!r}"
        )
    if pooling not in POOLINGS:
        raise ValueError(
            "`pooling` must be one of None, 'avg', 'max'. "
            f"Received: pooling={pooling!r}"
        )
    if not isinstance(include_top, bool):
        raise ValueError(
            f"`include_top` must be True or False. Received: include_top={include_top!r}"
        )

    if input_tensor is not None:
        if not keras.backend.is_keras_tensor(input_tensor):
            raise ValueError(
                "`input_tensor` must be a Keras symbolic tensor (e.g. from "
                f"`keras.Input`). Received: input_tensor={input_tensor!r}"
            )
        tensor_shape = tuple(input_tensor.shape[1:])
        if input_shape is not None and tuple(input_shape) != tensor_shape:
            raise ValueError(
                f"`input_shape` {tuple(input_shape)} does not match the shape of "
                f"`input_tensor` {tensor_shape}. Received: input_shape={input_shape}"
            )
        input_shape = tensor_shape
    if input_shape is None:
        input_shape = (*default_size, 3)
    try:
        input_shape = tuple(None if d is None else int(d) for d in input_shape)
    except (TypeError, ValueError):
        raise ValueError(
            "`input_shape` must be a tuple (height, width, channels). "
            f"Received: input_shape={input_shape!r}"
        ) from None
    if len(input_shape) != 3:
        raise ValueError(
            "`input_shape` must be (height, width, channels), channels last. "
            f"Received: input_shape={input_shape}"
        )
    height, width, channels = input_shape
    if channels not in (1, 3):
        raise ValueError(
            "The input must have 1 or 3 channels (channels last). "
            f"Received: input_shape={input_shape}"
        )
    if include_top and exact_size_with_top and (height, width) != tuple(default_size):
        raise ValueError(
            "With `include_top=True` the input must be "
            f"{default_size[0]}x{default_size[1]}{top_reason}; use include_top=False "
            "for other sizes. "
            f"Received: input_shape={input_shape}"
        )
    for d in (height, width):
        if d is not None and d < min_size:
            raise ValueError(
                f"The input must be at least {min_size}x{min_size} for this "
                f"architecture. Received: input_shape={input_shape}"
            )
    return input_shape


def make_input(input_tensor, input_shape):
    """The model's input tensor (``input_tensor`` itself when given)."""
    if input_tensor is not None:
        return input_tensor
    return keras.Input(shape=input_shape, name="input")


def model_inputs(input_tensor, img_input):
    if input_tensor is not None:
        return keras.utils.get_source_inputs(input_tensor)
    return img_input


def head_dtype():
    """float32 for the classifier under a mixed policy (softmax in float32)."""
    policy = keras.mixed_precision.global_policy()
    if policy.compute_dtype != policy.variable_dtype:
        return "float32"
    return None


def global_pool(x, pooling, name="avg_pool"):
    if pooling == "avg":
        return keras.layers.GlobalAveragePooling2D(name=name)(x)
    if pooling == "max":
        return keras.layers.GlobalMaxPooling2D(name=name.replace("avg", "max"))(x)
    return x


def resolve_weights(weights, *, network, family, include_top, classes, input_shape, **arch):
    """Checks ``weights`` before anything is built (a set name the network with these
    arguments lacks raises ValueError listing the sets that exist) and fetches a
    set's file; returns the plan :func:`load_weights` applies (None: random init).
    ``network`` and ``family``: the registry's name and family of the network being
    built (the family picks the mapper of a publisher's file). ``arch``: the builder's
    architecture arguments, checked against the set's."""
    from kerascnn.weights import loading

    return loading.resolve(
        weights, network=network, family=family, include_top=include_top, classes=classes,
        input_shape=input_shape, arch=arch,
    )


def load_weights(model, plan):
    """Sets the built model's weights from :func:`resolve_weights`' plan."""
    from kerascnn.weights import loading

    return loading.apply(model, plan)


def check_choice(arg_name, value, choices):
    if value not in choices:
        raise ValueError(
            f"`{arg_name}` must be one of {', '.join(map(repr, choices))}. "
            f"Received: {arg_name}={value!r}"
        )


def check_positive(arg_name, value, integer=True):
    """``value`` is a positive int (``integer``) or a number > 0; bools are refused."""
    kinds = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not value > 0:
        kind = "a positive int" if integer else "a number > 0"
        raise ValueError(f"`{arg_name}` must be {kind}. Received: {arg_name}={value!r}")
