"""Writers of weight files in the publishers' formats, for the reader tests.

Each file is made by its real producer where one installs offline (``torch.save``,
``safetensors``, Keras' legacy HDF5 writer, ``protobuf`` for Caffe's messages); where
today's producer no longer writes an old form (PyTorch's ``_rebuild_tensor`` pickles
and storage views of before 0.4), the file is written with ``pickle`` in PyTorch's
legacy container and checked by ``torch.load`` itself. Nothing here imports kerascnn.
"""

from __future__ import annotations

import contextlib
import pickle
import struct
import sys
import warnings

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

# -- Caffe: the subset of BVLC caffe.proto a .caffemodel's weights need -----------------
# Field numbers copied from BVLC/caffe src/caffe/proto/caffe.proto.
_F = descriptor_pb2.FieldDescriptorProto
CAFFE_V1_TYPES = {  # V1LayerParameter.LayerType
    "Concat": 3, "Convolution": 4, "Dropout": 6, "InnerProduct": 14, "LRN": 15,
    "Pooling": 17, "ReLU": 18, "Softmax": 20,
}


def _caffe_classes(packed):
    """Message classes of caffe.proto's subset; ``packed`` as ``[packed = true]`` says."""
    fdp = descriptor_pb2.FileDescriptorProto(
        name=f"caffe_readers_test_{int(packed)}.proto", package="caffe", syntax="proto2"
    )

    def field(msg, name, number, ftype, label=_F.LABEL_OPTIONAL, type_name=None, pack=False):
        f = msg.field.add(name=name, number=number, type=ftype, label=label)
        if type_name:
            f.type_name = type_name
        if pack:
            f.options.packed = True

    rep = _F.LABEL_REPEATED
    shape = fdp.message_type.add(name="BlobShape")
    field(shape, "dim", 1, _F.TYPE_INT64, rep, pack=packed)
    blob = fdp.message_type.add(name="BlobProto")
    field(blob, "num", 1, _F.TYPE_INT64)
    field(blob, "channels", 2, _F.TYPE_INT64)
    field(blob, "height", 3, _F.TYPE_INT64)
    field(blob, "width", 4, _F.TYPE_INT64)
    field(blob, "data", 5, _F.TYPE_FLOAT, rep, pack=packed)
    field(blob, "diff", 6, _F.TYPE_FLOAT, rep, pack=packed)
    field(blob, "shape", 7, _F.TYPE_MESSAGE, type_name=".caffe.BlobShape")
    field(blob, "double_data", 8, _F.TYPE_DOUBLE, rep, pack=packed)
    conv = fdp.message_type.add(name="ConvolutionParameter")
    field(conv, "num_output", 1, _F.TYPE_UINT32)
    field(conv, "kernel_size", 4, _F.TYPE_UINT32, rep)
    field(conv, "group", 5, _F.TYPE_UINT32)
    lrn = fdp.message_type.add(name="LRNParameter")
    field(lrn, "local_size", 1, _F.TYPE_UINT32)
    field(lrn, "alpha", 2, _F.TYPE_FLOAT)
    field(lrn, "beta", 3, _F.TYPE_FLOAT)
    layer = fdp.message_type.add(name="LayerParameter")
    field(layer, "name", 1, _F.TYPE_STRING)
    field(layer, "type", 2, _F.TYPE_STRING)
    field(layer, "bottom", 3, _F.TYPE_STRING, rep)
    field(layer, "top", 4, _F.TYPE_STRING, rep)
    field(layer, "loss_weight", 5, _F.TYPE_FLOAT, rep)
    field(layer, "blobs", 7, _F.TYPE_MESSAGE, rep, ".caffe.BlobProto")
    field(layer, "convolution_param", 106, _F.TYPE_MESSAGE, type_name=".caffe.ConvolutionParameter")
    field(layer, "lrn_param", 118, _F.TYPE_MESSAGE, type_name=".caffe.LRNParameter")
    v1 = fdp.message_type.add(name="V1LayerParameter")
    enum = v1.enum_type.add(name="LayerType")
    enum.value.add(name="NONE", number=0)
    for type_name, number in CAFFE_V1_TYPES.items():
        enum.value.add(name=type_name.upper(), number=number)
    field(v1, "bottom", 2, _F.TYPE_STRING, rep)
    field(v1, "top", 3, _F.TYPE_STRING, rep)
    field(v1, "name", 4, _F.TYPE_STRING)
    field(v1, "type", 5, _F.TYPE_ENUM, type_name=".caffe.V1LayerParameter.LayerType")
    field(v1, "blobs", 6, _F.TYPE_MESSAGE, rep, ".caffe.BlobProto")
    field(v1, "blobs_lr", 7, _F.TYPE_FLOAT, rep)
    field(v1, "weight_decay", 8, _F.TYPE_FLOAT, rep)
    field(v1, "convolution_param", 10, _F.TYPE_MESSAGE, type_name=".caffe.ConvolutionParameter")
    field(v1, "lrn_param", 18, _F.TYPE_MESSAGE, type_name=".caffe.LRNParameter")
    net = fdp.message_type.add(name="NetParameter")
    field(net, "name", 1, _F.TYPE_STRING)
    field(net, "layers", 2, _F.TYPE_MESSAGE, rep, ".caffe.V1LayerParameter")
    field(net, "input", 3, _F.TYPE_STRING, rep)
    field(net, "input_dim", 4, _F.TYPE_INT32, rep)
    field(net, "layer", 100, _F.TYPE_MESSAGE, rep, ".caffe.LayerParameter")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("caffe.NetParameter"))


