"""``kerascnn predict/export --arch NET --weights W``: a pretrained network answers with
ImageNet's class names and its set's preprocessing, from a set name or a file.

No download: a torchvision-format ResNet-18 (``torch.save`` of random weights) is made
here, registered as a temporary set of ``resnet18`` with its own sha256 and a 64x64
crop, and put in a temporary Keras cache (``KERAS_HOME``) under the set's file name.
The expected top-5 comes from a PyTorch forward of the same file with torchvision's
input convention, and the names from the shipped class-index JSON read here.
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pytest

from kerascnn.cli import main
from kerascnn.weights import sets
from kerascnn.weights.mappers._common import TORCHVISION
from _torch_references import randomize_torch, torch_forward, torch_modules

SIZE = 64
SET = "test_cli_set"


@pytest.fixture(scope="module")
def torch_resnet18():
    import torch

    m = torch_modules()
    model = randomize_torch(m["ResNet"](m["BasicBlock"], [2, 2, 2, 2]), seed=3)
    with torch.no_grad():  # logits of a few units, so the softmax keeps the top 5 apart
        model.fc.weight.mul_(0.05)
        model.fc.bias.mul_(0.05)
    return model


@pytest.fixture()
def cached_set(tmp_path, monkeypatch, torch_resnet18):
    """A registered resnet18 set whose file sits in a temporary Keras cache."""
    import torch

    src = tmp_path / "r18.pth"
    torch.save(torch_resnet18.state_dict(), str(src))
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    file_name = f"resnet18-test-{digest[:8]}.pth"
    home = tmp_path / "keras_home"
    (home / "models").mkdir(parents=True)
    os.replace(src, home / "models" / file_name)
    monkeypatch.setenv("KERAS_HOME", str(home))
    ws = sets.register_weight_set(sets.WeightSet(
        network="resnet18", name=SET,
        file=sets.WeightFile("http://127.0.0.1:9/" + file_name, file_name, digest, "sha256"),
        notop=None, origin=TORCHVISION, publisher="torchvision", provenance="a test file",
        licence="none", top1=50.0, top5=75.0, protocol="center", setting="test",
        mean_rgb=sets.TORCHVISION_MEAN_RGB, resize=SIZE, crop=SIZE,
        requires={"shortcut": "B"},
    ))
    yield ws, str(home / "models" / file_name)
    sets.unregister_weight_set("resnet18", SET)


def _class_names():
    index_file = os.path.join(os.path.dirname(__file__), "..", "..", "kerascnn", "weights",
                              "imagenet_class_index.json")
    with open(index_file) as f:
        index = json.load(f)
    return [index[str(i)][1] for i in range(1000)]


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    """A 64x64 PNG (no resize needed at crop 64 and resize 64) and its pixels."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    path = tmp_path_factory.mktemp("img") / "photo.png"
    path.write_bytes(tf.io.encode_png(image).numpy())
    return str(path), image


def _expected_top5(torch_model, image):
    logits = torch_forward(torch_model, image[None].astype(np.float64))[0]
    names = _class_names()
    return [names[i] for i in np.argsort(-logits, kind="stable")[:5]]


def _printed_names(out):
    lines = [line for line in out.splitlines() if line.strip()[:2] in
             {f"{i}." for i in range(1, 6)}]
    return [line.split(".", 1)[1].split("(class")[0].strip() for line in lines]


def test_predict_with_a_set_prints_imagenet_names(cached_set, photo, torch_resnet18, capsys):
    path, image = photo
    assert main(["predict", path, "--arch", "resnet18", "--weights", SET]) == 0
    printed = _printed_names(capsys.readouterr().out)
    assert printed == _expected_top5(torch_resnet18, image)


def test_predict_with_a_file_path(cached_set, photo, torch_resnet18, capsys, tmp_path):
    # A file given by path: built at the network's default 224 (resize 256 of a 64
    # image, then the centre crop), torchvision's mean from the file's format.
    import tensorflow as tf

    from kerascnn.data.preprocessing import Preprocessing

    _, file_path = cached_set
    path, image = photo
    assert main(["predict", path, "--arch", "resnet18", "--weights", file_path]) == 0
    printed = _printed_names(capsys.readouterr().out)
    # Reference: the same resize and crop (kerascnn's Preprocessing without a mean),
    # then PyTorch with torchvision's normalisation.
    view = Preprocessing(image_size=(224, 224), resize=256)(tf.constant(image)).numpy()
    assert printed == _expected_top5(torch_resnet18, view)


