"""keras.applications' and torchvision's ResNet files into
:func:`kerascnn.applications.ResNet18` ... ``ResNet152`` (option B shortcuts).

Our layer names are keras.applications': ``conv1_conv``/``conv1_bn``, then per block
``conv{stage}_block{i}_{k}_conv``/``_bn`` (``k`` = 1, 2(, 3); ``0`` the projection
shortcut), and ``predictions``.

keras.applications (``resnet{50,101,152}_weights_tf_dim_ordering_tf_kernels[_notop].h5``,
the MSRA Caffe models converted by Keras; v1, stride on the first 1×1): the same
layer names, HWIO kernels; what is folded:

- BGR → RGB: ``conv1_conv``'s input channels are reversed (keras'
  ``preprocess_input`` feeds BGR minus the BGR mean; we feed RGB minus the same mean
  in RGB order);
- conv biases: keras' v1 convs have a bias before their batch norm, ours none:
  ``BN(conv(x) + b)`` is ``BN(conv(x))`` with the moving mean lowered by ``b``.

torchvision (``resnet18-f37072fd.pth`` ... and the ResNet-50/101/152 V1/V2 files;
their bottlenecks are "v1.5", stride on the 3×3, so they load into
``stride_in_1x1=False`` only; the shapes are the same, so that is checked here by
origin): ``conv1``/``bn1``, ``layer{s}.{i}.conv{k}``/``bn{k}``,
``layer{s}.{i}.downsample.{0,1}``, ``fc``; what is folded:

- OIHW → HWIO, ``fc`` (out, in) → (in, out);
- torchvision's input ``(x / 255 - mean) / std``: ``conv1``'s input channels are
  scaled by ``1 / (255 * std)``; the mean stays the input's mean (RGB, 0-255, minus
  255 * (0.485, 0.456, 0.406));
- batch-norm epsilon: torchvision's 1e-5 against our 1.001e-5 (the least value of
  TensorFlow's fused kernel), folded exactly into gamma.

timm's ``*.tv_in1k`` safetensors copies of torchvision's weights use the same names.
With ``include_top=False`` the file's classifier is left out.
"""

from __future__ import annotations

import re
import types

import numpy as np

from kerascnn.weights.mappers._common import (
    KERAS_APPLICATIONS,
    TORCHVISION,
    check_complete,
    expect_shape,
    find_layer,
    fold_bias_into_bn,
    fold_bn_epsilon,
    fold_torchvision_input,
    linear_to_dense,
    oihw_to_hwio,
    reverse_input_channels,
    set_layer,
)
from kerascnn.weights.readers import FORMAT_NAMES

KERAS_EPSILON = 1.001e-5  # keras.applications' ResNet batch norms
TORCH_EPSILON = 1e-5  # torch.nn.BatchNorm2d's default (torchvision's ResNets)
HEAD = "predictions"

_TORCH_BLOCK = re.compile(r"^layer(\d+)\.(\d+)\.(conv|bn)(\d+)\.(\w+)$")
_TORCH_DOWN = re.compile(r"^layer(\d+)\.(\d+)\.downsample\.([01])\.(\w+)$")
_TORCH_STEM = re.compile(r"^(conv1|bn1)\.(\w+)$")
_TORCH_FC = re.compile(r"^fc\.(weight|bias)$")
# He et al. (2016), Table 1: the networks kerascnn builds (ResNet18 ... ResNet152).
STANDARD = {
    "ResNet-18": "basic blocks, 2/2/2/2 per stage",
    "ResNet-34": "basic blocks, 3/4/6/3 per stage",
    "ResNet-50": "bottleneck blocks, 3/4/6/3 per stage",
    "ResNet-101": "bottleneck blocks, 3/4/23/3 per stage",
    "ResNet-152": "bottleneck blocks, 3/8/36/3 per stage",
}
_TORCH_UNIT = re.compile(r"^layer(\d+)\.(\d+)\.(?:conv|bn)(\d+)\.")
_KERAS_UNIT = re.compile(r"^conv(\d+)_block(\d+)_(\d+)_(?:conv|bn)(?:/|$)")
_PUBLISHERS = {
    KERAS_APPLICATIONS: "keras.applications' Keras-2 HDF5 (the MSRA models converted)",
    TORCHVISION: "torchvision's .pth (or timm's .safetensors copies)",
}


