"""keras.applications' and torchvision's VGG files into :func:`kerascnn.applications.VGG`
(configurations A, B, D, E: ``VGG11``, ``VGG13``, ``VGG16``, ``VGG19``).

Our layer names: ``block{b}_conv{i}``, then ``fc6 fc7 fc8`` after ``flatten``.

keras.applications (``vgg16_weights_tf_dim_ordering_tf_kernels[_notop].h5``,
``vgg19_…``: Oxford's Caffe models converted by Keras): the same conv names, HWIO
kernels; ``fc1 fc2 predictions`` are our ``fc6 fc7 fc8``; its flatten is already of
an (H, W, C) map. What is folded: BGR → RGB (``block1_conv1``'s input channels
reversed).

torchvision (``vgg11-8a719046.pth``, ``vgg13-19584684.pth``, ``vgg16-397923af.pth``,
``vgg19-dcbb9e9d.pth``): ``features.{j}`` numbers every module of the conv stack
(conv, ReLU, pool), so conv ``j`` is found by walking our layers in order;
``classifier.{0,3,6}`` are ``fc6 fc7 fc8``. What is folded:

- OIHW → HWIO, linear (out, in) → (in, out);
- torchvision's input ``(x / 255 - mean) / std``: the first conv's input channels
  scaled by ``1 / (255 * std)`` (the mean stays the input's mean);
- fc6: torchvision flattens the (C, H, W) map, Keras the (H, W, C) map: fc6's input
  rows are reordered. torchvision's ``AdaptiveAvgPool2d((7, 7))`` before the flatten
  is the identity on the 7×7 map of a 224×224 input, the only size at which our
  ``include_top=True`` is built.

With ``include_top=False`` the file's classifier is left out.
"""

from __future__ import annotations

import re

import keras
import numpy as np

from kerascnn.weights.mappers._common import (
    KERAS_APPLICATIONS,
    TORCHVISION,
    check_complete,
    check_origin,
    expect_shape,
    fc_chw_to_hwc,
    find_layer,
    fold_torchvision_input,
    linear_to_dense,
    oihw_to_hwio,
    reverse_input_channels,
    set_layer,
)

HEAD = ("fc6", "fc7", "fc8")
_KERAS_HEAD = {"fc1": "fc6", "fc2": "fc7", "predictions": "fc8"}
_TORCH_HEAD = {0: "fc6", 3: "fc7", 6: "fc8"}
_TORCH_KEY = re.compile(r"^(features|classifier)\.(\d+)\.(weight|bias)$")


def assign(model, wf, *, origin):
    """Sets ``model`` (a kerascnn VGG) from ``wf``'s tensors with ``origin``'s
    conventions (``"keras_applications"`` or ``"torchvision"``)."""
    check_origin(origin, (KERAS_APPLICATIONS, TORCHVISION))
    plan = _torch_plan(model, wf) if origin == TORCHVISION else _keras_plan(model, wf)
    convs = _conv_layers(model)
    first = convs[0].name if convs else None
    values = {}
    for name, (wkey, bkey) in plan.items():
        layer = find_layer(model, name)
        if layer is None:
            continue  # the head, with include_top=False
        kernel = _convert(model, layer, name, wkey, _tensor(wf, wkey), origin, first)
        bias = expect_shape(bkey, _tensor(wf, bkey), (layer.bias.shape[0],), name)
        values[name] = ([kernel, bias], [wkey, bkey])
    check_complete(model, list(values))
    for name, (arrays, sources) in values.items():
        set_layer(model, name, arrays, sources)


def _conv_layers(model):
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]


def _tensor(wf, key):
    return np.asarray(wf.tensors[key], dtype=np.float32)


def _convert(model, layer, name, key, weight, origin, first):
    kernel_shape = tuple(layer.kernel.shape)
    conv = len(kernel_shape) == 4
    if origin == TORCHVISION:
        if conv:
            kh, kw, cin, cout = kernel_shape
            kernel = oihw_to_hwio(expect_shape(key, weight, (cout, cin, kh, kw), name))
        else:
            cin, cout = kernel_shape
            kernel = linear_to_dense(expect_shape(key, weight, (cout, cin), name))
            if name == "fc6":
                h, w, c = find_layer(model, "flatten").input.shape[1:]
                kernel = fc_chw_to_hwc(kernel, c, h, w)
        if name == first:
            kernel = fold_torchvision_input(kernel)
        return np.ascontiguousarray(kernel, dtype=np.float32)
    kernel = expect_shape(key, weight, kernel_shape, name)
    if name == first:
        kernel = reverse_input_channels(kernel)
    return np.ascontiguousarray(kernel, dtype=np.float32)


def _keras_plan(model, wf):
    """``{our layer: (kernel key, bias key)}`` from keras.applications' names."""
    layers = {}
    for key in wf.tensors:
        layer, _, index = key.rpartition("/")
        if index not in ("0", "1"):
            raise ValueError(f"Tensor {key!r} of {wf.path} is not a keras.applications "
                             "VGG tensor; the file is another network.")
        layers.setdefault(layer, set()).add(index)
    plan = {}
    for layer in layers:
        ours = _KERAS_HEAD.get(layer, layer)
        if ours not in HEAD and find_layer(model, ours) is None:
            raise ValueError(
                f"Tensor '{layer}/0' of the weights file (shape "
                f"{tuple(np.shape(wf.tensors[layer + '/0']))}) has no place in model "
                f"{model.name!r} (no layer {ours!r}): the file is another configuration; "
                "the builder's arguments must match the file."
            )
        plan[ours] = (f"{layer}/0", f"{layer}/1")
        for key in plan[ours]:
            if key not in wf.tensors:
                raise ValueError(f"{wf.path} lacks tensor {key!r}.")
    return plan


def _torch_plan(model, wf):
    """``{our layer: (weight key, bias key)}`` from torchvision's ``features.{j}``
    (j: the index of the conv in the Sequential of conv, ReLU and pool modules)."""
    expected = {}
    j = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            expected[j] = layer.name
            j += 2  # the conv and its ReLU
        elif isinstance(layer, keras.layers.MaxPooling2D):
            j += 1
    plan = {}
    for key in wf.tensors:
        m = _TORCH_KEY.match(key)
        if m is None:
            raise ValueError(
                f"Tensor {key!r} (shape {tuple(np.shape(wf.tensors[key]))}) of {wf.path} is "
                "not a torchvision VGG tensor; the file is another network."
            )
        index = int(m[2])
        table = expected if m[1] == "features" else _TORCH_HEAD
        if index not in table:
            raise ValueError(
                f"Tensor {key!r} of the weights file (shape {tuple(np.shape(wf.tensors[key]))}) "
                f"has no place in model {model.name!r}: the file is another configuration "
                "(or has batch norm); the builder's arguments must match the file."
            )
        plan[table[index]] = (f"{m[1]}.{index}.weight", f"{m[1]}.{index}.bias")
        for k in plan[table[index]]:
            if k not in wf.tensors:
                raise ValueError(f"{wf.path} lacks tensor {k!r}.")
    return plan


__all__ = ["assign"]
