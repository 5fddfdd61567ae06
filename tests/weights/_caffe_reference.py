"""Caffe, independently of kerascnn: ``.caffemodel`` files written with protobuf, and a
numpy forward pass with Caffe's semantics for BVLC's AlexNet and GoogLeNet.

The nets are transcribed from BVLC/caffe's ``models/bvlc_alexnet/deploy.prototxt``
and ``models/bvlc_googlenet/train_val.prototxt`` (the latter for the auxiliary heads
``loss1/*``, ``loss2/*``). The forward pass follows Caffe's layers:

- Convolution: floor output size, zero padding, ``group`` splits the input and output
  channels into contiguous blocks (``conv_layer.cpp``/``base_conv_layer.cpp``);
- Pooling: *ceil* output size, ``if pad and (out - 1) * stride >= size + pad: out -= 1``;
  MAX over the window clipped to the map; AVE divides by the window clipped to
  ``size + pad`` (``pooling_layer.cpp``);
- LRN (ACROSS_CHANNELS): ``a / (k + alpha / n * sum_{window of n} a^2) ** beta``,
  window centred, ``k`` default 1 (``lrn_layer.cpp``);
- InnerProduct: the input flattened in (C, H, W) order times weight (out, in)^T;
- ReLU, Concat (channels), Dropout (identity at test time), Softmax.

Nothing here imports kerascnn: the tests compare kerascnn's loaded models with this.
"""

from __future__ import annotations

import math

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from numpy.lib.stride_tricks import sliding_window_view

# -- caffe.proto (the subset a .caffemodel's weights need) -----------------------------

_F = descriptor_pb2.FieldDescriptorProto
V1_TYPES = {  # V1LayerParameter.LayerType (caffe.proto)
    "Accuracy": 1, "Concat": 3, "Convolution": 4, "Data": 5, "Dropout": 6,
    "InnerProduct": 14, "LRN": 15, "Pooling": 17, "ReLU": 18, "Softmax": 20,
    "SoftmaxWithLoss": 21,
}


def _message_classes():
    fdp = descriptor_pb2.FileDescriptorProto(
        name="kerascnn_test_caffe.proto", package="caffe", syntax="proto2"
    )

    def field(msg, name, number, ftype, label=_F.LABEL_OPTIONAL, type_name=None, packed=False):
        f = msg.field.add(name=name, number=number, type=ftype, label=label)
        if type_name:
            f.type_name = type_name
        if packed:
            f.options.packed = True

    shape = fdp.message_type.add(name="BlobShape")
    field(shape, "dim", 1, _F.TYPE_INT64, _F.LABEL_REPEATED, packed=True)
    blob = fdp.message_type.add(name="BlobProto")
    field(blob, "num", 1, _F.TYPE_INT32)
    field(blob, "channels", 2, _F.TYPE_INT32)
    field(blob, "height", 3, _F.TYPE_INT32)
    field(blob, "width", 4, _F.TYPE_INT32)
    field(blob, "data", 5, _F.TYPE_FLOAT, _F.LABEL_REPEATED, packed=True)
    field(blob, "shape", 7, _F.TYPE_MESSAGE, type_name=".caffe.BlobShape")
    layer = fdp.message_type.add(name="LayerParameter")
    field(layer, "name", 1, _F.TYPE_STRING)
    field(layer, "type", 2, _F.TYPE_STRING)
    field(layer, "bottom", 3, _F.TYPE_STRING, _F.LABEL_REPEATED)
    field(layer, "top", 4, _F.TYPE_STRING, _F.LABEL_REPEATED)
    field(layer, "blobs", 7, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, ".caffe.BlobProto")
    v1 = fdp.message_type.add(name="V1LayerParameter")
    enum = v1.enum_type.add(name="LayerType")
    enum.value.add(name="NONE", number=0)
    for type_name, number in V1_TYPES.items():
        enum.value.add(name=type_name.upper(), number=number)
    field(v1, "bottom", 2, _F.TYPE_STRING, _F.LABEL_REPEATED)
    field(v1, "top", 3, _F.TYPE_STRING, _F.LABEL_REPEATED)
    field(v1, "name", 4, _F.TYPE_STRING)
    field(v1, "type", 5, _F.TYPE_ENUM, type_name=".caffe.V1LayerParameter.LayerType")
    field(v1, "blobs", 6, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, ".caffe.BlobProto")
    net = fdp.message_type.add(name="NetParameter")
    field(net, "name", 1, _F.TYPE_STRING)
    field(net, "layers", 2, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, ".caffe.V1LayerParameter")
    field(net, "layer", 100, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, ".caffe.LayerParameter")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"caffe.{name}"))
        for name in ("BlobProto", "NetParameter")
    }


