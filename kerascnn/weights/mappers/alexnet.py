"""BVLC's ``bvlc_alexnet.caffemodel`` into :func:`kerascnn.applications.AlexNet`.

The file is BVLC Caffe's replication of Krizhevsky et al. (2012), ``models/bvlc_alexnet``
in BVLC/caffe. Its net (``deploy.prototxt``) is the paper's two-tower AlexNet, layer
for layer the net ``AlexNet()`` builds (``groups=2``, 227×227×3, 1000 classes):
conv1 96×11×11/4 → ReLU → LRN → max-pool 3/2; conv2 256×5×5 pad 2 group 2 → ReLU →
LRN → max-pool 3/2; conv3 384×3×3 pad 1; conv4 384×3×3 pad 1 group 2; conv5 256×3×3
pad 1 group 2 → max-pool 3/2; fc6, fc7 4096 (ReLU, dropout 0.5); fc8 1000. Its input
is BGR, 0-255, minus the mean (BVLC's mean image; its channel means are 104, 117, 123
in BGR order).

What the mapping folds, so that the model gives Caffe's outputs on kerascnn's input
(RGB, 0-255, minus the mean RGB (123, 117, 104)):

- BGR → RGB: conv1's input channels are reversed.
- Layouts: Caffe's conv weight (out, in/group, h, w) → Keras' (h, w, in/group, out);
  InnerProduct (out, in) → Dense (in, out). Caffe's ``group: 2`` and our
  ``Conv2D(groups=2)`` split the input and the output channels the same way (two
  contiguous halves, output half g seeing input half g), so the transpose is all a
  grouped conv needs.
- fc6: Caffe flattens pool5 as (C, H, W), Keras as (H, W, C); fc6's input rows are
  reordered.
- LRN: Caffe's ``LRN`` (ACROSS_CHANNELS) computes ``a / (k + α/n · Σ a²)^β`` with
  k = 1, α = 1e-4, n = 5, β = 0.75; the builder's default is the paper's formula
  (k = 2, α not divided by n). ``norm1`` and ``norm2`` of the loaded model get
  ``bias=1, alpha=1e-4/5``, which stay in their config (``.keras`` round-trips).

Not a difference: Caffe's pooling rounds its output size up, Keras' "valid" pooling
down, but every pooled map of a 227×227 input divides exactly (55 → 27 → 13 → 6), so
both give the same maps (with ``include_top=False`` at other sizes the last row or
column of a pooled map may differ).

``bvlc_reference_caffenet.caffemodel`` has the same layer names and shapes but pools
before its LRN layers (a different function); when the file lists its layers, that
order is refused.

The Caffe helpers below (tensors by layer, shape checks in Caffe's layout, the LRN
setting) are shared with :mod:`kerascnn.weights.mappers.googlenet`.
"""

from __future__ import annotations

import numpy as np

from kerascnn.layers import LocalResponseNormalization
from kerascnn.weights.mappers._common import (
    CAFFE,
    check_complete,
    fc_chw_to_hwc,
    find_layer,
    get_origin,
    linear_to_dense,
    oihw_to_hwio,
    reverse_input_channels,
    set_layer,
)
from kerascnn.weights.readers import FORMAT_NAMES

# Caffe's LRN as BVLC's prototxts set it (both nets): local_size 5, alpha 1e-4,
# beta 0.75, k left at Caffe's default 1; Caffe divides alpha by local_size. The
# Caffe origin's record holds them (kerascnn.weights.origins).
CAFFE_LRN = dict(get_origin(CAFFE).lrn)

NETWORK = "AlexNet"
# (Caffe layer, our layer, kind); kind: "first" (conv1, BGR input), "conv", "fc",
# or ("flat", flatten layer) for the first fc after a flatten.
PLAN = (
    ("conv1", "conv1", "first"),
    ("conv2", "conv2", "conv"),
    ("conv3", "conv3", "conv"),
    ("conv4", "conv4", "conv"),
    ("conv5", "conv5", "conv"),
    ("fc6", "fc6", ("flat", "flatten")),
    ("fc7", "fc7", "fc"),
    ("fc8", "fc8", "fc"),
)
# Caffe LRN layer -> ours, and the pooling that must come after it (AlexNet's order).
LRN_LAYERS = {"norm1": "norm1", "norm2": "norm2"}
_LRN_BEFORE_POOL = (("norm1", "pool1"), ("norm2", "pool2"))


