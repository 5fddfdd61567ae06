"""The weight-file readers against files made by the formats' own producers.

Every file is written by its real producer (``torch.save`` zip and legacy,
``safetensors``, Keras' legacy HDF5 writer, Keras 3 saving, ``protobuf`` messages for
Caffe) from tensors the test holds; each reader's output must equal those tensors
exactly, under the publisher's names, in file order. Old forms today's producers no
longer write (``_rebuild_tensor`` pickles, storage views) are checked against
``torch.load`` itself. Formats are recognised from content: the same files under
wrong or no suffixes read the same.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from _weights_helpers import (
    old_style_tensor_pickles,
    torch_zip_as_big_endian,
    write_caffemodel,
    write_legacy_with_storage_views,
)

from kerascnn.weights.readers import (
    FORMATS,
    UnsafeWeightsError,
    WeightsFile,
    detect_format,
    read_weights_file,
)

torch = pytest.importorskip("torch")  # a dev dependency (pyproject's [dev] extra)


def _assert_tensors_equal(got: dict, want: dict):
    assert list(got) == list(want)
    for name, array in want.items():
        assert got[name].dtype == array.dtype, name
        assert got[name].shape == array.shape, name
        np.testing.assert_array_equal(got[name], array, err_msg=name)


def _renamed(path, tmp_path):
    """Copies of ``path`` with no suffix and with misleading suffixes."""
    copies = []
    for name in ("weights", "weights.bin", "weights.h5", "weights.pth", "weights.caffemodel"):
        if os.path.basename(path) == name:
            continue
        target = tmp_path / "renamed" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        copies.append(target)
    return copies


def _assert_read(path, fmt, want, tmp_path, layer_types=None):
    for candidate in [path, *_renamed(path, tmp_path)]:
        assert detect_format(candidate) == fmt, candidate
        wf = read_weights_file(candidate)
        assert isinstance(wf, WeightsFile)
        assert (wf.path, wf.format) == (os.fspath(candidate), fmt)
        _assert_tensors_equal(wf.tensors, want)
        assert wf.layer_types == (layer_types or {})


# -- PyTorch ------------------------------------------------------------------------


def _torch_state():
    """A state dict with real modules (non-trivial batch-norm statistics), tensors that
    share one storage, non-contiguous views, and float16/bfloat16/float64/int tensors."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
        torch.nn.Flatten(), torch.nn.Linear(4 * 4 * 4, 5),
    )
    net.train()
    net(torch.randn(8, 3, 6, 6) * 3 + 1)  # moving statistics away from 0 / 1
    state = net.state_dict()
    base = torch.randn(4, 6)
    state["extra.transposed"] = base.t()  # non-contiguous, whole storage
    state["extra.row"] = base[1]  # same storage, offset 6
    state["extra.cols"] = base[:, 2:5]  # same storage, strided
    state["extra.half"] = torch.randn(7).half()
    state["extra.bf16"] = torch.randn(3, 2).bfloat16()
    state["extra.double"] = torch.randn(2, dtype=torch.float64)
    state["extra.int"] = torch.arange(5, dtype=torch.int32)
    state["extra.scalar"] = torch.tensor(2.5)
    return state


def _torch_expected(state):
    return {
        k: (v.float() if v.is_floating_point() else v).numpy().copy() for k, v in state.items()
    }


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_torch_save_files_read_exactly(tmp_path, zip_format):
    state = _torch_state()
    path = tmp_path / "net.pth"
    torch.save(state, path, _use_new_zipfile_serialization=zip_format)
    if zip_format:  # the views share storages in the file: fewer storages than tensors
        records = [n for n in zipfile.ZipFile(path).namelist() if "/data/" in n]
        assert len(records) < len(state)
    expected = _torch_expected(state)
    assert expected["1.num_batches_tracked"].dtype == np.int64
    _assert_read(path, "torch", expected, tmp_path)


def test_torch_zip_written_big_endian(tmp_path):
    state = _torch_state()
    little = tmp_path / "little.pth"
    torch.save(state, little)
    big = tmp_path / "big.pth"
    torch_zip_as_big_endian(little, big)
    assert big.read_bytes() != little.read_bytes()
    expected = _torch_expected(state)
    _assert_tensors_equal(_torch_expected(torch.load(big)), expected)  # torch reads it so
    _assert_read(big, "torch", expected, tmp_path)


