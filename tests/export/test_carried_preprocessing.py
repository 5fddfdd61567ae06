"""A model carries its preprocessing (kerascnn.data.carried): a ``.keras`` written by
kerascnn's writer, moved ALONE into an empty folder, is evaluated (``kerascnn
evaluate``) with the same top-1 as in its run folder, and its export (``kerascnn
export``), served in a TensorFlow-only process, gives the same probabilities as the
network on the images preprocessed as it was trained (computed here with numpy: pad,
per-pixel mean). A foreign ``.keras`` gets the one fallback, said in one line.

The preprocessing is not the default one (a per-pixel mean of 0-255 values, zero
padding 12 -> 16): the labels are the network's own answers on it, so the right
preprocessing scores 0 % top-1 error, and the test checks that a wrong one (no mean)
would not.
"""

import io
import json
import os
import shutil
import zipfile

import keras
import numpy as np
import pytest
from PIL import Image

from kerascnn.cli import main
from kerascnn.data.carried import MODEL_ENTRY, read_stored, resolve, save_model
from kerascnn.data.preprocessing import Preprocessing

pytestmark = pytest.mark.tf_only  # kerascnn export in this process, SavedModel

SIZE, PAD, CLASSES, N = 12, 2, 3, 9
NAMES = ["ant", "bee", "cat"]

def _model():
    keras.utils.set_random_seed(4)
    inp = keras.Input((SIZE + 2 * PAD, SIZE + 2 * PAD, 3))
    x = keras.layers.Rescaling(1 / 64.0)(inp)
    x = keras.layers.Conv2D(6, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, keras.layers.Dense(CLASSES, activation="softmax")(x), name="tiny")


def _reference(model, images, mean):
    """The network on the view, computed independently of kerascnn: zero padding, then
    the per-pixel mean."""
    x = np.pad(images.astype(np.float32), [(0, 0), (PAD, PAD), (PAD, PAD), (0, 0)]) - mean
    return _infer(model, x)


def _infer(model, x):
    """``model.predict`` without its traced function (eager, one batch)."""
    return keras.ops.convert_to_numpy(model(x, training=False))


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("carried")
    rng = np.random.default_rng(0)
    model = _model()
    mean = rng.uniform(0, 255, (SIZE + 2 * PAD, SIZE + 2 * PAD, 3)).astype(np.float32)
    prep = Preprocessing(SIZE + 2 * PAD, 3, resize=SIZE, pad=PAD, mean=mean)
    # candidates of various colours; the classifier's bias centred on them, so that every
    # class wins some; then per class the N // CLASSES clearest answers
    tint = rng.uniform(0, 255, (60, 1, 1, 3))
    candidates = np.clip(tint + rng.normal(0, 30, (60, SIZE, SIZE, 3)), 0, 255).astype(np.uint8)
    dense = model.layers[-1]
    features = keras.Model(model.inputs, dense.input)
    x = np.pad(candidates.astype(np.float32), [(0, 0), (PAD, PAD), (PAD, PAD), (0, 0)]) - mean
    logits = _infer(features, x) @ dense.kernel.numpy()
    dense.bias.assign(-logits.mean(0))
    probs = _reference(model, candidates, mean)
    top2 = np.sort(probs, 1)[:, -2:]
    margin = top2[:, 1] - top2[:, 0]
    pick = np.concatenate([
        [i for i in np.argsort(-margin) if probs[i].argmax() == c][:N // CLASSES]
        for c in range(CLASSES)])
    assert len(pick) == N
    images = candidates[pick]
    probs = _reference(model, images, mean)
    labels = probs.argmax(1)
    assert sorted(set(labels.tolist())) == list(range(CLASSES))
    files = []
    for i, (image, label) in enumerate(zip(images, labels)):
        folder = root / "data" / "test" / NAMES[label]
        folder.mkdir(parents=True, exist_ok=True)
        files.append(str(folder / f"{i}.png"))
        Image.fromarray(image).save(files[-1])
    run = root / "run"
    (run / "checkpoints").mkdir(parents=True)
    prep.save(str(run), NAMES)  # what kerascnn train writes beside the checkpoints
    save_model(model, run / "checkpoints" / "best.keras", prep, NAMES)
    return {"root": root, "model": model, "prep": prep, "probs": probs, "labels": labels,
            "files": files, "source": str(root / "data"), "run": run}


def _top1(model_path, source, out, capsys, *extra):
    assert main(["evaluate", "--model", str(model_path), "--source", source, "--split", "test",
                 "--quiet", "--out", str(out), *extra]) == 0
    err = capsys.readouterr().err
    return json.loads(open(f"{out}.json").read())["results"][0]["top1"], err


def test_a_keras_file_moved_alone_evaluates_and_serves_as_in_its_run(work, tmp_path, capsys,
                                                                     tf_serving):
    source = work["source"]
    in_run, _ = _top1(work["run"] / "checkpoints" / "best.keras", source, tmp_path / "r", capsys)
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.move(str(work["run"] / "checkpoints" / "best.keras"), str(alone / "model.keras"))
    assert os.listdir(alone) == ["model.keras"]
    moved, err = _top1(alone / "model.keras", source, tmp_path / "m", capsys)
    assert moved == in_run == 0.0  # the labels are the network's answers on the right view
    assert "carries no preprocessing" not in err and "stored in it" in err
    # the preprocessing matters here: without the mean, or without the pad (the crop
    # of the image zero-padded differently), other answers
    x = np.stack([np.asarray(Image.open(f), np.float32) for f in work["files"]])
    no_mean = _infer(work["model"], np.pad(x, [(0, 0), (PAD, PAD), (PAD, PAD), (0, 0)]))
    assert (no_mean.argmax(1) != work["labels"]).any()
    # the export of the lone file, served by TensorFlow alone
    assert main(["export", str(alone / "model.keras"), "--name", "tiny",
                 "--export-dir", str(tmp_path / "saved_models")]) == 0
    assert "carries no preprocessing" not in capsys.readouterr().err
    out = tf_serving(tmp_path / "saved_models" / "tiny" / "1", "serving_default",
                     image_files=work["files"])  # tests/export/conftest.py
    assert out["kerascnn_imported"] is False
    served = np.asarray(out["probabilities"])
    np.testing.assert_allclose(served, work["probs"], atol=1e-5)
    np.testing.assert_array_equal(served.argmax(1), work["labels"])  # evaluate's top-1 (0 %)
    assert [row[0] for row in out["top5_names"]] == [NAMES[c] for c in work["labels"]]


def test_the_file_stores_it_and_keras_loads_the_file_unchanged(work, tmp_path):
    path = tmp_path / "m.keras"
    save_model(work["model"], path, work["prep"], NAMES)
    with zipfile.ZipFile(path) as zf:
        assert MODEL_ENTRY in zf.namelist()
    assert read_stored(path) == (work["prep"], NAMES)
    plain = keras.saving.load_model(path, compile=False)  # Keras ignores the entry
    x = np.zeros((1, SIZE + 2 * PAD, SIZE + 2 * PAD, 3), np.float32)
    np.testing.assert_allclose(_infer(plain, x), _infer(work["model"], x))
    from kerascnn.evaluation.loading import load_keras_model

    loaded = load_keras_model(path)  # kerascnn's reader: the model carries it again
    assert resolve(loaded) == (work["prep"], NAMES, str(path))
    again = tmp_path / "again.keras"
    save_model(loaded, again)  # a re-save keeps it
    assert read_stored(again) == (work["prep"], NAMES)


def test_resolver_order_stored_then_run_json_then_one_fallback(work, tmp_path, capsys):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    other = Preprocessing(SIZE + 2 * PAD, 3, resize=SIZE, mean=[1.0, 2.0, 3.0])
    other.save(str(run), ["x", "y", "z"])
    stored = run / "checkpoints" / "stored.keras"
    save_model(work["model"], stored, work["prep"], NAMES)
    assert resolve(stored, model=work["model"]).preprocessing == work["prep"]  # before the json
    legacy = run / "checkpoints" / "legacy.keras"
    work["model"].save(legacy)  # an older run's checkpoint: its run's json
    assert resolve(legacy, model=work["model"]) == (other, ["x", "y", "z"],
                                                    str(run / "preprocessing.json"))
    assert capsys.readouterr().err == ""
    foreign = tmp_path / "foreign" / "model.keras"
    foreign.parent.mkdir()
    work["model"].save(foreign)
    got = resolve(foreign, model=work["model"], prog="kerascnn test")
    assert got == (Preprocessing(SIZE + 2 * PAD, 3, resize=SIZE + 2 * PAD), None, "fallback")
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"kerascnn test: {foreign} carries no preprocessing")
    assert "no mean subtracted" in err[0] and "--mean" in err[0]