def assign(model, wf, *, origin):
    """Sets ``model`` (a kerascnn ImageNet ResNet, option B) from ``wf``'s tensors,
    with ``origin``'s conventions (``"keras_applications"`` or ``"torchvision"``)."""
    if origin not in _PUBLISHERS:
        raise ValueError(
            f"{wf.path} is a {FORMAT_NAMES.get(wf.format, wf.format)} file; kerascnn reads "
            "ResNet weights from "
            f"{' or from '.join(_PUBLISHERS.values())}, or from a Keras file of this model "
            "(.weights.h5, .keras)."
        )
    _check_depth(model, wf, origin)
    _check_stride(model, wf, origin)
    if origin == TORCHVISION:
        groups = _torch_groups(wf)
    else:
        groups = _keras_groups(wf)
    has_top = find_layer(model, HEAD) is not None
    values = {}
    for unit, parts in groups.items():
        if unit == HEAD and not has_top:
            continue
        if unit == HEAD:
            values[HEAD] = _dense(model, wf, parts, origin)
        else:
            values.update(_conv_bn(model, wf, unit, parts, origin, first=unit == "conv1"))
    check_complete(model, list(values))
    for name, (arrays, sources) in values.items():
        set_layer(model, name, arrays, sources)


# -- names ------------------------------------------------------------------------------
def _torch_groups(wf):
    """``{our unit: {part: file key}}``; unit ``conv2_block1_1`` has parts conv.weight,
    bn.weight, bn.bias, bn.running_mean, bn.running_var."""
    groups: dict = {}
    for key in wf.tensors:
        if key.endswith("num_batches_tracked"):
            continue
        if m := _TORCH_STEM.match(key):
            kind = "conv" if m[1] == "conv1" else "bn"
            groups.setdefault("conv1", {})[f"{kind}.{m[2]}"] = key
        elif m := _TORCH_BLOCK.match(key):
            unit = f"conv{int(m[1]) + 1}_block{int(m[2]) + 1}_{m[4]}"
            groups.setdefault(unit, {})[f"{m[3]}.{m[5]}"] = key
        elif m := _TORCH_DOWN.match(key):
            unit = f"conv{int(m[1]) + 1}_block{int(m[2]) + 1}_0"
            kind = "conv" if m[3] == "0" else "bn"
            groups.setdefault(unit, {})[f"{kind}.{m[4]}"] = key
        elif m := _TORCH_FC.match(key):
            groups.setdefault(HEAD, {})[m[1]] = key
        else:
            raise ValueError(
                f"Tensor {key!r} (shape {_shape(wf, key)}) of {wf.path} is "
                "not a torchvision ResNet tensor; the file is another network."
            )
    return groups


def _keras_groups(wf):
    """keras.applications' ``<layer>/<i>`` tensors by our unit: ``conv1`` has parts
    ``conv/0`` (kernel), ``conv/1`` (bias), ``bn/0..3``."""
    groups: dict = {}
    for key in wf.tensors:
        layer, _, index = key.rpartition("/")
        if layer == HEAD:
            groups.setdefault(HEAD, {})[index] = key
        elif layer.endswith("_conv") or layer.endswith("_bn"):
            unit, _, kind = layer.rpartition("_")
            groups.setdefault(unit, {})[f"{kind}/{index}"] = key
        else:
            raise ValueError(
                f"Tensor {key!r} (shape {_shape(wf, key)}) of {wf.path} is "
                "not a keras.applications ResNet (v1) tensor; the file is another network."
            )
    return groups