_NET_CLASSES = {packed: _caffe_classes(packed) for packed in (True, False)}


def write_caffemodel(path, layers, *, encoding, shape, packed=True, double=False):
    """Writes ``layers`` — ``[(name, type, [arrays])]`` — as a ``.caffemodel``.

    ``encoding``: ``"layer"`` (``NetParameter.layer``, field 100) or ``"layers"`` (the
    deprecated V1 ``layers``, field 2, type as an enum, with ``blobs_lr`` and
    ``weight_decay`` as the 2014 files have). ``shape``: ``"shape"`` (``BlobShape``) or
    ``"legacy"`` (num/channels/height/width, the blob's shape padded with leading 1s
    to 4-D as Caffe's 4-D blobs were). ``packed``: repeated numbers packed or one
    field per value. ``double``: values in ``double_data`` instead of ``data``.
    """
    net = _NET_CLASSES[packed](name="readers_test")
    net.input.append("data")
    net.input_dim.extend([1, 3, 8, 8])
    for name, layer_type, arrays in layers:
        if encoding == "layer":
            layer = net.layer.add(name=name, type=layer_type)
        else:
            layer = net.layers.add(name=name, type=CAFFE_V1_TYPES[layer_type])
            layer.blobs_lr.extend([1.0, 2.0][: len(arrays)])
            layer.weight_decay.extend([1.0, 0.0][: len(arrays)])
        layer.bottom.append("in")
        layer.top.append(name)
        if layer_type == "Convolution":
            layer.convolution_param.num_output = arrays[0].shape[0]
            layer.convolution_param.kernel_size.append(arrays[0].shape[-1])
        if layer_type == "LRN":
            layer.lrn_param.local_size = 5
            layer.lrn_param.alpha = 1e-4
            layer.lrn_param.beta = 0.75
        for array in arrays:
            blob = layer.blobs.add()
            values = np.asarray(array).reshape(-1)
            if double:
                blob.double_data.extend(values.astype(np.float64).tolist())
            else:
                blob.data.extend(values.astype(np.float32).tolist())
            if shape == "legacy":
                dims = (1,) * (4 - array.ndim) + tuple(array.shape)
                blob.num, blob.channels, blob.height, blob.width = dims
            else:
                blob.shape.dim.extend(array.shape)
    data = net.SerializeToString()
    with open(path, "wb") as f:
        f.write(data)
    return net


# -- PyTorch: old forms that today's torch.save no longer writes -------------------------


