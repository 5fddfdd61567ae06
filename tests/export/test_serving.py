"""What a TF Serving client gets: an export made under
umask 022 is readable by others (0755 folders, 0644 files, ``models.config`` too);
in a TensorFlow-only process, images sent 2x and 10x larger (PNG) get the
probabilities of the network on those images downscaled to its input with
antialiasing (``tf.image.resize(..., antialias=True)``, rounded to the 0-255 grid;
at 1x the original images themselves) -- the export resizes, it does not keep the
central pixels, and it filters a downscale -- and an empty batch gets empty results
from both signatures.

Two exports with ``kerascnn export``: a ``.keras`` file with no run preprocessing
(RGB, 16x16 input: the default resizes the shorter side to 16), and a
Fashion-MNIST-like run's ``checkpoints/best.keras`` whose run folder holds the
preprocessing written with ``Preprocessing.save`` (gray 28x28 images, resize 28, pad 2
to the network's 32x32, a per-pixel mean): its export must carry that same
``Preprocessing``.
"""

import io
import json
import os
import stat

import keras
import numpy as np
import pytest
from PIL import Image

from kerascnn.data.preprocessing import Preprocessing
from kerascnn.layers import BatchNormalization

pytestmark = [pytest.mark.tf_only, pytest.mark.slow]  # two exports, a serving subprocess

def _export(work):
    """Both exports with ``kerascnn export`` in this process, under umask 022."""
    from kerascnn.cli import main

    base = os.path.join(work, "saved_models")
    umask = os.umask(0o022)
    try:
        assert main(["export", os.path.join(work, "rgb.keras"), "--name", "rgb",
                     "--export-dir", base]) == 0
        # the run's preprocessing.json is found one folder above checkpoints/
        assert main(["export", os.path.join(work, "run", "checkpoints", "best.keras"),
                     "--name", "gray", "--export-dir", base]) == 0
    finally:
        os.umask(umask)


def _model(size, channels, classes, seed):
    keras.utils.set_random_seed(seed)
    inp = keras.Input((size, size, channels))
    x = keras.layers.Rescaling(1 / 64.0)(inp)
    x = keras.layers.Conv2D(8, 3, padding="same")(x)
    x = BatchNormalization()(x)  # oneDNN's fused kernel, which an empty batch broke
    x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2D(8, 3, strides=2)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, keras.layers.Dense(classes, activation="softmax")(x))


def _png(image):
    buf = io.BytesIO()
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buf, format="PNG")
    return np.frombuffer(buf.getvalue(), np.uint8)


def _up(images, f):  # nearest-neighbour enlargement: every pixel becomes an f x f block
    return np.repeat(np.repeat(images, f, axis=1), f, axis=2)


def _down(images, size):
    """The serving resize, written with TensorFlow's op: bilinear, antialiased, rounded."""
    import tensorflow as tf

    x = tf.image.resize(images.astype(np.float32), (size, size), antialias=True).numpy()
    return np.clip(np.round(x), 0, 255).astype(np.float32)