def assign(model, wf, *, origin):
    """Sets ``model`` (an ``AlexNet()``, ``groups=2``) from BVLC's AlexNet file ``wf``."""
    if origin != CAFFE and getattr(wf, "format", None) == "caffe":
        raise ValueError(
            f"{wf.path}: AlexNet's weights are BVLC's Caffe model, mapped with Caffe's "
            f"conventions (origin={CAFFE!r}). Received: origin={origin!r}"
        )
    if origin != CAFFE:
        raise ValueError(
            f"{wf.path} is a {FORMAT_NAMES.get(wf.format, wf.format)} file, but AlexNet's "
            "pretrained weights are BVLC's Caffe model (bvlc_alexnet.caffemodel, the "
            "paper's two-tower net that AlexNet() builds): kerascnn reads AlexNet weights "
            "from a Caffe .caffemodel, or from a Keras file of this model (.weights.h5, "
            ".keras)."
        )
    layers = caffe_layers(wf, NETWORK)
    require_layers(wf, layers, NETWORK, ("conv1", "conv2", "conv3", "conv4", "conv5"))
    order = list(getattr(wf, "layer_types", None) or ())
    for norm, pool in _LRN_BEFORE_POOL:
        if norm in order and pool in order and order.index(pool) < order.index(norm):
            raise ValueError(
                f"{wf.path} pools before its LRN layer {norm!r}: it is CaffeNet "
                "(bvlc_reference_caffenet), not BVLC's AlexNet, whose LRN comes before the "
                "pooling as in the paper and in AlexNet(). Use bvlc_alexnet.caffemodel."
            )
    assign_plan(model, wf, layers, PLAN, NETWORK)
    set_caffe_lrn(model, wf, LRN_LAYERS, NETWORK)


# -- Caffe helpers shared with the GoogLeNet mapper -----------------------------------


def caffe_layers(wf, network):
    """``{layer: {blob index: array}}`` from a Caffe file's ``"<layer>/<index>"`` tensors
    (Caffe's layer names may themselves hold "/", e.g. ``inception_3a/1x1/0``)."""
    fmt = getattr(wf, "format", None)
    if fmt != "caffe":
        raise ValueError(
            f"BVLC's {network} weights are a Caffe .caffemodel; {wf.path} is not one. "
            f"Received: format={fmt!r}"
        )
    layers: dict = {}
    for key, value in wf.tensors.items():
        layer, _, index = key.rpartition("/")
        if not layer or not index.isdigit():
            raise ValueError(
                f"A Caffe tensor is named '<layer>/<blob index>'. Received: {key!r} in {wf.path}"
            )
        layers.setdefault(layer, {})[int(index)] = value
    return layers


def require_layers(wf, layers, network, names):
    """A clear error when ``wf`` is not BVLC's ``network`` (another net's file)."""
    for name in names:
        if name not in layers:
            raise ValueError(
                f"{wf.path} is not BVLC's {network} caffemodel: it has no layer {name!r}"
                f"{_describe(layers)}. {network}() loads bvlc_{network.lower()}.caffemodel."
            )


def _describe(layers):
    if "inception_3a/1x1" in layers:
        return " (it is a GoogLeNet file: bvlc_googlenet.caffemodel loads into GoogLeNet())"
    if "conv1" in layers and "conv5" in layers:
        return " (it is an AlexNet/CaffeNet file: bvlc_alexnet.caffemodel loads into AlexNet())"
    names = list(layers)
    more = ", ..." if len(names) > 6 else ""
    return f" (its layers with weights: {', '.join(names[:6]) or 'none'}{more})"


def assign_plan(model, wf, layers, plan, network):
    """Sets every layer of ``plan`` that ``model`` has; the file's layers that the
    model lacks (fc6-8 with ``include_top=False``, auxiliary heads without
    ``aux_logits``) are left unused. Every shape is checked before any layer is set,
    in Caffe's layout, so the error names the file's tensor and its own shape."""
    values = {}
    for caffe_name, name, kind in plan:
        layer = find_layer(model, name)
        if layer is None:
            continue
        values[name] = (_arrays(model, wf, layers, caffe_name, layer, kind, network), caffe_name)
    check_complete(model, list(values))
    for name, (arrays, caffe_name) in values.items():
        set_layer(model, name, arrays, [f"{caffe_name}/0", f"{caffe_name}/1"])


