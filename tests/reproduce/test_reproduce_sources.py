"""A study on the sources a user brings: a generated image folder of PNG files (through
``kerascnn reproduce``'s command line, as a user runs it) and TFRecord shards, subset
with ``--test-examples`` / ``--train-examples`` (the data layer's ``Source.take``)."""

import dataclasses
import io
import json
import os
import time

import numpy as np
import pytest
from PIL import Image

from kerascnn.data import load_source
from kerascnn.reproduce import studies
from kerascnn.reproduce.runner import Settings, run_study

pytestmark = pytest.mark.tf_only

CLASSES = ("red", "green", "blue")
COLOURS = np.array([(200, 40, 40), (40, 200, 40), (40, 40, 200)])
# two networks, each role played by one (the claims' machinery still runs)
NETS = (studies.Network("plain20", "plain20", "plain-20", "plain", 20),
        studies.Network("resnet20", "resnet20", "ResNet-20", "resnet", 20,
                        (("shortcut", "A"),)))
STUDY = dataclasses.replace(
    studies.get_study("degradation"), networks=NETS,
    roles=(("plain_shallow", "plain20"), ("plain_deep", "plain20"),
           ("resnet_shallow", "resnet20"), ("resnet_deep", "resnet20")))


def _images(rng, n):
    labels = np.arange(n) % 3
    noise = rng.integers(-40, 40, (n, 12, 12, 3))
    return np.clip(COLOURS[labels][:, None, None, :] + noise, 0, 255).astype(np.uint8), labels


def _folder(root, rng):
    for split, n in (("train", 24), ("test", 15)):
        images, labels = _images(rng, n)
        for i, (image, label) in enumerate(zip(images, labels)):
            os.makedirs(root / split / CLASSES[label], exist_ok=True)
            Image.fromarray(image).save(root / split / CLASSES[label] / f"{i}.png")
    return root


def _png(image):
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "PNG")
    return buf.getvalue()


def _tfrecords(root, rng):
    import tensorflow as tf

    os.makedirs(root)
    for split, n in (("train", 24), ("test", 15)):
        images, labels = _images(rng, n)
        with tf.io.TFRecordWriter(str(root / f"{split}-00000-of-00001")) as w:
            for image, label in zip(images, labels):
                w.write(tf.train.Example(features=tf.train.Features(feature={
                    "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(
                        value=[_png(image)])),
                    "image/class/label": tf.train.Feature(
                        int64_list=tf.train.Int64List(value=[int(label)])),
                })).SerializeToString())
    return root


def _final_errors(obj):
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key == "final_test_error":
                yield value
            else:
                yield from _final_errors(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _final_errors(value)


def _check(out, known_size):
    plan = json.load(open(os.path.join(out, "plan.json")))
    if known_size:
        assert (plan["train_examples"], plan["test_examples"]) == (16, 10)
    errors = list(_final_errors(json.load(open(os.path.join(out, "results.json")))))
    assert len(errors) >= len(NETS)
    for error in errors:  # over 10 test images (not the 15 there are): steps of 10 %
        assert error == pytest.approx(10 * round(error / 10), abs=1e-3), errors
    assert os.path.getsize(os.path.join(out, "claims.txt")) > 0


def test_a_study_on_an_image_folder_subsets_it(tmp_path, monkeypatch):
    from kerascnn.cli import main

    root = _folder(tmp_path / "imgs", np.random.default_rng(0))
    monkeypatch.setattr(studies, "STUDIES", {**studies.STUDIES, "degradation": STUDY})
    out = str(tmp_path / "out")
    assert main(["reproduce", "degradation", "--data", str(root), "--iterations", "2",
                 "--points", "1", "--batch-size", "8", "--train-examples", "16",
                 "--test-examples", "10", "--precision", "float32",
                 "--output-dir", out]) == 0
    _check(out, known_size=True)


def test_a_study_on_tfrecords_subsets_them(tmp_path):
    root = _tfrecords(tmp_path / "records", np.random.default_rng(1))
    train = load_source(f"tfrecord:{root}/train-*", num_classes=3)
    test = load_source(f"tfrecord:{root}/test-*", num_classes=3)
    settings = Settings(data="tfrecord", iterations=2, points=1, batch_size=8,
                        train_examples=16, test_examples=10, eval_batch_size=16,
                        image_size=12, precision="float32", run_eagerly=True)
    out = str(tmp_path / "out")
    report = run_study(STUDY, settings, out, train_source=train, test_source=test,
                       log=lambda msg: None)
    assert report
    _check(out, known_size=False)


def test_tfds_without_network_fails_at_once(tmp_path, monkeypatch, capsys):
    """An unprepared tfds dataset and no network (a dead HTTPS proxy stands for it, so
    nothing is downloaded on a machine that has network): one line, at once (tfds'
    own retries took 3.4 minutes)."""
    from kerascnn.cli import main

    for key in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(key, raising=False)
    for key in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(key, "http://127.0.0.1:9")  # the discard port: refused
    data_dir = tmp_path / "tfds"
    data_dir.mkdir()
    import tensorflow_datasets  # noqa: F401 - its import time is not the check's

    started = time.monotonic()
    code = main(["reproduce", "degradation", "--data", "tfds:mnist", "--data-dir",
                 str(data_dir), "--iterations", "2", "--points", "1",
                 "--output-dir", str(tmp_path / "out")])
    elapsed = time.monotonic() - started
    out = capsys.readouterr()
    lines = [line for line in (out.out + out.err).splitlines() if "error:" in line]
    assert code != 0 and len(lines) == 1, out
    assert "tfds:mnist is not prepared in" in lines[0] and "no network" in lines[0]
    assert "127.0.0.1:9" in lines[0]
    assert elapsed < 60, elapsed