@pytest.fixture(scope="module")
def served(tmp_path_factory, tf_serving):
    work = tmp_path_factory.mktemp("serving")
    rng = np.random.default_rng(0)
    rgb_model, gray_model = _model(16, 3, 5, seed=1), _model(32, 1, 4, seed=2)
    rgb_model.save(str(work / "rgb.keras"))
    os.makedirs(work / "run" / "checkpoints")
    gray_model.save(str(work / "run" / "checkpoints" / "best.keras"))
    mean = rng.uniform(20, 120, (32, 32, 1)).astype(np.float32)
    prep = Preprocessing(image_size=32, channels=1, resize=28, pad=2, mean=mean)
    names = ["t-shirt", "trouser", "pullover", "dress"]
    prep.save(str(work / "run"), names)
    images = {"rgb": rng.integers(0, 256, (3, 16, 16, 3), dtype=np.uint8),
              "gray": rng.integers(0, 256, (3, 28, 28, 1), dtype=np.uint8)}
    _export(str(work))
    base = str(work / "saved_models")
    # in a TensorFlow-only process (tests/export/conftest.py)
    out = {}
    for name, x in images.items():
        channels = x.shape[-1]
        path = os.path.join(base, name, "1")
        for f in (1, 2, 10):
            files = [work / f"{name}_png{f}_{i}.png" for i in range(3)]
            for file, image in zip(files, _up(x, f)):
                file.write_bytes(_png(image).tobytes())
            np.save(work / f"{name}_big{f}.npy", _up(x, f))
            out[f"{name}_bytes{f}"] = tf_serving(path, "serving_default", image_files=files)
            out[f"{name}_images{f}"] = tf_serving(path, "serving_images",
                                                  images_npy=work / f"{name}_big{f}.npy")
        empty = {"bytes": tf_serving(path, "serving_default", image_files=[])}
        for kind, shape in (("images", (0, 0, 0, channels)), ("images16", (0, 16, 16, channels))):
            np.save(work / f"{name}_{kind}.npy", np.zeros(shape, np.float32))
            empty[kind] = tf_serving(path, "serving_images", images_npy=work / f"{name}_{kind}.npy")
        out[f"{name}_empty"] = {k: r["shapes"] for k, r in empty.items()}
    out["kerascnn_imported"] = any(r["kerascnn_imported"] for r in out.values() if "shapes" in r)

    def predict(model, x):  # eager: no traced predict function
        return keras.ops.convert_to_numpy(model(x, training=False))

    expected = {}
    for f in (1, 2, 10):
        rgb, gray = _down(_up(images["rgb"], f), 16), _down(_up(images["gray"], f), 28)
        if f == 1:  # no resize at all: the images as they are
            np.testing.assert_array_equal(rgb, images["rgb"])
            np.testing.assert_array_equal(gray, images["gray"])
        expected["rgb", f] = predict(rgb_model, rgb)
        expected["gray", f] = predict(
            gray_model, np.pad(gray, [(0, 0), (2, 2), (2, 2), (0, 0)]) - mean)
    return {"base": base, "out": out, "expected": expected, "prep": prep, "names": names}


@pytest.mark.parametrize("name", ["rgb", "gray"])
@pytest.mark.parametrize("factor", [1, 2, 10])
@pytest.mark.parametrize("signature", ["bytes", "images"])
def test_larger_images_get_the_original_answers(served, name, factor, signature):
    out, expected = served["out"], served["expected"][name, factor]
    assert out["kerascnn_imported"] is False
    probs = np.array(out[f"{name}_{signature}{factor}"]["probabilities"])
    assert probs.shape == expected.shape
    np.testing.assert_allclose(probs, expected, atol=2e-5)
    np.testing.assert_array_equal(probs.argmax(1), expected.argmax(1))


@pytest.mark.parametrize("name,classes", [("rgb", 5), ("gray", 4)])
def test_empty_batch_gets_empty_results(served, name, classes):
    for kind, shapes in served["out"][f"{name}_empty"].items():
        k = min(5, classes)
        assert shapes == {"probabilities": [0, classes], "top5_classes": [0, k],
                          "top5_names": [0, k], "top5_probabilities": [0, k]}, kind


def test_export_carries_the_preprocessing_the_run_wrote(served):
    gray = os.path.join(served["base"], "gray", "1", "assets.extra", "kerascnn.json")
    with open(gray) as f:
        meta = json.load(f)
    assert Preprocessing.from_json(meta["preprocessing"]) == served["prep"]
    assert meta["class_names"] == served["names"]
    rgb = os.path.join(served["base"], "rgb", "1", "assets.extra", "kerascnn.json")
    with open(rgb) as f:
        default = Preprocessing.from_json(json.load(f)["preprocessing"])
    assert default == Preprocessing(image_size=16, channels=3, resize=16)  # resize, no mean


def test_export_is_readable_by_others_under_umask_022(served):
    base = served["base"]
    modes = {}
    for root, dirs, files in os.walk(base):
        for name in dirs + files:
            path = os.path.join(root, name)
            modes[os.path.relpath(path, base)] = stat.S_IMODE(os.lstat(path).st_mode)
    assert modes["models.config"] == 0o644
    assert modes[os.path.join("rgb", "1")] == 0o755
    assert modes[os.path.join("gray", "1", "saved_model.pb")] == 0o644
    for rel, mode in modes.items():
        path = os.path.join(base, rel)
        assert mode == (0o755 if os.path.isdir(path) else 0o644), (rel, oct(mode))
    assert not [rel for rel in modes if ".tmp" in rel]