def _arrays(model, wf, layers, caffe_name, layer, kind, network):
    if caffe_name not in layers:
        raise ValueError(
            f"{wf.path} has no tensors for Caffe layer {caffe_name!r}, which layer "
            f"{layer.name!r} of {model.name!r} needs; the builder's arguments must match "
            f"BVLC's {network}."
        )
    kernel = layer.kernel
    if kind in ("first", "conv"):
        kh, kw, cin, cout = kernel.shape
        want = (cout, cin, kh, kw)
    else:
        cin, cout = kernel.shape
        want = (cout, cin)
    blobs = layers[caffe_name]
    weight = _fit(wf, model, blobs, caffe_name, 0, want, layer.name)
    bias = _fit(wf, model, blobs, caffe_name, 1, (want[0],), layer.name)
    if kind in ("first", "conv"):
        kernel = oihw_to_hwio(weight)
        if kind == "first":
            kernel = reverse_input_channels(kernel)
    else:
        kernel = linear_to_dense(weight)
        if isinstance(kind, tuple):
            flat = find_layer(model, kind[1])
            h, w, c = flat.input.shape[1:]
            kernel = fc_chw_to_hwc(kernel, c, h, w)
    return [np.ascontiguousarray(kernel, dtype=np.float32), np.asarray(bias, dtype=np.float32)]


def _fit(wf, model, blobs, caffe_name, index, want, name):
    """Blob ``index`` of ``caffe_name`` with shape ``want``; Caffe's legacy 4-D blob
    shapes (num, channels, height, width) pad 2-D and 1-D blobs with leading 1s."""
    key = f"{caffe_name}/{index}"
    if index not in blobs:
        raise ValueError(
            f"{wf.path} has no tensor {key!r} (layer {name!r} of {model.name!r} needs "
            f"shape {want})."
        )
    array = np.asarray(blobs[index])
    shape = tuple(array.shape)
    extra = len(shape) - len(want)
    if shape[extra:] == tuple(want) and (extra == 0 or all(d == 1 for d in shape[:extra])):
        return array.reshape(want)
    raise ValueError(
        f"Tensor {key!r} of {wf.path} has shape {shape}, which does not fit layer "
        f"{name!r} of {model.name!r}: it needs {tuple(want)} (Caffe's layout); the "
        "builder's arguments must match the file."
    )


def set_caffe_lrn(model, wf, lrn_layers, network):
    """Caffe's LRN on our LRN layers: ``bias=k=1``, ``alpha=α/n``, same n and β; kept
    in each layer's config. ``lrn_layers``: Caffe name -> our name."""
    types = getattr(wf, "layer_types", None) or {}
    for caffe_name, name in lrn_layers.items():
        if types and _kind(types.get(caffe_name)) != "lrn":
            raise ValueError(
                f"{wf.path} has no LRN layer {caffe_name!r}, which BVLC's {network} has "
                f"(found type {types.get(caffe_name)!r}); it is another network."
            )
        layer = find_layer(model, name)
        if layer is None:
            continue
        if not isinstance(layer, LocalResponseNormalization):
            raise ValueError(
                f"Layer {name!r} of {model.name!r} is not a LocalResponseNormalization "
                f"layer (found {type(layer).__name__}); the model must be kerascnn's {network}."
            )
        layer.depth_radius = (CAFFE_LRN["local_size"] - 1) // 2
        layer.bias = CAFFE_LRN["k"]
        layer.alpha = CAFFE_LRN["alpha"] / CAFFE_LRN["local_size"]
        layer.beta = CAFFE_LRN["beta"]
    _forget_traces(model)


def _kind(layer_type):
    """A Caffe layer type in one spelling: ``"LRN"`` (``layer``) and ``"LRN"`` or 15
    (V1 ``layers``' enum) -> ``"lrn"``; ``"InnerProduct"``/``"INNER_PRODUCT"`` ->
    ``"innerproduct"``."""
    if isinstance(layer_type, int):
        return {4: "convolution", 14: "innerproduct", 15: "lrn", 17: "pooling"}.get(layer_type)
    return None if layer_type is None else str(layer_type).replace("_", "").lower()


def _forget_traces(model):
    """The LRN constants are read when a function is traced: drop traced functions."""
    graphs = [model]
    aux = getattr(model, "with_aux_outputs", None)
    if aux is not None:
        graphs.append(aux())
    for graph in graphs:
        for attr in ("train_function", "test_function", "predict_function"):
            if getattr(graph, attr, None) is not None:
                setattr(graph, attr, None)