def test_torch_legacy_rebuild_tensor_of_2017_files(tmp_path):
    """torchvision's 2017 files pickle tensors with ``_rebuild_tensor`` (no v2)."""
    state = _torch_state()
    path = tmp_path / "old.pth"
    with old_style_tensor_pickles():
        torch.save(state, path, _use_new_zipfile_serialization=False)
    data = path.read_bytes()
    assert b"_rebuild_tensor\n" in data or b"_rebuild_tensor\x94" in data
    assert b"_rebuild_tensor_v2" not in data
    reloaded = torch.load(path, weights_only=False)  # the file is one torch reads
    expected = _torch_expected(state)
    _assert_tensors_equal(_torch_expected(reloaded), expected)
    _assert_read(path, "torch", expected, tmp_path)


def test_torch_legacy_storage_views_match_torch_load(tmp_path):
    roots = {
        "10": np.arange(30, dtype=np.float32) * 0.5 - 3,
        "11": np.arange(8, dtype=np.float32) + 100,
    }
    tensors = {
        "whole": ("11", None, 1, (2, 3), (3, 1)),
        "view.rows": ("10", (4, 20), 2, (3, 4), (4, 1)),
        "view.transposed": ("10", (4, 20), 0, (4, 3), (1, 4)),
        "view.tail": ("10", (24, 6), 0, (6,), (1,)),
    }
    path = tmp_path / "views.pth"
    write_legacy_with_storage_views(path, roots, tensors)
    reference = torch.load(path, weights_only=False)
    expected = {k: v.numpy().copy() for k, v in reference.items()}
    np.testing.assert_array_equal(expected["view.tail"], roots["10"][24:30])
    _assert_read(path, "torch", expected, tmp_path)


@pytest.mark.parametrize("wrapper", ["state_dict", "model"])
def test_torch_checkpoint_unwrapped_and_module_prefix_stripped(tmp_path, wrapper):
    state = _torch_state()
    wrapped = {
        "epoch": 3,
        wrapper: {f"module.{k}": v for k, v in state.items()},
        "optimizer": {"lr": 0.1},
    }
    path = tmp_path / "checkpoint.pth.tar"
    torch.save(wrapped, path)
    wf = read_weights_file(path)
    _assert_tensors_equal(wf.tensors, _torch_expected(state))


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_pickle_naming_a_forbidden_global_is_refused_and_nothing_runs(tmp_path, zip_format):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pth"
    torch.save(
        {"conv.weight": torch.ones(2, 2), "payload": _RunsCode(marker)},
        path,
        _use_new_zipfile_serialization=zip_format,
    )
    with pytest.raises(UnsafeWeightsError) as info:
        read_weights_file(path)
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert f"'{os.system.__module__}.system'" in message
    assert str(path) in message and "\n" not in message
    assert not marker.exists()  # nothing ran
    # The payload is live: an unrestricted unpickler does run it.
    torch.load(path, weights_only=False)
    assert marker.exists()


class _TamperedTensor:
    """Rebuilt by the allowed ``_rebuild_tensor_v2``, then BUILD rewrites its stride to
    reach outside its storage."""

    def __init__(self, tensor):
        self.tensor = tensor

    def __reduce__(self):
        import collections

        storage = self.tensor.untyped_storage()
        typed = torch.storage.TypedStorage(
            wrap_storage=storage, dtype=torch.float32, _internal=True
        )
        args = (typed, 0, (4,), (1,), False, collections.OrderedDict())
        return (torch._utils._rebuild_tensor_v2, args, {"stride": (1 << 40,)})


def test_pickle_cannot_rewrite_a_rebuilt_tensor(tmp_path):
    path = tmp_path / "tampered.pth"
    torch.save({"w": _TamperedTensor(torch.ones(4))}, path)
    with pytest.raises(ValueError, match="truncated or corrupt.*sets the state"):
        read_weights_file(path)


