"""The studies on the sources a user brings, at a tiny size: a generated image folder
of JPEG files in class folders (through ``kerascnn reproduce``'s command line, as a
user runs it: degradation, then responses on its networks) and TFRecord shards named
by split (shortcuts with two seeds, degradation and responses), subset with
``--test-examples`` / ``--train-examples`` (the recipe's ``data.*_examples``,
``Source.take``)."""

import dataclasses
import io
import json
import os
import time

import numpy as np
import pytest
from PIL import Image

from kerascnn.reproduce import _cli, studies
from kerascnn.reproduce.runner import Settings, run_study

pytestmark = pytest.mark.tf_only

CLASSES = ("red", "green", "blue")
COLOURS = np.array([(200, 40, 40), (40, 200, 40), (40, 40, 200)])
# one network playing every role (the claims' machinery still runs)
NET = studies.Network("plain20", "plain20", "plain-20", "plain", 20)
ROLES = tuple((role, "plain20") for role in ("plain_shallow", "plain_deep",
                                             "resnet_shallow", "resnet_deep"))
DEGRADATION = dataclasses.replace(studies.get_study("degradation"), networks=(NET,),
                                  roles=ROLES)
RESPONSES = dataclasses.replace(studies.get_study("responses"), networks=(NET,),
                                roles=ROLES)
SHORTCUTS = dataclasses.replace(
    studies.get_study("shortcuts"), seeds=2,
    networks=(studies.get_study("shortcuts").network("resnet20_A"),),
    roles=(("A", "resnet20_A"), ("B", "resnet20_A"), ("C", "resnet20_A")))
TINY = ["--iterations", "2", "--points", "1", "--batch-size", "8", "--precision",
        "float32"]


def _images(rng, n):
    labels = np.arange(n) % 3
    noise = rng.integers(-40, 40, (n, 12, 12, 3))
    return np.clip(COLOURS[labels][:, None, None, :] + noise, 0, 255).astype(np.uint8), labels


def _jpeg(image):
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=95)
    return buf.getvalue()


def _folder(root, rng):
    for split, n in (("train", 24), ("test", 15)):
        images, labels = _images(rng, n)
        for i, (image, label) in enumerate(zip(images, labels)):
            os.makedirs(root / split / CLASSES[label], exist_ok=True)
            (root / split / CLASSES[label] / f"{i}.jpg").write_bytes(_jpeg(image))
    return root


def _tfrecords(root, rng):
    import tensorflow as tf

    os.makedirs(root)
    for split, n in (("train", 24), ("test", 15)):
        images, labels = _images(rng, n)
        with tf.io.TFRecordWriter(str(root / f"{split}-00000-of-00001")) as w:
            for image, label in zip(images, labels):
                w.write(tf.train.Example(features=tf.train.Features(feature={
                    "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(
                        value=[_jpeg(image)])),
                    "image/class/label": tf.train.Feature(
                        int64_list=tf.train.Int64List(value=[int(label)])),
                })).SerializeToString())
    return root


def _check(out, study, known_size):
    plan = json.load(open(os.path.join(out, "plan.json")))
    if known_size:
        assert (plan["train_examples"], plan["test_examples"]) == (16, 10)
    results = json.load(open(os.path.join(out, "results.json")))
    for net in study.networks:
        run = results["networks"][net.key]["seeds"]["0"]
        # over 10 test images (not the 15 there are): steps of 10 %
        metrics = json.load(open(os.path.join(run["run_dir"], "test_metrics.json")))
        error = metrics["top1_error"]
        assert error == pytest.approx(10 * round(error / 10), abs=1e-3), error
        assert run["final_test_error"] == pytest.approx(error)
    assert os.path.getsize(os.path.join(out, "claims.txt")) > 0


@pytest.fixture
def eager(monkeypatch):
    """The command line's settings, run eagerly (tiny runs: no graph tracing)."""
    parse = _cli.settings_from_args
    monkeypatch.setattr(_cli, "settings_from_args",
                        lambda args: dataclasses.replace(parse(args), run_eagerly=True))
    monkeypatch.setattr(studies, "STUDIES", {**studies.STUDIES, "degradation": DEGRADATION,
                                             "responses": RESPONSES})


def test_studies_on_an_image_folder_through_the_command_line(tmp_path, eager):
    from kerascnn.cli import main

    root = _folder(tmp_path / "imgs", np.random.default_rng(0))
    out = str(tmp_path / "degradation")
    assert main(["reproduce", "degradation", "--data", str(root), "--test-examples",
                 "10", "--train-examples", "16", *TINY, "--output-dir", out]) == 0
    _check(out, DEGRADATION, known_size=True)
    assert os.path.getsize(os.path.join(out, "figure6.png")) > 0
    # the 10 test images (of 15, listed class by class) are of every class
    from kerascnn.training import experiment
    from kerascnn.training.recipe import load_recipe

    recipe = load_recipe("fashion_mnist", [
        f"data.source='{root}'", "data.validation_from_train=0",
        "data.validation_split='test'", "data.validation_examples=10",
        "data.test_examples=10"])
    _, curve, test = experiment.load_sources(recipe)
    assert sorted(np.bincount(np.asarray(test.labels))) == [3, 3, 4]
    assert list(curve.labels) == list(test.labels) and test.num_examples == 10
    responses = str(tmp_path / "responses")
    assert main(["reproduce", "responses", "--nets-from", out,
                 "--output-dir", responses]) == 0
    report = json.load(open(os.path.join(responses, "results.json")))
    assert len(report["networks"]["plain20"]["std"]) == 19
    assert os.path.getsize(os.path.join(responses, "figure7.png")) > 0


def test_studies_on_tfrecords_named_by_split(tmp_path):
    root = _tfrecords(tmp_path / "records", np.random.default_rng(1))
    settings = Settings(data=f"tfrecord:{root}/{{split}}-*",
                        source_options={"num_classes": 3}, iterations=2, points=1,
                        batch_size=8, train_examples=16, test_examples=10,
                        eval_batch_size=16, image_size=12, precision="float32",
                        run_eagerly=True)
    reports = {}
    for study in (SHORTCUTS, DEGRADATION):
        out = str(tmp_path / study.name)
        reports[study.name] = run_study(study, settings, out, log=lambda msg: None)
        assert reports[study.name]
        _check(out, study, known_size=False)
    # shortcuts with its two seeds: a run folder each, the claim's means over them
    nets = tmp_path / "shortcuts" / "nets"
    assert sorted(os.listdir(nets)) == ["resnet20_A-s0", "resnet20_A-s1"]
    report = reports["shortcuts"]
    assert report["plan"]["seeds"] == 2
    claim = report["claims"][0]
    assert claim["numbers"]["seeds"] == 2
    # the claim's means: the runs' final test accuracies (test_metrics.json), averaged
    errors = [json.load(open(nets / f"resnet20_A-s{s}" / "test_metrics.json"))["top1_error"]
              for s in (0, 1)]
    assert claim["numbers"]["means"]["resnet20_A"] == pytest.approx(100 - np.mean(errors))
    assert (tmp_path / "shortcuts" / "figure6.png").stat().st_size > 0
    report = run_study(RESPONSES, settings, str(tmp_path / "responses"),
                       nets_study=DEGRADATION, nets_dir=str(tmp_path / "degradation"),
                       log=lambda msg: None)
    assert len(report["networks"]["plain20"]["std"]) == 19


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
