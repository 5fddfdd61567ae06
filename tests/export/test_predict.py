"""``kerascnn predict`` from an export and from a .keras file; ``kerascnn export``."""

import json
import os

import keras
import numpy as np
import pytest
from PIL import Image

from kerascnn.cli import main
from kerascnn.export import Preprocessing, export_model
from kerascnn.export.predict import write_preprocessing

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
    write_preprocessing(str(root), prep, NAMES)
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


def test_predict_errors(trained, tmp_path, capsys):
    _, root, _, images = trained
    assert main(["predict", str(tmp_path / "missing.png"), "--model", "x"]) == 2
    assert "no such file" in capsys.readouterr().out
    with pytest.raises(ValueError, match="Received: model="):
        main(["predict", images[0], "--model", str(tmp_path)])
