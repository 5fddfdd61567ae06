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

Bounds (issue 18): mean absolute difference <= 1.5 levels, 99th percentile <= 8, on the
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
    from kerascnn.weights.sets import get_weight_set

    (network, name), reference = CASES[case]
    prep = get_weight_set(network, name).preprocessing()
    path = PHOTOS[photo]
    return difference(ours(prep, path), reference(path))


@pytest.mark.parametrize("photo", sorted(PHOTOS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_center_view_is_the_publishers_transform(case, photo):
    mean, p99 = measure(case, photo)
    assert mean <= MEAN_BOUND and p99 <= P99_BOUND, (case, photo, mean, p99)


def test_the_references_see_the_photos_not_noise():
    """The bounds mean something: the two publishers' transforms of one photo differ
    far more than the bounds (another size and crop of the same picture)."""
    path = PHOTOS["grace_hopper"]
    mean, _ = difference(torchvision_input(path)[:224, :224], caffe_input_rgb(path, 224))
    assert mean > 4 * MEAN_BOUND


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


if __name__ == "__main__":  # the table of the report
    import kerascnn

    print(f"kerascnn from {os.path.dirname(kerascnn.__file__)}")
    print(f"{'origin':16s} {'photo':14s} {'mean':>6s} {'p99':>6s}")
    for case in CASES:
        for photo in PHOTOS:
            m, p = measure(case, photo)
            print(f"{case:16s} {photo:14s} {m:6.2f} {p:6.2f}")
