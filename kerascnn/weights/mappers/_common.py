"""What every mapper shares: layout changes, the folds, and setting a layer with a
shape check.

A mapper knows one family of networks and the names and conventions of each
publisher of weights for it; it turns the publisher's tensors (as the readers return
them, in the publisher's layout) into our layers' weights, folding every difference
of convention into the weights so that the model keeps kerascnn's input convention:
RGB, 0-255, minus the weight set's mean RGB.

Layouts: PyTorch and Caffe store a conv kernel as (out, in, h, w) (``OIHW``) and a
fully-connected weight as (out, in); Keras as (h, w, in, out) (``HWIO``) and
(in, out).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from kerascnn.weights.origins import CAFFE, KERAS_APPLICATIONS, TORCHVISION, get_origin
from kerascnn.weights.origins import ORIGIN_NAMES as ORIGINS

# The conventions a mapper is asked to fold (its ``origin`` argument) are the records of
# kerascnn.weights.origins: keras.applications' Keras-2 HDF5 (BGR, caffe mean),
# torchvision's state dicts (RGB, (x / 255 - mean) / std), BVLC's .caffemodel (BGR,
# mean subtracted, 0-255).


def check_origin(origin, allowed=ORIGINS):
    if origin not in allowed:
        raise ValueError(
            f"`origin` must be one of {', '.join(map(repr, allowed))}. Received: origin={origin!r}"
        )


def oihw_to_hwio(kernel):
    """A PyTorch/Caffe conv kernel (out, in, h, w) as Keras' (h, w, in, out)."""
    kernel = np.asarray(kernel)
    if kernel.ndim != 4:
        raise ValueError(f"A conv kernel has 4 dimensions. Received: shape={kernel.shape}")
    return np.transpose(kernel, (2, 3, 1, 0))


def linear_to_dense(weight):
    """A PyTorch/Caffe fully-connected weight (out, in) as Keras' kernel (in, out)."""
    weight = np.asarray(weight)
    if weight.ndim != 2:
        raise ValueError(f"A linear weight has 2 dimensions. Received: shape={weight.shape}")
    return weight.T


def reverse_input_channels(kernel):
    """BGR -> RGB: a first conv (Keras HWIO kernel) trained on BGR input, reversed so
    that it gives the same output on the same image in RGB order."""
    return np.asarray(kernel)[:, :, ::-1, :]


def scale_input_channels(kernel, factors):
    """Multiplies input channel ``c`` of an HWIO kernel by ``factors[c]``: a
    per-channel scale of the input folded into the first conv (torchvision's
    ``/ (255 * std)``)."""
    factors = np.asarray(factors, dtype=np.float64).reshape(1, 1, -1, 1)
    return (np.asarray(kernel, dtype=np.float64) * factors).astype(np.float32)


def fold_torchvision_input(kernel):
    """torchvision feeds ``(x / 255 - mean) / std``; kerascnn feeds ``x - 255 * mean``
    (``x`` RGB in 0-255). The two differ by ``1 / (255 * std)`` per channel, so the
    first conv's input channels are scaled by that; the mean stays the input's mean,
    and zero padding means the same pixel (the mean) in both."""
    return scale_input_channels(kernel, [1.0 / s for s in get_origin(TORCHVISION).std_rgb])


def fc_chw_to_hwc(kernel, c, h, w):
    """The first fully-connected layer after a flatten, trained on a (C, H, W) map
    (PyTorch, Caffe), for Keras' flatten of an (H, W, C) map.

    ``kernel``: the Keras kernel (in, out) whose ``in = c * h * w`` rows are in CHW
    order (i.e. ``linear_to_dense`` of the publisher's weight); returns the rows in
    HWC order.
    """
    kernel = np.asarray(kernel)
    if kernel.ndim != 2 or kernel.shape[0] != c * h * w:
        raise ValueError(
            f"Expected a (c*h*w, out) kernel with c={c}, h={h}, w={w}. "
            f"Received: shape={kernel.shape}"
        )
    out = kernel.shape[1]
    return kernel.reshape(c, h, w, out).transpose(1, 2, 0, 3).reshape(h * w * c, out)


def fold_bias_into_bn(bias, moving_mean):
    """``BN(conv(x) + b) == BN'(conv(x))`` with ``moving_mean' = moving_mean - b``:
    a conv bias before a batch norm (keras.applications' ResNets) folded into it."""
    return np.asarray(moving_mean, dtype=np.float64) - np.asarray(bias, dtype=np.float64)