# -- values ------------------------------------------------------------------------------
def _shape(wf, key):
    """A tensor's shape, without reading it where the file tells (readers' Tensors)."""
    declared = getattr(wf.tensors, "shape", None)
    return declared(key) if callable(declared) else tuple(np.shape(wf.tensors[key]))


def _get(wf, parts, part, unit, shape=None, layer=None):
    """The file's tensor ``part`` of ``unit`` as float64; with ``shape``, its declared
    shape is checked against the model's (``layer``) before it is read."""
    key = parts.get(part)
    if key is None:
        raise ValueError(
            f"{wf.path} lacks the {part!r} tensor of {unit!r} (it has "
            f"{', '.join(sorted(parts.values()))}); the builder's arguments must match "
            "the file."
        )
    if shape is not None:
        expect_shape(key, types.SimpleNamespace(shape=_shape(wf, key)), shape, layer)
    declared = getattr(wf.tensors, "dtype", None)
    if callable(declared) and declared(key).kind != "f":
        raise ValueError(
            f"Tensor {key!r} of {wf.path} holds {declared(key)}, not floating-point weights "
            f"for layer {layer or unit!r}."
        )
    return key, np.asarray(wf.tensors[key], dtype=np.float64)


def _conv_bn(model, wf, unit, parts, origin, first):
    conv_name, bn_name = f"{unit}_conv", f"{unit}_bn"
    conv, bn = find_layer(model, conv_name), find_layer(model, bn_name)
    if conv is None or bn is None:
        some = sorted(parts.values())[0]
        raise ValueError(
            f"Tensor {some!r} of the weights file has no place in model {model.name!r} "
            f"(no layer {conv_name!r}): the file is another architecture (depth, "
            "shortcut option); the builder's arguments must match the file."
        )
    kh, kw, cin, cout = conv.kernel.shape
    if origin == TORCHVISION:
        kkey, kernel = _get(wf, parts, "conv.weight", unit, (cout, cin, kh, kw), conv_name)
        kernel = oihw_to_hwio(kernel)
        if first:
            kernel = fold_torchvision_input(kernel)
        bn_keys = [f"bn.{p}" for p in ("weight", "bias", "running_mean", "running_var")]
        eps_file, bias = TORCH_EPSILON, None
    else:
        kkey, kernel = _get(wf, parts, "conv/0", unit, (kh, kw, cin, cout), conv_name)
        if first:
            kernel = reverse_input_channels(kernel)
        bkey, bias = _get(wf, parts, "conv/1", unit, (cout,), conv_name)
        bn_keys = [f"bn/{i}" for i in range(4)]
        eps_file = KERAS_EPSILON
    got = [_get(wf, parts, p, unit, (cout,), bn_name) for p in bn_keys]
    (gk, gamma), (bk, beta), (mk, mean), (vk, var) = got
    if bias is not None:
        mean = fold_bias_into_bn(bias, mean)
    gamma = fold_bn_epsilon(gamma, var, eps_file, bn.epsilon)
    used = {kkey, gk, bk, mk, vk} | ({bkey} if bias is not None else set())
    extra = set(parts.values()) - used
    if extra:
        key = sorted(extra)[0]
        raise ValueError(
            f"Tensor {key!r} of the weights file (shape {_shape(wf, key)}) "
            f"has no place in layer {conv_name!r}/{bn_name!r}."
        )
    return {
        conv_name: ([np.asarray(kernel, np.float32)], kkey),
        bn_name: ([gamma, beta, mean, var], [gk, bk, mk, vk]),
    }