_CLASSES = _message_classes()


def _varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _blob(array, legacy):
    """A BlobProto of ``array``. Its ``data`` (field 5, packed float) is parsed by
    protobuf from its wire form: ``extend`` from Python floats takes ~7 s for fc6's
    38M values, parsing the same bytes a fraction of a second."""
    data = np.ascontiguousarray(array, dtype="<f4").tobytes()
    blob = _CLASSES["BlobProto"].FromString(b"\x2a" + _varint(len(data)) + data)
    if legacy:  # 2014 files: num, channels, height, width, 2-D/1-D padded with 1s
        dims = (1,) * (4 - array.ndim) + tuple(array.shape)
        blob.num, blob.channels, blob.height, blob.width = dims
    else:
        blob.shape.dim.extend(array.shape)
    return blob


def write_caffemodel(path, net, blobs, *, encoding, name="net"):
    """Writes ``net`` (layer dicts) with ``blobs`` ({layer: [arrays]}) as a .caffemodel.

    ``encoding``: ``"layer"`` (``NetParameter.layer``, field 100, blob ``shape``) or
    ``"layers"`` (the deprecated V1 ``layers``, field 2, enum types, legacy 4-D
    num/channels/height/width shapes, as BVLC's 2014 files)."""
    msg = _CLASSES["NetParameter"](name=name)
    for spec in net:
        if encoding == "layer":
            layer = msg.layer.add(name=spec["name"], type=spec["type"])
        else:
            layer = msg.layers.add(name=spec["name"], type=V1_TYPES[spec["type"]])
        layer.bottom.extend(spec.get("bottom", ()))
        layer.top.extend(spec.get("top", ()))
        for array in blobs.get(spec["name"], ()):
            layer.blobs.append(_blob(np.asarray(array), legacy=encoding == "layers"))
    with open(path, "wb") as f:
        f.write(msg.SerializeToString())


# -- the nets, from BVLC's prototxts ----------------------------------------------------


def _conv(name, bottom, out, k, stride=1, pad=0, group=1, top=None):
    return {"name": name, "type": "Convolution", "bottom": [bottom], "top": [top or name],
            "out": out, "k": k, "stride": stride, "pad": pad, "group": group}


def _relu(name, top):
    return {"name": name, "type": "ReLU", "bottom": [top], "top": [top]}


def _pool(name, bottom, mode, k, stride, pad=0):
    return {"name": name, "type": "Pooling", "bottom": [bottom], "top": [name],
            "mode": mode, "k": k, "stride": stride, "pad": pad}


def _lrn(name, bottom):
    # BVLC's lrn_param: local_size 5, alpha 0.0001, beta 0.75 (k: Caffe's default 1).
    return {"name": name, "type": "LRN", "bottom": [bottom], "top": [name],
            "size": 5, "alpha": 1e-4, "beta": 0.75, "k": 1.0}


def _fc(name, bottom, out):
    return {"name": name, "type": "InnerProduct", "bottom": [bottom], "top": [name], "out": out}


def _dropout(name, top):
    return {"name": name, "type": "Dropout", "bottom": [top], "top": [top]}


def alexnet(classes=1000):
    """``models/bvlc_alexnet/deploy.prototxt`` (output: ``fc8``, then ``prob``)."""
    net = [{"name": "data", "type": "Data", "top": ["data"]}]
    net += [_conv("conv1", "data", 96, 11, stride=4), _relu("relu1", "conv1"),
            _lrn("norm1", "conv1"), _pool("pool1", "norm1", "MAX", 3, 2),
            _conv("conv2", "pool1", 256, 5, pad=2, group=2), _relu("relu2", "conv2"),
            _lrn("norm2", "conv2"), _pool("pool2", "norm2", "MAX", 3, 2),
            _conv("conv3", "pool2", 384, 3, pad=1), _relu("relu3", "conv3"),
            _conv("conv4", "conv3", 384, 3, pad=1, group=2), _relu("relu4", "conv4"),
            _conv("conv5", "conv4", 256, 3, pad=1, group=2), _relu("relu5", "conv5"),
            _pool("pool5", "conv5", "MAX", 3, 2),
            _fc("fc6", "pool5", 4096), _relu("relu6", "fc6"), _dropout("drop6", "fc6"),
            _fc("fc7", "fc6", 4096), _relu("relu7", "fc7"), _dropout("drop7", "fc7"),
            _fc("fc8", "fc7", classes),
            {"name": "prob", "type": "Softmax", "bottom": ["fc8"], "top": ["prob"]}]
    return net