def test_a_foreign_keras_file_is_said_in_one_line_by_evaluate_and_export(work, tmp_path, capsys):
    foreign = tmp_path / "foreign.keras"
    work["model"].save(foreign)
    assert main(["evaluate", "--model", str(foreign), "--source", work["source"], "--split",
                 "test", "--quiet", "--out", str(tmp_path / "g")]) == 0
    lines = [l for l in capsys.readouterr().err.splitlines() if "carries no preprocessing" in l]
    assert len(lines) == 1 and lines[0].startswith(f"kerascnn evaluate: {foreign} carries")
    assert main(["export", str(foreign), "--name", "foreign",
                 "--export-dir", str(tmp_path / "saved_models")]) == 0
    lines = [l for l in capsys.readouterr().err.splitlines() if "carries no preprocessing" in l]
    assert len(lines) == 1 and lines[0].startswith(f"kerascnn export: {foreign} carries")
    meta = tmp_path / "saved_models" / "foreign" / "1" / "assets.extra" / "kerascnn.json"
    assert Preprocessing.from_json(json.loads(meta.read_text())["preprocessing"]) == \
        Preprocessing(SIZE + 2 * PAD, 3, resize=SIZE + 2 * PAD)


def test_a_bad_or_oversized_entry_is_refused_naming_the_file(work, tmp_path, monkeypatch):
    from kerascnn.data import carried

    path = tmp_path / "m.keras"
    save_model(work["model"], path, work["prep"])
    monkeypatch.setattr(carried, "MAX_ENTRY_BYTES", 100)
    with pytest.raises(ValueError, match=f"{path}: its {MODEL_ENTRY} is .* bytes"):
        read_stored(path)
    monkeypatch.undo()
    bad = tmp_path / "bad.keras"
    work["model"].save(bad)
    with zipfile.ZipFile(bad, "a") as zf:
        zf.writestr(MODEL_ENTRY, "{not json")
    with pytest.raises(ValueError, match=f"{bad}: its {MODEL_ENTRY} is not valid JSON"):
        read_stored(bad)
