"""The table of weight sets and ``weights=<set name>``: every set is complete, the
builders refuse sets their arguments do not fit before building anything, offline
fails at once naming the URL, the file and the folder, and a file already in Keras'
cache with the publisher's hash is used without downloading.

No test downloads: the sets added here point at a closed local port, and the real
sets' offline error is checked with the connection refused by the socket layer.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import os
import socket
import urllib.parse

import numpy as np
import pytest

from kerascnn.applications import get_model_info, list_models
from kerascnn.applications.registry import PROTOCOLS
from kerascnn.weights import loading, sets

# The issue's table: every (network, set) that must exist.
EXPECTED = {
    ("resnet50", "imagenet"), ("resnet101", "imagenet"), ("resnet152", "imagenet"),
    ("vgg16", "imagenet"), ("vgg19", "imagenet"),
    ("resnet18", "imagenet"), ("resnet34", "imagenet"),
    ("resnet50", "torchvision"), ("resnet101", "torchvision"), ("resnet152", "torchvision"),
    ("resnet50", "torchvision_v2"), ("resnet101", "torchvision_v2"),
    ("resnet152", "torchvision_v2"),
    ("vgg11", "imagenet"), ("vgg13", "imagenet"), ("vgg16", "torchvision"),
    ("vgg19", "torchvision"), ("alexnet", "imagenet"), ("googlenet", "imagenet"),
}
# The issue's means (0-255 RGB), computed here from the publishers' numbers.
MEANS = {
    "keras.applications": (123.68, 116.779, 103.939),
    "torchvision": tuple(255 * m for m in (0.485, 0.456, 0.406)),
    "BVLC": (123.0, 117.0, 104.0),
}
# The publishers' evaluation transforms: (resize rule, antialias, crop offset).
# torchvision: PIL's bilinear (antialiased) shorter side, center_crop's round((h - c) / 2);
# BVLC: convert_imageset's cv::resize warp to 256x256, the data layer's (256 - c) / 2;
# keras.applications: not documented beyond "single center crop": kerascnn's default.
TRANSFORMS = {
    "keras.applications": ("shorter", True, "floor"),
    "torchvision": ("shorter", True, "round_half_even"),
    "BVLC": ("warp", False, "floor"),
}
HASH_LENGTHS = {"md5": 32, "sha1": 40, "sha256": 64, "sha256_prefix": 8}
CLOSED_PORT_URL = "http://127.0.0.1:9/"  # the discard port: nothing listens here


def test_every_set_of_the_issue_is_listed_and_nothing_else():
    listed = {(s.network, s.name) for s in sets.all_weight_sets()}
    assert listed == EXPECTED


@pytest.mark.parametrize("ws", sets.all_weight_sets(), ids=lambda s: f"{s.network}-{s.name}")
def test_every_set_is_complete(ws):
    assert ws.network in list_models()
    assert get_model_info(ws.network).weight_sets[ws.name] is ws
    for wf in filter(None, (ws.file, ws.notop)):
        url = urllib.parse.urlsplit(wf.url)
        assert url.scheme in ("http", "https") and url.hostname
        assert os.path.basename(url.path) == wf.file_name
        assert len(wf.file_hash) == HASH_LENGTHS[wf.hash_algorithm]
        int(wf.file_hash, 16)  # hexadecimal
        if wf.hash_algorithm == "sha256_prefix":  # torchvision: <name>-<hash>.pth
            assert wf.file_name.rsplit(".", 1)[0].endswith("-" + wf.file_hash)
    assert 0 < ws.top1 < ws.top5 < 100
    assert ws.protocol in PROTOCOLS and ws.setting
    assert ws.publisher in MEANS
    np.testing.assert_allclose(ws.mean_rgb, MEANS[ws.publisher], rtol=0, atol=1e-9)
    assert ws.crop in (224, 227) and ws.resize >= ws.crop
    assert ws.licence and ws.provenance and ws.source
    # The set's arguments are the builder's.
    params = inspect.signature(get_model_info(ws.network).builder).parameters
    assert set(ws.requires) <= set(params)
    pre = ws.preprocessing()
    assert pre.image_size == (ws.crop, ws.crop) and pre.resize == ws.resize
    assert (pre.resize_rule, pre.antialias, pre.crop_offset) == TRANSFORMS[ws.publisher]
    np.testing.assert_allclose(pre.mean, MEANS[ws.publisher], rtol=0, atol=1e-4)
    # at another size the set's ratio resize / crop is kept, and so is the transform
    other = ws.preprocessing((112, 112))
    assert other.resize == round(112 * ws.resize / ws.crop)
    assert other.transform() == pre.transform()


def test_origin_records_are_the_mappers_and_readers_conventions():
    """One record per publisher holds what the mappers and readers use."""
    from kerascnn.weights import origins
    from kerascnn.weights.mappers import alexnet
    from kerascnn.weights.readers import FORMATS

    assert sorted(f for o in origins.ORIGINS.values() for f in o.formats) == sorted(
        set(FORMATS) - {"keras"})
    assert loading.ORIGIN_OF_FORMAT == {"keras_legacy_h5": "keras_applications", "torch": "torchvision",
                                        "safetensors": "torchvision", "caffe": "caffe"}
    tv = origins.get_origin("torchvision")
    np.testing.assert_allclose(tv.std_rgb, [255 * s for s in (0.229, 0.224, 0.225)])
    assert origins.get_origin("caffe").lrn == {"local_size": 5, "alpha": 1e-4, "beta": 0.75, "k": 1.0}
    assert alexnet.CAFFE_LRN == dict(origins.get_origin("caffe").lrn)
    for ws in sets.all_weight_sets():
        record = origins.get_origin(ws.origin)
        assert record.publisher == ws.publisher and ws.mean_rgb == record.mean_rgb
    with pytest.raises(ValueError, match="origin"):
        origins.get_origin("timm")


def test_bvlc_hashes_are_the_issue_sha1():
    assert sets.get_weight_set("alexnet", "imagenet").file.file_hash == (
        "9116a64c0fbe4459d18f4bb6b56d647b63920377")
    assert sets.get_weight_set("googlenet", "imagenet").file.file_hash == (
        "405fc5acd08a3bb12de8ee5e23a96bec22f08204")


# -- arguments that do not fit a set: ValueError before anything is built -------------------
@pytest.mark.parametrize("build, argument", [
    (lambda a: a.VGG11LRN(weights="imagenet"), "weights='imagenet'"),
    (lambda a: a.VGG16C(weights="imagenet"), "weights='imagenet'"),
    (lambda a: a.Plain34(weights="imagenet"), "weights='imagenet'"),
    (lambda a: a.ResNet56(weights="imagenet"), "weights='imagenet'"),
    (lambda a: a.ResNet18(weights="imagenet", shortcut="A"), "shortcut='A'"),
    (lambda a: a.ResNet50(weights="imagenet", shortcut="C"), "shortcut='C'"),
    (lambda a: a.AlexNet(weights="imagenet", groups=1), "groups=1"),
    (lambda a: a.ResNet50(weights="imagenet", stride_in_1x1=False), "stride_in_1x1=False"),
    (lambda a: a.ResNet101(weights="torchvision"), "stride_in_1x1=True"),
    (lambda a: a.ResNet18(weights="torchvision_v2"), "weights='torchvision_v2'"),
    (lambda a: a.VGG16(weights="imagenet", classes=10), "classes=10"),
    (lambda a: a.GoogLeNet(weights="imagenet", input_shape=(224, 224, 1)), "input_shape="),
])
def test_sets_that_do_not_fit_raise_naming_the_argument(build, argument, monkeypatch):
    import kerascnn.applications as apps

    # Nothing may be fetched or built: any connection attempt fails the test.
    def no_network(*args, **kwargs):
        raise AssertionError("a connection was attempted")

    monkeypatch.setattr(socket, "create_connection", no_network)
    with pytest.raises(ValueError) as info:
        build(apps)
    message = str(info.value)
    assert f"Received: {argument}" in message
    assert "'imagenet'" in message or "no published weights" in message


def test_mismatch_lists_the_sets_that_fit(monkeypatch):
    from kerascnn.applications import ResNet50

    monkeypatch.setattr(socket, "create_connection", None)
    with pytest.raises(ValueError, match=r"'torchvision', 'torchvision_v2'"):
        ResNet50(weights="imagenet", stride_in_1x1=False)


# -- offline ----------------------------------------------------------------------------------
def test_offline_real_set_fails_at_once_naming_url_file_and_folder(tmp_path, monkeypatch):
    """The network is down (the connection is refused by the socket layer): the error
    names the publisher's URL, its file name, Keras' cache folder and weights=<path>."""
    from kerascnn.applications import ResNet50

    def refused(address, timeout=None, *args, **kwargs):
        assert timeout is not None and timeout <= 10  # a quick check, never a hang
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(socket, "create_connection", refused)
    ws = sets.get_weight_set("resnet50", "imagenet")
    with pytest.raises(OSError) as info:
        ResNet50(weights="imagenet")
    message = str(info.value)
    assert ws.file.url in message and ws.file.file_name in message
    assert os.path.join(str(tmp_path), "models") in message
    assert "weights=<path" in message
    with pytest.raises(OSError) as info:
        ResNet50(weights="imagenet", include_top=False)
    assert ws.notop.file_name in str(info.value)


def _file_set(tmp_path, name, path, algorithm="sha256", notop=None, network="resnet18"):
    data = open(path, "rb").read()
    digest = hashlib.new("sha256" if algorithm == "sha256_prefix" else algorithm, data)
    digest = digest.hexdigest()[: 8 if algorithm == "sha256_prefix" else None]
    base = sets.get_weight_set("resnet18", "imagenet")
    fname = os.path.basename(path)
    return sets.WeightSet(**{
        **{f.name: getattr(base, f.name) for f in dataclasses.fields(base)},
        "network": network,
        "name": name,
        "file": sets.WeightFile(CLOSED_PORT_URL + fname, fname, digest, algorithm),
        "notop": notop,
    })


@pytest.fixture(scope="module")
def torch_resnet18_file(tmp_path_factory):
    """A torchvision-format ResNet-18 file (read only: the tests copy it)."""
    pytest.importorskip("torch")
    import torch

    from _torch_references import randomize_torch, torch_modules

    m = torch_modules()
    model = randomize_torch(m["ResNet"](m["BasicBlock"], [2, 2, 2, 2]), seed=4)
    path = tmp_path_factory.mktemp("src") / "resnet18-test.pth"
    torch.save(model.state_dict(), str(path))
    return model, str(path)


def test_unreachable_host_fails_at_once(tmp_path, monkeypatch, torch_resnet18_file):
    """A set whose host is down (a closed local port): no patching at all."""
    from kerascnn.applications import ResNet18

    _, path = torch_resnet18_file
    ws = sets.register_weight_set(_file_set(tmp_path, "test_unreachable", path))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    try:
        with pytest.raises(OSError, match=r"127\.0\.0\.1:9/resnet18-test\.pth is unreachable"):
            ResNet18(weights="test_unreachable")
    finally:
        sets.unregister_weight_set(ws.network, ws.name)


@pytest.mark.parametrize("algorithm", ["sha256", "sha256_prefix", "md5", "sha1"])
def test_file_in_keras_cache_is_used_without_download(
        algorithm, tmp_path, monkeypatch, torch_resnet18_file):
    """The publisher's file put in Keras' cache by hand, with the right hash, loads
    (its URL is unreachable, so nothing was downloaded); a file with another hash is
    refused and left for the user to replace."""
    import shutil

    from _torch_references import close, torch_forward

    from kerascnn.applications import ResNet18

    torch_model, path = torch_resnet18_file
    home = tmp_path / "keras_home"
    (home / "models").mkdir(parents=True)
    shutil.copy(path, home / "models" / os.path.basename(path))
    monkeypatch.setenv("KERAS_HOME", str(home))
    ws = sets.register_weight_set(_file_set(tmp_path, "test_cached", path, algorithm))
    try:
        model = ResNet18(weights="test_cached", input_shape=(64, 64, 3),
                         classifier_activation=None)
        x = np.random.default_rng(0).uniform(0, 255, (1, 64, 64, 3)).astype(np.float32)
        mean = np.asarray(ws.mean_rgb, np.float32)
        got = model(x - mean, training=False).numpy()  # eager: predict would trace
        assert close(got, torch_forward(torch_model, x))
        from kerascnn.data.carried import carried

        prep, names, _ = carried(model)  # the model carries its set's input and classes
        assert prep == ws.preprocessing((64, 64)) and prep.mean.tolist() == list(mean)
        assert len(names) == 1000 and names[0] == "tench"
        with open(home / "models" / os.path.basename(path), "ab") as f:
            f.write(b"\0")  # now another file
        with pytest.raises(OSError, match=r"its hash is not"):
            ResNet18(weights="test_cached", input_shape=(64, 64, 3))
    finally:
        sets.unregister_weight_set(ws.network, ws.name)


def test_include_top_false_uses_the_notop_file(tmp_path, monkeypatch, torch_resnet18_file):
    import shutil

    from kerascnn.applications import ResNet18

    _, path = torch_resnet18_file
    notop_path = str(tmp_path / "resnet18-test_notop.pth")
    shutil.copy(path, notop_path)
    notop = _file_set(tmp_path, "x", notop_path).file
    home = tmp_path / "keras_home"
    (home / "models").mkdir(parents=True)
    shutil.copy(notop_path, home / "models" / notop.file_name)  # only the notop file
    monkeypatch.setenv("KERAS_HOME", str(home))
    ws = sets.register_weight_set(_file_set(tmp_path, "test_notop", path, notop=notop))
    try:
        model = ResNet18(weights="test_notop", include_top=False, input_shape=(64, 64, 3))
        assert model.output.shape[-1] == 512
        with pytest.raises(OSError, match=r"resnet18-test\.pth is unreachable"):
            ResNet18(weights="test_notop")
    finally:
        sets.unregister_weight_set(ws.network, ws.name)


def test_register_twice_is_an_error():
    ws = sets.get_weight_set("vgg11", "imagenet")
    with pytest.raises(ValueError, match="already registered"):
        sets.register_weight_set(ws)


def test_unknown_set_name_suggests_and_lists(monkeypatch):
    from kerascnn.applications import ResNet50

    monkeypatch.setattr(socket, "create_connection", None)
    with pytest.raises(ValueError, match=r"Did you mean 'torchvision'.*'torchvision_v2'"):
        ResNet50(weights="torchvison", include_top=False)


def test_models_command_shows_the_weights(capsys):
    from kerascnn.cli import main

    assert main(["models"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line}
    assert rows["resnet50"].rstrip().endswith("imagenet, torchvision, torchvision_v2")
    assert rows["plain18"].rstrip().endswith("-") and rows["vgg16c"].rstrip().endswith("-")
    assert main(["models", "--weights"]) == 0
    out = capsys.readouterr().out
    for ws in sets.all_weight_sets():
        assert any(line.split()[:2] == [ws.network, ws.name] and ws.file.file_name in line
                   for line in out.splitlines()), (ws.network, ws.name)