# (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj): the prototxt's num_output.
_INCEPTION = (
    ("3a", 64, 96, 128, 16, 32, 32), ("3b", 128, 128, 192, 32, 96, 64),
    ("4a", 192, 96, 208, 16, 48, 64), ("4b", 160, 112, 224, 24, 64, 64),
    ("4c", 128, 128, 256, 24, 64, 64), ("4d", 112, 144, 288, 32, 64, 64),
    ("4e", 256, 160, 320, 32, 128, 128), ("5a", 256, 160, 320, 32, 128, 128),
    ("5b", 384, 192, 384, 48, 128, 128),
)


def _inception(block, bottom, n1, n3r, n3, n5r, n5, proj):
    p = f"inception_{block}/"
    return [
        _conv(p + "1x1", bottom, n1, 1), _relu(p + "relu_1x1", p + "1x1"),
        _conv(p + "3x3_reduce", bottom, n3r, 1), _relu(p + "relu_3x3_reduce", p + "3x3_reduce"),
        _conv(p + "3x3", p + "3x3_reduce", n3, 3, pad=1), _relu(p + "relu_3x3", p + "3x3"),
        _conv(p + "5x5_reduce", bottom, n5r, 1), _relu(p + "relu_5x5_reduce", p + "5x5_reduce"),
        _conv(p + "5x5", p + "5x5_reduce", n5, 5, pad=2), _relu(p + "relu_5x5", p + "5x5"),
        _pool(p + "pool", bottom, "MAX", 3, 1, pad=1),
        _conv(p + "pool_proj", p + "pool", proj, 1), _relu(p + "relu_pool_proj", p + "pool_proj"),
        {"name": p + "output", "type": "Concat", "top": [p + "output"],
         "bottom": [p + "1x1", p + "3x3", p + "5x5", p + "pool_proj"]},
    ]


def _aux_head(i, bottom, classes):
    p = f"loss{i}/"
    return [
        _pool(p + "ave_pool", bottom, "AVE", 5, 3),
        _conv(p + "conv", p + "ave_pool", 128, 1), _relu(p + "relu_conv", p + "conv"),
        _fc(p + "fc", p + "conv", 1024), _relu(p + "relu_fc", p + "fc"),
        _dropout(p + "drop_fc", p + "fc"),
        _fc(p + "classifier", p + "fc", classes),
        {"name": p + "loss", "type": "SoftmaxWithLoss", "bottom": [p + "classifier", "label"],
         "top": [p + f"loss{i}"]},
    ]


def googlenet(classes=1000):
    """``models/bvlc_googlenet/train_val.prototxt`` (outputs ``loss1/classifier``,
    ``loss2/classifier``, ``loss3/classifier``; data and loss layers listed, not run)."""
    net = [{"name": "data", "type": "Data", "top": ["data", "label"]}]
    net += [_conv("conv1/7x7_s2", "data", 64, 7, stride=2, pad=3),
            _relu("conv1/relu_7x7", "conv1/7x7_s2"),
            _pool("pool1/3x3_s2", "conv1/7x7_s2", "MAX", 3, 2), _lrn("pool1/norm1", "pool1/3x3_s2"),
            _conv("conv2/3x3_reduce", "pool1/norm1", 64, 1),
            _relu("conv2/relu_3x3_reduce", "conv2/3x3_reduce"),
            _conv("conv2/3x3", "conv2/3x3_reduce", 192, 3, pad=1),
            _relu("conv2/relu_3x3", "conv2/3x3"),
            _lrn("conv2/norm2", "conv2/3x3"), _pool("pool2/3x3_s2", "conv2/norm2", "MAX", 3, 2)]
    bottom = "pool2/3x3_s2"
    for block, *spec in _INCEPTION:
        net += _inception(block, bottom, *spec)
        bottom = f"inception_{block}/output"
        if block == "4a":
            net += _aux_head(1, bottom, classes)
        if block == "4d":
            net += _aux_head(2, bottom, classes)
        if block in ("3b", "4e"):
            pool = "pool3/3x3_s2" if block == "3b" else "pool4/3x3_s2"
            net.append(_pool(pool, bottom, "MAX", 3, 2))
            bottom = pool
    net += [_pool("pool5/7x7_s1", bottom, "AVE", 7, 1),
            _dropout("pool5/drop_7x7_s1", "pool5/7x7_s1"),
            _fc("loss3/classifier", "pool5/7x7_s1", classes),
            {"name": "loss3/loss3", "type": "SoftmaxWithLoss",
             "bottom": ["loss3/classifier", "label"], "top": ["loss3/loss3"]}]
    return net


# -- the forward pass ------------------------------------------------------------------


