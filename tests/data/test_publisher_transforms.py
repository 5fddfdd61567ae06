"""Each weight set's center view is its publisher's evaluation transform.

On real photos (matplotlib's ``grace_hopper.jpg``, scikit-learn's ``china.jpg`` and
``flower.jpg``), the path ``evaluate``/``predict``/the export use
(``WeightSet.preprocessing()`` called on ``decode_image`` of the file's bytes) is
compared with the publishers' pipelines, written out here from their sources:

- torchvision's ``ImageClassification`` preset (``ResNet18_Weights.IMAGENET1K_V1
  .transforms()``): PIL decodes, ``Resize(256)`` with torchvision's size arithmetic
  (``_compute_resized_output_size``: the longer side ``int(256 * long / short)``) and
  ``Image.resize(..., BILINEAR)`` (PIL filters a downscale), ``CenterCrop(224)`` at
  ``int(round((h - 224) / 2.0))``, then ``(x / 255 - mean) / std`` -- torchvision itself
  cannot be installed beside this torch, so its arithmetic is written out below;
- Caffe's (BVLC): ``convert_imageset`` reads with ``cv2.imread`` (BGR) and warps every
  image to 256x256 with ``cv2.resize(INTER_LINEAR)``; the test-phase data layer crops
  the centre at ``(256 - crop) / 2`` (integer division) and subtracts the BGR mean
  ``104, 117, 123``.

Bounds: mean absolute difference <= 1.5 levels, 99th percentile <= 8, on the
network's input (the mean subtracted; kerascnn's mean in RGB, Caffe's in BGR, and
torchvision's std folded into the first conv so compared in 0-255 levels).

``python tests/data/test_publisher_transforms.py`` prints the table of differences.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

TORCHVISION_MEAN = np.array([0.485, 0.456, 0.406])  # torchvision/transforms/_presets.py
BVLC_MEAN_BGR = np.array([104.0, 117.0, 123.0])  # BVLC's prototxts' mean_value
MEAN_BOUND, P99_BOUND = 1.5, 8.0


def _photos():
    import matplotlib
    import sklearn.datasets

    images = os.path.join(os.path.dirname(sklearn.datasets.__file__), "images")
    return {
        "grace_hopper": os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg"),
        "china": os.path.join(images, "china.jpg"),
        "flower": os.path.join(images, "flower.jpg"),
    }


PHOTOS = _photos()


# -- the publishers' transforms, as their sources write them ------------------------------
def torchvision_resize_size(w, h, size):
    """torchvision/transforms/functional.py ``_compute_resized_output_size`` (size an int,
    no max_size): ``(new_w, new_h)``."""
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = size, int(size * long / short)
    return (new_short, new_long) if w <= h else (new_long, new_short)


def torchvision_uint8(path, resize=256, crop=224):
    """``Resize(resize)`` (PIL bilinear) and ``CenterCrop(crop)`` of a PIL image: uint8 RGB."""
    img = Image.open(path).convert("RGB")
    img = img.resize(torchvision_resize_size(*img.size, resize), Image.BILINEAR)
    w, h = img.size
    top, left = int(round((h - crop) / 2.0)), int(round((w - crop) / 2.0))
    return np.asarray(img.crop((left, top, left + crop, top + crop)))


def torchvision_input(path, resize=256, crop=224):
    """The network's input in 0-255 levels: ``255 * (x / 255 - mean)`` (the ``/ std``
    is folded into the first conv by kerascnn's mapper), RGB."""
    return torchvision_uint8(path, resize, crop).astype(np.float64) - 255.0 * TORCHVISION_MEAN


def caffe_uint8(path, crop, size=256):
    """``convert_imageset --resize_height=256 --resize_width=256`` then the data layer's
    centre crop: uint8 BGR."""
    import cv2

    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    bgr = cv2.resize(bgr, (size, size), interpolation=cv2.INTER_LINEAR)
    off = (size - crop) // 2
    return bgr[off:off + crop, off:off + crop]


def caffe_input_rgb(path, crop):
    """Caffe's input (BGR minus the BGR mean), its channels reversed to compare with an
    RGB network input (kerascnn's mapper reverses the first conv's input channels)."""
    return (caffe_uint8(path, crop).astype(np.float64) - BVLC_MEAN_BGR)[..., ::-1]


# -- ours ------------------------------------------------------------------------------
def ours(prep, path):
    """The ``center`` view as evaluation, predict and the export run it."""
    from kerascnn.data import decode_image

    with open(path, "rb") as f:
        data = f.read()
    return prep(decode_image(data, channels=3)).numpy().astype(np.float64)


def difference(a, b):
    d = np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))
    return float(d.mean()), float(np.percentile(d, 99))