def test_pickled_model_object_is_refused_with_advice(tmp_path):
    path = tmp_path / "model.pth"
    torch.save(torch.nn.Sequential(torch.nn.Linear(2, 2)), path)
    with pytest.raises(UnsafeWeightsError, match=r"'torch\.nn\.modules.*state_dict\(\)"):
        read_weights_file(path)


# -- safetensors --------------------------------------------------------------------


def test_safetensors_files_read_exactly(tmp_path):
    from safetensors.numpy import save_file
    from safetensors.torch import save_file as save_torch_file

    rng = np.random.default_rng(0)
    arrays = {
        "features.0.weight": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
        "features.0.bias": rng.standard_normal(4).astype(np.float16),
        "bn.running_var": rng.random(4).astype(np.float64),
        "bn.num_batches_tracked": np.array(7, dtype=np.int64),
        "mask": np.array([1, 0, 255], dtype=np.uint8),
        "flags": np.array([True, False]),
        "ids": np.arange(3, dtype=np.int32),
    }
    path = tmp_path / "model.safetensors"
    save_file(arrays, path, metadata={"format": "np"})
    header_len = int.from_bytes(path.read_bytes()[:8], "little")
    header = json.loads(path.read_bytes()[8 : 8 + header_len])
    file_order = sorted((k for k in header if k != "__metadata__"),
                        key=lambda k: header[k]["data_offsets"][0])
    want = {
        k: (arrays[k].astype(np.float32) if arrays[k].dtype.kind == "f" else arrays[k])
        for k in file_order
    }
    _assert_read(path, "safetensors", want, tmp_path)

    bf16 = {"head.weight": torch.randn(5, 3).bfloat16(), "head.bias": torch.randn(5).bfloat16()}
    path_bf16 = tmp_path / "bf16.safetensors"
    save_torch_file(bf16, path_bf16)
    wf = read_weights_file(path_bf16)
    assert wf.format == "safetensors"
    for name, tensor in bf16.items():
        np.testing.assert_array_equal(wf.tensors[name], tensor.float().numpy())
        assert wf.tensors[name].dtype == np.float32


# -- Keras --------------------------------------------------------------------------


