"""Export for TF Serving: layout, versions, models.config, atomicity, and the two
signatures loaded in a fresh TensorFlow-only process (batch 1 and 7)."""

import io
import json
import os

import keras
import numpy as np
import pytest
from PIL import Image

from kerascnn.export import Preprocessing, export_model
from kerascnn.export import serving_config

pytestmark = pytest.mark.tf_only  # tf.data / tf.distribute / SavedModel

SIZE, PAD, C, CLASSES = 12, 2, 3, 6
NAMES = [f"class_{i}" for i in range(CLASSES)]


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    inp = keras.Input((SIZE + 2 * PAD, SIZE + 2 * PAD, C))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inp)
    x = keras.layers.Dropout(0.5)(x)  # must be off in the export
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(CLASSES, activation="softmax")(x)
    return keras.Model(inp, out)


@pytest.fixture(scope="module")
def mean():
    rng = np.random.default_rng(1)
    return rng.uniform(50, 150, (SIZE + 2 * PAD, SIZE + 2 * PAD, C)).astype(np.float32)


def _images(n, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, SIZE, SIZE, C), dtype=np.uint8)


def _png(image):
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def _expected(model, images, mean):
    # numpy reference of the preprocessing: zero padding, then the per-pixel mean
    x = np.pad(images.astype(np.float32), [(0, 0), (PAD, PAD), (PAD, PAD), (0, 0)]) - mean
    return keras.ops.convert_to_numpy(model(x, training=False))  # eager: no traced predict


def test_export_loads_in_plain_tensorflow_and_matches_keras(model, mean, tmp_path, tf_serving):
    base = str(tmp_path / "saved_models")
    prep = Preprocessing(image_size=(SIZE + 2 * PAD,) * 2, channels=C, pad=PAD, mean=mean)
    path = export_model(model, "tiny", base_dir=base, preprocessing=prep, class_names=NAMES)
    assert path == os.path.join(base, "tiny", "1")
    assert os.path.exists(os.path.join(path, "saved_model.pb"))
    out = {}
    expected = {}
    for n in (1, 7):
        images = _images(n, seed=n)
        files = [tmp_path / f"png{n}_{i}.png" for i in range(n)]
        for f, image in zip(files, images):
            f.write_bytes(_png(image))
        np.save(tmp_path / f"images{n}.npy", images)
        expected[n] = _expected(model, images, mean)
        # in a fresh TensorFlow-only process (tests/export/conftest.py)
        out[f"bytes{n}"] = tf_serving(path, "serving_default", image_files=files)
        out[f"images{n}"] = tf_serving(path, "serving_images", images_npy=tmp_path / f"images{n}.npy")
    for n in (1, 7):
        for tag in ("bytes", "images"):
            r = out[f"{tag}{n}"]
            assert r["kerascnn_imported"] is False
            probs = np.array(r["probabilities"])
            assert probs.shape == (n, CLASSES)
            assert np.max(np.abs(probs - expected[n])) <= 1e-5, (tag, n)
            top = np.argsort(-expected[n], axis=1, kind="stable")[:, :5]
            assert np.array(r["top5_classes"]).shape == (n, 5)
            np.testing.assert_array_equal(np.sort(r["top5_classes"], 1), np.sort(top, 1))
            assert r["top5_names"] == [[NAMES[c] for c in row] for row in r["top5_classes"]]
            np.testing.assert_allclose(r["top5_probabilities"],
                                       np.take_along_axis(probs, np.array(r["top5_classes"]), 1),
                                       atol=1e-7)


def test_versions_config_and_never_overwrite(model, tmp_path):
    base = str(tmp_path / "sm")
    assert export_model(model, "a", base_dir=base, verbose=False).endswith(os.path.join("a", "1"))
    assert export_model(model, "a", base_dir=base, verbose=False).endswith(os.path.join("a", "2"))
    assert export_model(model, "b", base_dir=base, version=7, verbose=False).endswith(
        os.path.join("b", "7"))
    before = os.path.getmtime(os.path.join(base, "a", "1", "saved_model.pb"))
    with pytest.raises(FileExistsError, match="never overwritten"):
        export_model(model, "a", base_dir=base, version=1, verbose=False)
    assert os.path.getmtime(os.path.join(base, "a", "1", "saved_model.pb")) == before
    assert serving_config.versions(os.path.join(base, "a")) == [1, 2]
    text = open(os.path.join(base, "models.config")).read()
    assert text.startswith("model_config_list {")
    assert text.count("config {") == 2
    assert 'name: "a"' in text and 'base_path: "/models/a"' in text
    assert 'name: "b"' in text and 'model_platform: "tensorflow"' in text
    meta = json.load(open(os.path.join(base, "a", "2", "assets.extra", "kerascnn.json")))
    assert meta["class_names"] == [str(i) for i in range(CLASSES)]
    leftovers = [d for d in os.listdir(os.path.join(base, "a")) if d.startswith(".tmp")]
    assert leftovers == []


class Killed(BaseException):
    pass


def test_crash_while_writing_leaves_no_version(model, tmp_path, monkeypatch):
    base = str(tmp_path / "sm")

    def crash(self, *args, **kwargs):
        os.makedirs(args[0], exist_ok=True)
        open(os.path.join(args[0], "saved_model.pb"), "wb").write(b"half")
        raise Killed("killed while writing")

    monkeypatch.setattr(type(keras.export.ExportArchive()), "write_out", crash)
    with pytest.raises(Killed):
        export_model(model, "m", base_dir=base, verbose=False)
    assert serving_config.versions(os.path.join(base, "m")) == []
    assert os.listdir(os.path.join(base, "m")) == []


@pytest.mark.parametrize("kwargs,match", [
    ({"name": "bad name"}, "name='bad name'"),
    ({"name": "m", "version": -1}, "version=-1"),
    ({"name": "m", "class_names": ["x"]}, "class_names"),
])
def test_bad_arguments(model, tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        export_model(model, base_dir=str(tmp_path), verbose=False, **kwargs)
    assert not os.path.exists(tmp_path / "m" / "0")