CASES = {
    # (network, set name) -> the publisher's transform
    "torchvision": (("resnet18", "imagenet"), lambda path: torchvision_input(path)),
    "torchvision_v2": (("resnet50", "torchvision_v2"), lambda path: torchvision_input(path, 232)),
    "bvlc_alexnet": (("alexnet", "imagenet"), lambda path: caffe_input_rgb(path, 227)),
    "bvlc_googlenet": (("googlenet", "imagenet"), lambda path: caffe_input_rgb(path, 224)),
}


def measure(case, photo):
    """``((mean, p99) of our center view of the file's bytes, (mean, p99) of our center
    view of the pixels PIL decodes)`` against the publisher's transform. The second
    isolates the resize and crop: TensorFlow's JPEG decoder (its default fast integer
    IDCT) differs from PIL's and OpenCV's (libjpeg's accurate one, identical to each
    other) by about one level on its own."""
    from kerascnn.weights.sets import get_weight_set

    (network, name), reference = CASES[case]
    prep = get_weight_set(network, name).preprocessing()
    path = PHOTOS[photo]
    want = reference(path)
    pixels = np.asarray(Image.open(path).convert("RGB"))
    return (difference(ours(prep, path), want),
            difference(prep(pixels).numpy().astype(np.float64), want))


@pytest.mark.parametrize("photo", sorted(PHOTOS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_center_view_is_the_publishers_transform(case, photo):
    (mean, p99), (same_pixels_mean, same_pixels_p99) = measure(case, photo)
    assert mean <= MEAN_BOUND and p99 <= P99_BOUND, (case, photo, mean, p99)
    # the same decoded pixels: only the float arithmetic of two bilinear filters differs
    assert same_pixels_mean <= 0.3 and same_pixels_p99 <= 1.001, (same_pixels_mean, same_pixels_p99)


def test_torchvision_arithmetic_truncates_and_crops_with_pythons_rounding():
    """The hand-written torchvision arithmetic against numbers worked out here: 256 of a
    640x427 photo gives 383.6 -> 383 (not 384); the crop of 383 starts at
    round(79.5) = 80 (half to even), of 381 at round(78.5) = 78."""
    assert torchvision_resize_size(640, 427, 256) == (383, 256)
    assert torchvision_resize_size(427, 640, 256) == (256, 383)
    from kerascnn.data.preprocessing import shorter_side_shape

    assert shorter_side_shape([427, 640], 256).numpy().tolist() == [256, 383]
    assert shorter_side_shape([640, 427], 256).numpy().tolist() == [383, 256]


@pytest.mark.parametrize("width,left", [(383, 80), (381, 78), (224, 0)])
def test_round_half_even_crop_offset(width, left):
    from kerascnn.data.preprocessing import Preprocessing

    image = np.tile(np.arange(width, dtype=np.float32)[None, :, None], (230, 1, 3)) % 256
    prep = Preprocessing((224, 224), 3, crop_offset="round_half_even")
    out = prep(image.astype(np.uint8)).numpy()
    np.testing.assert_array_equal(out[0, :, 0], (np.arange(left, left + 224)) % 256)
    assert out[:, 0, 0].tolist() == [left % 256] * 224  # rows: round(6 / 2) = 3
    floor = Preprocessing((224, 224), 3)(image.astype(np.uint8)).numpy()
    assert floor[0, 0, 0] == ((width - 224) // 2) % 256


def test_a_runs_own_center_view_antialiases_a_large_photo():
    """A run's own preprocessing (the defaults) downscales a photo many times larger
    than its input with antialiasing: it matches PIL's filtered resize (torchvision's
    arithmetic, floor offsets) within the bounds, where plain bilinear sampling does not."""
    from kerascnn.data.preprocessing import Preprocessing

    path = PHOTOS["china"]  # 640x427 -> shorter side 36: 12x smaller
    prep = Preprocessing((32, 32), 3, resize=36)
    img = Image.open(path).convert("RGB")
    small = np.asarray(img.resize(torchvision_resize_size(*img.size, 36), Image.BILINEAR))
    top, left = (small.shape[0] - 32) // 2, (small.shape[1] - 32) // 2
    want = small[top:top + 32, left:left + 32]
    mean, p99 = difference(ours(prep, path), want)
    assert mean <= MEAN_BOUND and p99 <= P99_BOUND, (mean, p99)
    aliased = difference(ours(prep.replace(antialias=False), path), want)
    assert aliased[0] > 2 * MEAN_BOUND, aliased


def test_preprocessing_json_round_trips_the_transform_and_old_files_load(tmp_path):
    import json

    from kerascnn.data.preprocessing import Preprocessing

    prep = Preprocessing((227, 227), 3, resize=256, mean=(123.0, 117.0, 104.0),
                         resize_rule="warp", antialias=False, crop_offset="round_half_even")
    prep.save(str(tmp_path), class_names=["a", "b"])
    doc = json.loads((tmp_path / "preprocessing.json").read_text())
    assert (doc["resize_rule"], doc["antialias"], doc["crop_offset"]) == ("warp", False, "round_half_even")
    loaded, names = Preprocessing.load(str(tmp_path))
    assert loaded == prep and names == ["a", "b"]
    assert (loaded.resize_rule, loaded.antialias, loaded.crop_offset) == ("warp", False, "round_half_even")
    # a file written before these fields existed: the defaults
    old = {"image_size": [24, 24], "channels": 3, "resize": 28, "pad": 0, "mean": None}
    (tmp_path / "preprocessing.json").write_text(json.dumps(old))
    loaded, _ = Preprocessing.load(str(tmp_path))
    assert (loaded.resize_rule, loaded.antialias, loaded.crop_offset) == ("shorter", True, "floor")
    for field, bad in (("resize_rule", "squash"), ("antialias", "yes"), ("crop_offset", "ceil")):
        with pytest.raises(ValueError, match=field):
            Preprocessing.from_json({**old, field: bad})


@pytest.mark.parametrize("case", ["torchvision", "bvlc_googlenet"])
def test_evaluations_center_view_is_the_sets_preprocessing(case):
    """``evaluate``'s center view of a Member with a set's preprocessing (the protocol's
    path through ``views.center_crop``) is ``Preprocessing.__call__`` bit for bit, and
    so the publisher's transform."""
    import keras

    from kerascnn.data import decode_image
    from kerascnn.evaluation.evaluate import Member, _Runner
    from kerascnn.weights.sets import get_weight_set

    (network, name), reference = CASES[case]
    prep = get_weight_set(network, name).preprocessing()
    inp = keras.Input((*prep.image_size, 3))
    model = keras.Model(inp, keras.layers.Dense(2, activation="softmax")(
        keras.layers.GlobalAveragePooling2D()(inp)), name="tiny")
    with open(PHOTOS["china"], "rb") as f:
        image = decode_image(f.read(), channels=3)
    runner = _Runner(Member(model, preprocessing=prep), "center", {})
    view = runner.views(image)["crops"].numpy()[0]
    np.testing.assert_array_equal(view, prep(image).numpy())
    mean, p99 = difference(view, reference(PHOTOS["china"]))
    assert mean <= MEAN_BOUND and p99 <= P99_BOUND, (mean, p99)


def measure_export(case, base_dir):
    """A SavedModel's ``serving_default`` on the JPEG bytes of a 640x427 photo, with the
    set's preprocessing at 32x32 (resize round(32 * 256 / 224) = 37: a 12x downscale), against the publisher's
    transform at that size. The network is the identity (a flatten), so its
    "probabilities" are the preprocessed pixels."""
    import keras
    import tensorflow as tf

    from kerascnn.export import export_model
    from kerascnn.applications.pretrained import preprocessing_for

    (network, name), _ = CASES[case]
    prep = preprocessing_for(network, name, (32, 32))  # what `kerascnn export --arch` uses
    assert prep.resize == 37
    inp = keras.Input((32, 32, 3))
    model = keras.Model(inp, keras.layers.Flatten()(inp))
    path = export_model(model, "identity", base_dir=str(base_dir), preprocessing=prep, verbose=False)
    photo = PHOTOS["china"]
    with open(photo, "rb") as f:
        data = f.read()
    served = tf.saved_model.load(path).signatures["serving_default"](image_bytes=tf.constant([data]))
    got = served["probabilities"].numpy().reshape(32, 32, 3)
    if case.startswith("torchvision"):
        want = torchvision_input(photo, 37, 32)
    else:
        want = (caffe_uint8(photo, 32, size=37).astype(np.float64) - BVLC_MEAN_BGR)[..., ::-1]
    return difference(got, want)


@pytest.mark.tf_only
@pytest.mark.parametrize("case", ["torchvision", "bvlc_googlenet"])
def test_exports_serving_resize_of_a_large_photo_is_the_publishers(case, tmp_path):
    mean, p99 = measure_export(case, tmp_path)
    assert mean <= MEAN_BOUND and p99 <= P99_BOUND, (mean, p99)


if __name__ == "__main__":  # the table of the report
    import kerascnn

    print(f"kerascnn from {os.path.dirname(kerascnn.__file__)}")
    print(f"{'origin':16s} {'photo':14s} {'mean':>6s} {'p99':>6s}   same decoded pixels: mean p99")
    for case in CASES:
        for photo in PHOTOS:
            (m, p), (m2, p2) = measure(case, photo)
            print(f"{case:16s} {photo:14s} {m:6.2f} {p:6.2f}   {m2:6.2f} {p2:6.2f}")
    import tempfile

    for case in ("torchvision", "bvlc_googlenet"):
        with tempfile.TemporaryDirectory() as tmp:
            m, p = measure_export(case, tmp)
        print(f"{case:16s} {'china export':14s} {m:6.2f} {p:6.2f}  (SavedModel serving_default, 32x32)")