@contextlib.contextmanager
def old_style_tensor_pickles():
    """While active, ``torch.save`` pickles each tensor as PyTorch < 0.4 did:
    ``torch._utils._rebuild_tensor(storage, storage_offset, size, stride)``."""
    import torch

    def reduce_ex(self, protocol):
        with warnings.catch_warnings():  # TypedStorage: what the old pickles hold
            warnings.simplefilter("ignore", UserWarning)
            storage = self.storage()
        return (
            torch._utils._rebuild_tensor,
            (storage, self.storage_offset(), tuple(self.size()), self.stride()),
        )

    original = torch.Tensor.__reduce_ex__
    torch.Tensor.__reduce_ex__ = reduce_ex
    try:
        yield
    finally:
        torch.Tensor.__reduce_ex__ = original


class _StorageStub:
    def __init__(self, key, numel, view=None):
        self.key, self.numel, self.view = key, numel, view


class _OldTensor:
    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, size, stride)

    def __reduce__(self):
        import torch

        return (torch._utils._rebuild_tensor, self.args)


def write_legacy_with_storage_views(path, roots, tensors):
    """A legacy (non-zip) ``.pth`` whose tensors view parts of float32 storages through
    *storage views* (the sixth element of a storage's persistent id), as PyTorch before
    0.4 wrote when a tensor's storage was a slice of another.

    ``roots``: {key: 1-D float32 array}; ``tensors``: {name: (root key, (view offset,
    view numel) or None, offset, size, stride)}. Written in ``torch.serialization``'s
    legacy layout; the test checks it with ``torch.load``.
    """
    import torch

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, _StorageStub):
                view = None
                if obj.view is not None:
                    view = (f"{obj.key}.view{obj.view[0]}", obj.view[0], obj.view[1])
                return ("storage", torch.FloatStorage, obj.key, "cpu", obj.numel, view)
            return None

    state = {}
    for name, (key, view, offset, size, stride) in tensors.items():
        stub = _StorageStub(key, roots[key].size, view)
        state[name] = _OldTensor(stub, offset, size, stride)
    with open(path, "wb") as f:
        pickle.dump(0x1950A86A20F9469CFC6C, f, protocol=2)
        pickle.dump(1001, f, protocol=2)
        pickle.dump(
            {"protocol_version": 1001, "little_endian": sys.byteorder == "little",
             "type_sizes": {"short": 2, "int": 4, "long": 4}}, f, protocol=2,
        )
        Pickler(f, protocol=2).dump(state)
        keys = sorted(roots)
        pickle.dump(keys, f, protocol=2)
        for key in keys:
            f.write(struct.pack("<q", roots[key].size))
            f.write(np.ascontiguousarray(roots[key], dtype="<f4").tobytes())


def torch_zip_as_big_endian(src, dst):
    """Rewrites a ``torch.save`` zip file as a big-endian host writes one: each storage
    record byte-swapped and the ``byteorder`` record ``big``. ``torch.load`` honours
    that record, so it is the reference for what the file holds."""
    import collections
    import io
    import zipfile

    sizes = {"Float": 4, "Double": 8, "Half": 2, "BFloat16": 2, "Long": 8, "Int": 4,
             "Short": 2, "Char": 1, "Byte": 1, "Bool": 1}
    item_sizes = {}

    class StorageTypes(pickle.Unpickler):
        def find_class(self, module, name):
            if name.endswith("Storage"):
                return name
            if name == "OrderedDict":
                return collections.OrderedDict
            return lambda *args: None

        def persistent_load(self, pid):
            item_sizes[str(pid[2])] = sizes[pid[1][: -len("Storage")]]

    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        (pkl,) = [n for n in zin.namelist() if n.endswith("/data.pkl")]
        prefix = pkl[: -len("data.pkl")]
        StorageTypes(io.BytesIO(zin.read(pkl))).load()
        for name in zin.namelist():
            data = zin.read(name)
            if name.startswith(prefix + "data/"):
                size = item_sizes[name[len(prefix + "data/"):]]
                data = np.frombuffer(data, f"<u{size}").byteswap().tobytes()
            elif name == prefix + "byteorder":
                data = b"big"
            zout.writestr(name, data)
