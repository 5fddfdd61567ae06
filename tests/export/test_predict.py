"""``kerascnn predict`` from an export and from a .keras file; ``kerascnn export``."""

import json
import os

import keras
import numpy as np
import pytest
from PIL import Image

from kerascnn.cli import main
from kerascnn.data.preprocessing import Preprocessing

pytestmark = pytest.mark.tf_only  # tf.data / tf.distribute / SavedModel

NAMES = ["ankle boot", "bag", "coat", "dress"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny gray model that maps brightness to a class, in a run-dir layout."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 1))
    x = keras.layers.GlobalAveragePooling2D()(inp)
    out = keras.layers.Dense(4, activation="softmax")(x)
    model = keras.Model(inp, out)
    model.layers[-1].set_weights([np.array([[-0.1, -0.03, 0.03, 0.1]], np.float32),
                                  np.zeros(4, np.float32)])
    root = tmp_path_factory.mktemp("run")
    os.makedirs(root / "checkpoints")
    model.save(str(root / "checkpoints" / "best.keras"))
    prep = Preprocessing(image_size=(8, 8), channels=1, mean=np.full((1,), 100.0, np.float32))
    prep.save(str(root), NAMES)
    images = []
    for value in (0, 250):
        path = str(root / f"img{value}.png")
        Image.fromarray(np.full((8, 8), value, np.uint8)).save(path)
        images.append(path)
    return model, root, prep, images


def _parse(out):
    blocks, current = {}, None
    for line in out.splitlines():
        if not line.startswith(" "):
            current = line.strip()
            blocks[current] = []
        elif current:
            blocks[current].append(line)
    return blocks


def test_predict_from_keras_file_and_export(trained, tmp_path, capsys):
    model, root, prep, images = trained
    # from the .keras file, with the run directory's preprocessing.json
    assert main(["predict", *images, "--model", str(root / "checkpoints" / "best.keras")]) == 0
    from_keras = _parse(capsys.readouterr().out)
    dark, bright = from_keras[images[0]], from_keras[images[1]]
    assert "ankle boot" in dark[0] and "dress" in bright[0]  # (0-100)*-0.1 wins when dark
    assert len(dark) == 4  # min(5, classes)
    x = np.stack([np.full((8, 8, 1), v - 100.0, np.float32) for v in (0, 250)])
    expected = model.predict(x, verbose=0)
    shown = float(dark[0].split()[-1])
    assert shown == pytest.approx(float(expected[0].max()), abs=1e-4)
    # kerascnn export: name from the run directory, preprocessing.json found
    base = str(tmp_path / "saved_models")
    assert main(["export", str(root / "checkpoints" / "best.keras"), "--export-dir", base]) == 0
    capsys.readouterr()
    name = os.path.basename(str(root))
    meta = json.load(open(os.path.join(base, name, "1", "assets.extra", "kerascnn.json")))
    assert meta["class_names"] == NAMES and meta["preprocessing"]["mean"] == [100.0]
    # from the export's serving_default signature: the same answers
    assert main(["predict", *images, "--model", os.path.join(base, name)]) == 0
    from_export = _parse(capsys.readouterr().out)
    assert from_export == from_keras


def test_predict_names_bad_files_and_answers_the_rest(trained, tmp_path, capsys):
    _, root, _, images = trained
    text = tmp_path / "notes.txt"
    text.write_text("not an image\n")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    missing = tmp_path / "missing.png"
    model = str(root / "checkpoints" / "best.keras")
    argv = ["predict", images[0], str(text), str(empty), str(missing), images[1], "--model", model]
    assert main(argv) == 1
    out, err = capsys.readouterr()
    answered = _parse(out)
    assert list(answered) == images  # the good files, in order, still answered
    assert "ankle boot" in answered[images[0]][0] and "dress" in answered[images[1]][0]
    lines = err.strip().splitlines()
    assert len(lines) == 3, err  # one line per bad file, no traceback
    assert str(text) in lines[0] and "not a JPEG, PNG, GIF or BMP" in lines[0]
    assert str(empty) in lines[1] and "empty" in lines[1]
    assert str(missing) in lines[2] and "No such file" in lines[2]
    assert all(line.startswith("kerascnn predict: error: ") for line in lines)


def test_predict_unknown_model_is_one_line(trained, tmp_path, capsys):
    _, _, _, images = trained
    assert main(["predict", images[0], "--model", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("kerascnn predict: error: ") and "Received: model=" in err
    assert len(err.splitlines()) == 1
    assert main(["predict", images[0], "--model", str(tmp_path / "gone.keras")]) == 2
    err = capsys.readouterr().err.strip()
    assert "gone.keras: no such model file" in err and len(err.splitlines()) == 1