def conv(x, w, b, *, stride, pad, group):
    n, c, h, wd = x.shape
    out, cg, kh, kw = w.shape
    assert c == cg * group, (c, cg, group)
    ho = (h + 2 * pad - kh) // stride + 1
    wo = (wd + 2 * pad - kw) // stride + 1
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    win = sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride][:, :, :ho, :wo]
    og = out // group
    parts = [
        np.einsum("nchwij,ocij->nohw", win[:, g * cg:(g + 1) * cg], w[g * og:(g + 1) * og],
                  optimize=True)
        for g in range(group)
    ]
    return np.concatenate(parts, axis=1) + b.reshape(1, -1, 1, 1)


def pool(x, *, mode, k, stride, pad):
    n, c, h, w = x.shape

    def size(d):
        o = int(math.ceil((d + 2 * pad - k) / stride)) + 1
        if pad and (o - 1) * stride >= d + pad:
            o -= 1
        return o

    ho, wo = size(h), size(w)
    y = np.empty((n, c, ho, wo), x.dtype)
    for i in range(ho):
        for j in range(wo):
            hs, ws = i * stride - pad, j * stride - pad
            he, we = min(hs + k, h + pad), min(ws + k, w + pad)
            area = (he - hs) * (we - ws)
            hs, ws, he, we = max(hs, 0), max(ws, 0), min(he, h), min(we, w)
            window = x[:, :, hs:he, ws:we]
            if mode == "MAX":
                y[:, :, i, j] = window.max(axis=(2, 3))
            else:
                y[:, :, i, j] = window.sum(axis=(2, 3)) / area
    return y


def lrn(x, *, size, alpha, beta, k):
    c = x.shape[1]
    pre = (size - 1) // 2
    sq = np.pad(x * x, ((0, 0), (pre, size - 1 - pre), (0, 0), (0, 0)))
    window = sum(sq[:, i:i + c] for i in range(size))
    return x / (k + alpha / size * window) ** beta


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def forward(net, data, blobs=None, rng=None, *, classifiers=()):
    """Runs ``net`` on ``data`` (N, C, H, W, BGR minus mean) in float64; returns every
    top by name. With ``rng``, blobs the net needs and ``blobs`` lacks are drawn (He
    scale, biases N(0, 1); the layers in ``classifiers`` 10x smaller so that logits
    stay O(1)) and added to ``blobs``."""
    blobs = {} if blobs is None else blobs
    tops = {"data": np.asarray(data, dtype=np.float64)}

    def params(spec, w_shape, fan_in):
        name = spec["name"]
        if name not in blobs:
            scale = math.sqrt(2.0 / fan_in) * (0.1 if name in classifiers else 1.0)
            blobs[name] = [(rng.standard_normal(w_shape) * scale).astype(np.float32),
                           rng.standard_normal(w_shape[0]).astype(np.float32)]
        w, b = blobs[name]
        return w.astype(np.float64), b.astype(np.float64)

    for spec in net:
        kind = spec["type"]
        if kind in ("Data", "SoftmaxWithLoss", "Accuracy"):
            continue
        x = [tops[b] for b in spec["bottom"]]
        if kind == "Convolution":
            cg = x[0].shape[1] // spec["group"]
            w, b = params(spec, (spec["out"], cg, spec["k"], spec["k"]), cg * spec["k"] ** 2)
            y = conv(x[0], w, b, stride=spec["stride"], pad=spec["pad"], group=spec["group"])
        elif kind == "InnerProduct":
            flat = x[0].reshape(x[0].shape[0], -1)  # (C, H, W) order
            w, b = params(spec, (spec["out"], flat.shape[1]), flat.shape[1])
            y = flat @ w.T + b
        elif kind == "ReLU":
            y = np.maximum(x[0], 0.0)
        elif kind == "LRN":
            y = lrn(x[0], size=spec["size"], alpha=spec["alpha"], beta=spec["beta"], k=spec["k"])
        elif kind == "Pooling":
            y = pool(x[0], mode=spec["mode"], k=spec["k"], stride=spec["stride"], pad=spec["pad"])
        elif kind == "Concat":
            y = np.concatenate(x, axis=1)
        elif kind == "Dropout":
            y = x[0]
        elif kind == "Softmax":
            y = softmax(x[0])
        else:
            raise NotImplementedError(kind)
        tops[spec["top"][0]] = y
    return tops


def caffe_input(rgb, mean_bgr=(104.0, 117.0, 123.0)):
    """Caffe's input: NHWC RGB 0-255 -> NCHW BGR minus BVLC's mean (BGR)."""
    bgr = np.asarray(rgb, dtype=np.float64)[..., ::-1] - np.asarray(mean_bgr)
    return bgr.transpose(0, 3, 1, 2)