def _dense(model, wf, parts, origin):
    layer = find_layer(model, HEAD)
    cin, cout = layer.kernel.shape
    if origin == TORCHVISION:
        wkey, weight = _get(wf, parts, "weight", HEAD, (cout, cin), HEAD)
        kernel = linear_to_dense(weight)
        bkey, bias = _get(wf, parts, "bias", HEAD, (cout,), HEAD)
    else:
        wkey, kernel = _get(wf, parts, "0", HEAD, (cin, cout), HEAD)
        bkey, bias = _get(wf, parts, "1", HEAD, (cout,), HEAD)
    extra = set(parts.values()) - {wkey, bkey}
    if extra:
        raise ValueError(f"Tensor {sorted(extra)[0]!r} of the weights file has no place in "
                         f"layer {HEAD!r}.")
    return [kernel, bias], [wkey, bkey]


def _architecture(names, pattern, first_stage):
    """``(block, blocks per stage)`` from unit names (``pattern`` captures stage, block
    index and conv index, counted from ``first_stage`` and 0 for the block)."""
    blocks: dict = {}
    bottleneck = False
    for name in names:
        if m := pattern.match(name):
            stage, index, conv = int(m[1]) - first_stage, int(m[2]), int(m[3])
            blocks[stage] = max(blocks.get(stage, 0), index + 1 - (pattern is _KERAS_UNIT))
            bottleneck |= conv == 3
    return ("bottleneck" if bottleneck else "basic"), tuple(blocks[s] for s in sorted(blocks))


def _describe(architecture):
    """``("ResNet-18", "basic blocks, 2/2/2/2 per stage")``: the depth counts the
    weighted layers (the stem, 2 or 3 convs per block, the classifier)."""
    block, blocks = architecture
    depth = sum(blocks) * (3 if block == "bottleneck" else 2) + 2
    return f"ResNet-{depth}", f"{block} blocks, {'/'.join(map(str, blocks))} per stage"


def _check_depth(model, wf, origin):
    """The file's depth (blocks per stage, basic or bottleneck) against the model's, so
    that a ResNet-18 file given to ResNet50 says so, and which builder fits."""
    pattern, first = (_TORCH_UNIT, 1) if origin == TORCHVISION else (_KERAS_UNIT, 2)
    in_file = _architecture(wf.tensors, pattern, first)
    in_model = _architecture([layer.name for layer in model.layers], _KERAS_UNIT, 2)
    if not in_file[1] or not in_model[1] or in_file == in_model:
        return
    (file_name, file_shape), (model_name, model_shape) = _describe(in_file), _describe(in_model)
    depth = file_name.partition("-")[2]
    fix = (f"Build it with ResNet{depth}(weights=...) (`--arch resnet{depth}` on the "
           "command line)." if STANDARD.get(file_name) == file_shape
           else "kerascnn builds no ResNet of that shape.")
    raise ValueError(
        f"{wf.path} is a {file_name} ({file_shape}); this model is a {model_name} "
        f"({model_shape}). {fix}"
    )


def _check_stride(model, wf, origin):
    """torchvision's bottlenecks stride on the 3×3 ("v1.5"), keras.applications' (the
    MSRA models) on the first 1×1 (v1); both have the same shapes but compute
    different functions, so the model's placement must be the file's."""
    conv = find_layer(model, "conv3_block1_1_conv")
    if conv is None or find_layer(model, "conv3_block1_3_conv") is None:
        return  # no bottleneck blocks
    in_1x1 = tuple(conv.strides) != (1, 1)
    if origin == TORCHVISION and in_1x1:
        raise ValueError(
            f"{wf.path} is a torchvision ResNet, whose bottleneck blocks put the stride-2 "
            "on the 3x3 conv (\"ResNet v1.5\"); this model strides on the first 1x1. Build "
            "it with stride_in_1x1=False. Received: stride_in_1x1=True"
        )
    if origin == KERAS_APPLICATIONS and not in_1x1:
        raise ValueError(
            f"{wf.path} is a keras.applications ResNet (the MSRA models, v1), whose "
            "bottleneck blocks put the stride-2 on the first 1x1 conv; this model strides "
            "on the 3x3. Build it with stride_in_1x1=True. Received: stride_in_1x1=False"
        )


__all__ = ["assign"]