def _keras_model():
    import keras

    model = keras.Sequential(
        [
            keras.Input((6, 6, 3)),
            keras.layers.Conv2D(4, 3, name="conv1"),
            keras.layers.BatchNormalization(name="bn_conv1"),
            keras.layers.Activation("relu", name="relu"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(5, name="fc1000"),
        ],
        name="tiny",
    )
    rng = np.random.default_rng(1)
    for w in model.weights:
        shift = 2.0 if "variance" in w.path else 0.0  # a positive variance
        w.assign(rng.standard_normal(w.shape).astype("float32") + shift)
    return model


def _keras_expected(model):
    """``"<layer>/<i>"`` in the legacy writer's order: trainable, then non-trainable."""
    want = {}
    for layer in model.layers:
        for i, w in enumerate(layer.trainable_weights + layer.non_trainable_weights):
            want[f"{layer.name}/{i}"] = np.asarray(w.numpy(), dtype=np.float32)
    return want


def test_keras_legacy_hdf5_written_by_keras(tmp_path):
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    model = _keras_model()
    want = _keras_expected(model)
    assert any(k.startswith("bn_conv1/3") for k in want)  # moving variance read too
    path = tmp_path / "tiny_weights_tf_dim_ordering_tf_kernels.h5"
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    _assert_read(path, "keras_legacy_h5", want, tmp_path)
    full = tmp_path / "full_model.h5"  # Keras' whole-model HDF5: weights under model_weights
    legacy_h5_format.save_model_to_hdf5(model, str(full))
    _assert_read(full, "keras_legacy_h5", want, tmp_path / "full")


def test_keras2_layout_with_colon_names_and_chunked_layer_names(tmp_path):
    """keras.applications' files: Keras-2 names (``conv1/kernel:0``) as byte strings,
    and a ``layer_names`` list long enough that Keras writes it in chunks."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    model = _keras_model()
    want = _keras_expected(model)
    padding = [f"weightless_layer_with_a_long_name_{i:05d}" for i in range(2000)]
    path = tmp_path / "keras2.h5"
    with h5py.File(path, "w") as f:
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.2.4"
        names = [layer.name for layer in model.layers] + padding
        legacy_h5_format.save_attributes_to_hdf5_group(
            f, "layer_names", [n.encode() for n in names]
        )
        for layer in model.layers:
            group = f.create_group(layer.name)
            short = {"kernel": "kernel", "bias": "bias", "gamma": "gamma", "beta": "beta",
                     "moving_mean": "moving_mean", "moving_variance": "moving_variance"}
            weight_names = []
            for w in layer.trainable_weights + layer.non_trainable_weights:
                name = f"{layer.name}/{short[w.name]}:0"
                group.create_dataset(name, data=w.numpy())
                weight_names.append(name.encode())
            group.attrs["weight_names"] = np.array(weight_names, dtype="S")
        for name in padding:
            f.create_group(name).attrs["weight_names"] = np.array([], dtype="S")
    assert "layer_names0" in h5py.File(path, "r").attrs  # chunked, as Keras wrote it
    fresh = _keras_model()  # Keras' own legacy loader reads the layout back
    with h5py.File(path, "r") as f:
        legacy_h5_format.load_weights_from_hdf5_group(f, fresh)
    _assert_tensors_equal(_keras_expected(fresh), want)
    wf = read_weights_file(path)
    assert wf.format == "keras_legacy_h5"
    _assert_tensors_equal(wf.tensors, want)


def test_keras3_files_are_recognised_as_keras(tmp_path):
    model = _keras_model()
    weights = tmp_path / "tiny.weights.h5"
    model.save_weights(weights)
    archive = tmp_path / "tiny.keras"
    model.save(archive)
    for path in (weights, archive):
        _assert_read(path, "keras", {}, tmp_path / f"copies_{path.suffix}")


# -- Caffe --------------------------------------------------------------------------


def _caffe_layers():
    rng = np.random.default_rng(2)

    def r(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    return [
        ("conv1", "Convolution", [r(4, 3, 3, 3), r(4)]),
        ("relu1", "ReLU", []),
        ("norm1", "LRN", []),
        ("pool1", "Pooling", []),
        ("conv2", "Convolution", [r(1, 4, 1, 1), r(1)]),  # one filter: stays 4-D
        ("fc6", "InnerProduct", [r(5, 16), r(5)]),
        ("fc7", "InnerProduct", [r(1, 5), r(1)]),  # one output: stays 2-D
        ("drop7", "Dropout", []),
        ("prob", "Softmax", []),
    ]


def _caffe_expected(layers):
    tensors = {f"{name}/{i}": a for name, _, arrays in layers for i, a in enumerate(arrays)}
    return tensors, {name: layer_type for name, layer_type, _ in layers}


@pytest.mark.parametrize("packed", [True, False], ids=["packed", "unpacked"])
@pytest.mark.parametrize("shape", ["shape", "legacy"])
@pytest.mark.parametrize("encoding", ["layer", "layers"], ids=["layer100", "v1layers2"])
def test_caffemodel_both_encodings_and_shapes(tmp_path, encoding, shape, packed):
    layers = _caffe_layers()
    path = tmp_path / "net.caffemodel"
    net = write_caffemodel(path, layers, encoding=encoding, shape=shape, packed=packed)
    assert len(net.layer if encoding == "layer" else net.layers) == len(layers)
    tensors, types = _caffe_expected(layers)
    _assert_read(path, "caffe", tensors, tmp_path, layer_types=types)


def test_caffemodel_double_data(tmp_path):
    layers = _caffe_layers()
    tensors, types = _caffe_expected(layers)
    for packed in (True, False):
        path = tmp_path / f"double_{packed}.caffemodel"
        write_caffemodel(path, layers, encoding="layer", shape="shape", packed=packed, double=True)
        wf = read_weights_file(path)
        _assert_tensors_equal(wf.tensors, tensors)  # float32 values survive float64 exactly
        assert wf.layer_types == types


def test_caffemodel_with_v0_layers_is_refused_with_advice(tmp_path):
    """Caffe's first releases nested a V0 layer (``V1LayerParameter.layer = 1``)."""
    path = tmp_path / "v0.caffemodel"
    write_caffemodel(path, _caffe_layers()[:2], encoding="layers", shape="legacy")
    data = path.read_bytes()
    v0_layer = b"\x0a\x05conv0\x12\x04conv"  # V0LayerParameter {name, type}
    v1_layer = b"\x0a" + bytes([len(v0_layer)]) + v0_layer  # V1LayerParameter {layer}
    path.write_bytes(data + b"\x12" + bytes([len(v1_layer)]) + v1_layer)
    with pytest.raises(ValueError, match="V0 layers.*upgrade_net_proto_binary") as info:
        read_weights_file(path)
    assert str(path) in str(info.value)


# -- recognition and errors ---------------------------------------------------------


def _one_of_each(tmp_path):
    """One file of each format, made by its producer."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format
    from safetensors.numpy import save_file

    files = {}
    state = _torch_state()
    files["zip_pth"] = tmp_path / "a.pth"
    torch.save(state, files["zip_pth"])
    files["legacy_pth"] = tmp_path / "b.pth"
    torch.save(state, files["legacy_pth"], _use_new_zipfile_serialization=False)
    files["safetensors"] = tmp_path / "c.safetensors"
    arrays = {"w": np.ones((64, 64), np.float32), "b": np.zeros(64, np.float32)}
    save_file(arrays, files["safetensors"])
    files["caffe"] = tmp_path / "d.caffemodel"
    write_caffemodel(files["caffe"], _caffe_layers(), encoding="layers", shape="legacy")
    model = _keras_model()
    files["keras_legacy_h5"] = tmp_path / "e.h5"
    with h5py.File(files["keras_legacy_h5"], "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    files["keras_weights"] = tmp_path / "f.weights.h5"
    model.save_weights(files["keras_weights"])
    return files


def test_truncated_files_name_the_file(tmp_path):
    for kind, path in _one_of_each(tmp_path).items():
        data = path.read_bytes()
        for fraction in (0.3, 0.6, 0.95):
            cut = tmp_path / f"cut_{kind}_{fraction}"
            cut.write_bytes(data[: int(len(data) * fraction)])
            with pytest.raises(ValueError, match="truncated or corrupt") as info:
                read_weights_file(cut)
            assert str(cut) in str(info.value) and "\n" not in str(info.value), kind


def test_files_in_no_accepted_format(tmp_path):
    import h5py

    rng = np.random.default_rng(3)
    files = {
        "empty.pth": b"",
        "notes.caffemodel": b"\nThese are not weights, only a note.\n" * 3,
        "random.bin": rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(),
        "config.json": json.dumps({"layers": [1, 2, 3]}).encode(),
        "plain.pkl": __import__("pickle").dumps({"a": [1, 2, 3]}, protocol=2),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    with h5py.File(tmp_path / "data.h5", "w") as f:
        f.create_dataset("images", data=np.zeros((2, 2)))
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as z:
        z.writestr("readme.txt", "hello")
    for path in sorted(tmp_path.iterdir()):
        with pytest.raises(ValueError, match="not a weights file") as info:
            read_weights_file(path)
        message = str(info.value)
        assert str(path) in message and "\n" not in message
        for accepted in (".keras", "(Keras-2) HDF5", ".pth", ".safetensors", ".caffemodel"):
            assert accepted in message
    with pytest.raises(ValueError, match="No such weights file"):
        read_weights_file(tmp_path / "missing.pth")
    with pytest.raises(ValueError, match="No such weights file: .* is a folder"):
        read_weights_file(tmp_path)


def test_reading_needs_neither_torch_nor_protobuf_nor_safetensors(tmp_path):
    files = _one_of_each(tmp_path)
    readable = ("zip_pth", "legacy_pth", "safetensors", "caffe")
    script = (
        "import sys\n"
        "from kerascnn.weights.readers import read_weights_file\n"
        f"for p in {[str(files[k]) for k in readable]!r}:\n"
        "    assert read_weights_file(p).tensors\n"
        "print(sorted(m for m in ('torch', 'safetensors', 'google.protobuf', 'caffe')"
        " if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_formats_constant():
    assert FORMATS == ("keras", "keras_legacy_h5", "torch", "safetensors", "caffe")