def fold_bn_epsilon(gamma, moving_variance, eps_file, eps_model):
    """The gamma that makes a batch norm with ``eps_model`` give what the file's gave
    with ``eps_file`` (same statistics): ``gamma * sqrt((var + eps_model) /
    (var + eps_file))``, exact for every variance (torchvision's 1e-5 into our
    1.001e-5, the least epsilon TensorFlow's fused kernel takes)."""
    var = np.asarray(moving_variance, dtype=np.float64)
    return np.asarray(gamma, dtype=np.float64) * np.sqrt((var + eps_model) / (var + eps_file))


def find_layer(model, name):
    """The layer ``name`` of ``model``, auxiliary heads included (a
    :class:`kerascnn.layers.AuxiliaryLossModel` reaches them through
    ``with_aux_outputs()``, not ``model.layers``); None when there is none."""
    for layer in model.layers:
        if layer.name == name:
            return layer
    aux = getattr(model, "with_aux_outputs", None)
    if aux is not None:
        for layer in aux().layers:
            if layer.name == name:
                return layer
    return None


def weighted_layers(model):
    """Every layer of ``model`` (auxiliary heads included) that holds weights."""
    layers = {layer.name: layer for layer in model.layers}
    aux = getattr(model, "with_aux_outputs", None)
    if aux is not None:
        for layer in aux().layers:
            layers.setdefault(layer.name, layer)
    return [layer for layer in layers.values() if layer.weights]


def set_layer(model, name, arrays, source_name):
    """Sets layer ``name``'s weights (in ``layer.weights`` order) to ``arrays``.

    ``source_name``: the file's name of the tensors, one string for all or one per
    array; the errors name it. Raises ValueError when the model has no such layer,
    the number of arrays differs, or the first array whose shape does not fit
    (naming that tensor, its shape and the shape the layer needs).
    """
    if isinstance(source_name, str):
        sources = [source_name] * len(arrays)
    else:
        sources = list(source_name)
    layer = find_layer(model, name)
    if layer is None:
        raise ValueError(
            f"The weights file has {sources[0]!r} for a layer {name!r} that this model "
            "does not have (check the builder's arguments against the file)."
        )
    targets = layer.weights
    if len(targets) != len(arrays):
        raise ValueError(
            f"Layer {name!r} has {len(targets)} weights, the file gives {len(arrays)} "
            f"({', '.join(sources)})."
        )
    values = []
    for target, array, source in zip(targets, arrays, sources):
        array = np.asarray(array)
        if tuple(array.shape) != tuple(target.shape):
            raise ValueError(
                f"Tensor {source!r} of the weights file has shape {tuple(array.shape)}, "
                f"which does not fit layer {name!r} (its {_weight_name(target)} has shape "
                f"{tuple(target.shape)}); the builder's arguments must match the file."
            )
        values.append(array.astype(np.float32))
    layer.set_weights(values)


def _weight_name(variable):
    path = getattr(variable, "path", None) or getattr(variable, "name", "weight")
    return path.rsplit("/", 1)[-1]


def check_complete(model, assigned: Sequence[str]):
    """Raises ValueError naming the first layer with weights that the file did not
    set (a file that lacks tensors the model needs)."""
    assigned = set(assigned)
    for layer in weighted_layers(model):
        if layer.name not in assigned:
            raise ValueError(
                f"The weights file has no tensors for layer {layer.name!r} of model "
                f"{model.name!r}; the builder's arguments must match the file."
            )


def check_unused(tensors, used: Sequence[str], what="the model"):
    """Raises ValueError naming the first tensor of the file that went nowhere."""
    used = set(used)
    for key, value in tensors.items():
        if key not in used:
            raise ValueError(
                f"Tensor {key!r} of the weights file (shape {tuple(np.shape(value))}) has "
                f"no place in {what}; the builder's arguments must match the file."
            )


def tensor(tensors, key):
    """``tensors[key]``, or a ValueError naming the tensor the file lacks."""
    try:
        return np.asarray(tensors[key])
    except KeyError:
        raise ValueError(
            f"The weights file has no tensor {key!r}; the builder's arguments must match "
            "the file."
        ) from None


def expect_shape(key, array, shape, layer_name):
    """``array`` when its shape is ``shape`` (in the file's layout), else the one-line
    error naming the file's tensor, its shape and the layer it should fill."""
    if tuple(array.shape) != tuple(shape):
        raise ValueError(
            f"Tensor {key!r} of the weights file has shape {tuple(array.shape)}, which does "
            f"not fit layer {layer_name!r} (it needs {tuple(shape)} in the file's layout); "
            "the builder's arguments must match the file."
        )
    return array