def test_predict_needs_both_arch_and_weights(photo, capsys):
    assert main(["predict", photo[0], "--arch", "resnet18"]) != 0
    assert "--weights" in capsys.readouterr().err


def test_export_with_a_set_carries_mean_and_names(cached_set, photo, torch_resnet18,
                                                   tmp_path, capsys):
    import tensorflow as tf

    ws, _ = cached_set
    out = tmp_path / "saved_models"
    assert main(["export", "--arch", "resnet18", "--weights", SET,
                 "--export-dir", str(out)]) == 0
    version = out / "resnet18" / "1"  # model name defaults to the arch
    doc = json.loads((version / "assets.extra" / "kerascnn.json").read_text())
    np.testing.assert_allclose(doc["preprocessing"]["mean"], sets.TORCHVISION_MEAN_RGB,
                               rtol=1e-6)
    assert doc["preprocessing"]["image_size"] == [SIZE, SIZE]
    assert doc["class_names"] == _class_names()
    assert doc["weights"] == SET and doc["weight_set"]["top1"] == ws.top1
    # The served answer is the PyTorch reference's top-5.
    fn = tf.saved_model.load(str(version)).signatures["serving_default"]
    served = fn(image_bytes=tf.constant([open(photo[0], "rb").read()]))
    names = [n.decode() for n in served["top5_names"].numpy()[0]]
    assert names == _expected_top5(torch_resnet18, photo[1])


def test_evaluate_with_a_set_shows_the_publishers_figure(cached_set, torch_resnet18,
                                                         tmp_path, capsys):
    """Errors on a small image folder equal a PyTorch reference's, and the report
    carries the set's publisher figure as 100 - accuracy with its protocol."""
    import tensorflow as tf
    import torch

    # Classes 0 and 1 dominate the logits, so the top-1 answer (0 or 1, decided by the
    # image) is right for some images and wrong for others.
    with torch.no_grad():
        saved = torch_resnet18.fc.bias.clone()
        torch_resnet18.fc.bias[:2] += 100.0
    try:
        ws, file_path = cached_set
        torch.save(torch_resnet18.state_dict(), file_path)
        sets.unregister_weight_set("resnet18", SET)
        digest = hashlib.sha256(open(file_path, "rb").read()).hexdigest()
        import dataclasses

        sets.register_weight_set(dataclasses.replace(
            ws, file=dataclasses.replace(ws.file, file_hash=digest)))
        rng = np.random.default_rng(5)
        images, labels = [], []
        # ImageNet's first two classes by WordNet id (evaluate --weights refuses others)
        for label, folder in enumerate(["n01440764", "n01443537"]):
            (tmp_path / "data" / folder).mkdir(parents=True)
            for i in range(4):
                image = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
                (tmp_path / "data" / folder / f"{i}.png").write_bytes(
                    tf.io.encode_png(image).numpy())
                images.append(image)
                labels.append(label)
        logits = torch_forward(torch_resnet18, np.stack(images).astype(np.float64))
        top1 = 100.0 * np.mean(np.argmax(logits, 1) != np.asarray(labels))
        assert 0 < top1 < 100  # the check below can tell a wrong preprocessing
        out = tmp_path / "report"
        assert main(["evaluate", "--arch", "resnet18", "--weights", SET,
                     "--source", str(tmp_path / "data"), "--protocol", "center",
                     "--quiet", "--out", str(out)]) == 0
        text = capsys.readouterr().out
        doc = json.loads((tmp_path / "report.json").read_text())
        assert doc["results"][0]["top1"] == pytest.approx(top1)
        assert doc["results"][0]["top5"] == pytest.approx(0.0)  # 0 and 1 are always in the top 5
        assert doc["publisher"]["top1"] == pytest.approx(100.0 - ws.top1)
        assert doc["publisher"]["top5"] == pytest.approx(100.0 - ws.top5)
        assert "torchvision top-1" in text and "'center' protocol" in text
    finally:
        with torch.no_grad():
            torch_resnet18.fc.bias.copy_(saved)


def test_evaluate_weights_needs_arch(capsys):
    assert main(["evaluate", "--weights", "imagenet"]) != 0
    assert "--arch" in capsys.readouterr().err
