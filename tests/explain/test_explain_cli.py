"""``kerascnn explain`` and ``kerascnn show-filters`` end to end: a tiny trained ResNet-20
of kerascnn.applications saved as a run would save it (checkpoints/best.keras with the
run's preprocessing.json one folder up), real photos of any size (matplotlib's
grace_hopper.jpg, scikit-learn's china.jpg) and a broken file; the pictures are opened
and checked."""

import json
import os

import keras
import numpy as np
import pytest
from PIL import Image

from explainnets import photo
from kerascnn.cli import main
from kerascnn.data.preprocessing import Preprocessing
from kerascnn.explain import boxes_from_map

pytestmark = pytest.mark.tf_only

NAMES = ["cat", "dog", "bird"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from kerascnn.applications import ResNet20

    keras.utils.set_random_seed(0)
    root = tmp_path_factory.mktemp("run")
    model = ResNet20(input_shape=(16, 16, 3), classes=3)
    model.compile("sgd", "sparse_categorical_crossentropy")
    x = np.random.default_rng(0).normal(0, 50, (8, 16, 16, 3)).astype(np.float32)
    model.fit(x, np.arange(8) % 3, batch_size=4, epochs=1, verbose=0)
    os.makedirs(root / "checkpoints")
    model.save(root / "checkpoints" / "best.keras")
    Preprocessing(image_size=(16, 16), resize=16, mean=[120.0, 115.0, 100.0]).save(str(root), NAMES)
    broken = root / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return root, str(root / "checkpoints" / "best.keras"), str(broken)


def test_explain_writes_overlays_maps_and_json(run, tmp_path, capsys):
    root, model, broken = run
    hopper, hopper_pixels = photo("grace_hopper")
    china, china_pixels = photo("china")
    out = tmp_path / "out"
    rc = main(["explain", hopper, broken, china, "--model", model, "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 1  # one file failed; the others were explained
    errors = [line for line in captured.err.splitlines() if "error" in line]
    assert len(errors) == 1 and broken in errors[0] and errors[0].startswith("kerascnn explain: error:")
    report = json.loads((out / "explain.json").read_text())
    assert report["method"] == "gradcam" and report["layer"] == "conv4_block3_out"
    assert report["failed"] == [broken]
    assert [e["image"] for e in report["images"]] == [hopper, china]
    for entry, pixels in zip(report["images"], (hopper_pixels, china_pixels)):
        h, w = pixels.shape[:2]
        with Image.open(entry["overlay"]) as picture:
            assert picture.format == "PNG" and picture.size == (w, h)  # >= 448 px: not enlarged
            drawn = np.asarray(picture.convert("RGB"))
        assert np.abs(drawn.astype(int) - pixels).mean() > 5  # the map is drawn on it
        heat = np.load(entry["map"])
        assert heat.shape == (h, w) and heat.dtype == np.float32 and heat.max() > 0
        assert entry["box"] == boxes_from_map(heat).tolist()
        x0, y0, x1, y1 = entry["box"]
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
        top = entry["top5"]
        assert len(top) == 3 and {t["name"] for t in top} == set(NAMES)
        assert entry["class"]["id"] == top[0]["id"]  # the top-1 by default
        assert abs(sum(t["probability"] for t in top) - 1) < 1e-4
        # the network saw the centre crop of the image with its shorter side at 16: the
        # map is 0 outside it (the crop's place computed here from the resize arithmetic)
        long_axis = int(w > h)
        short, long_ = min(h, w), max(h, w)
        resized = long_ * 16 // short  # the longer side truncated (torchvision's rule)
        offset = (resized - 16) // 2
        lo, hi = offset * long_ / resized, (offset + 16) * long_ / resized
        along = np.moveaxis(heat, long_axis, 0)
        assert along[: int(lo) - 1].max() == 0 and along[int(np.ceil(hi)) + 1:].max() == 0
        assert along[int(lo) + 1: int(hi) - 1].max() > 0


def test_explain_cam_for_a_named_class_and_a_small_image(run, tmp_path, capsys):
    root, model, _ = run
    small = tmp_path / "small.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (30, 50, 3), np.uint8)).save(small)
    out = tmp_path / "cam"
    assert main(["explain", str(small), "--model", model, "--method", "cam", "--class", "Dog",
                 "--out", str(out)]) == 0
    entry = json.loads((out / "explain.json").read_text())["images"][0]
    assert entry["class"] == {"id": 1, "name": "dog"} and entry["method"] == "cam"
    with Image.open(entry["overlay"]) as picture:
        assert picture.size == (50 * 9, 30 * 9)  # enlarged by ceil(448 / 50) = 9
    assert np.load(entry["map"]).shape == (30, 50)


@pytest.mark.parametrize("argv, message", [
    (["--class", "dgo"], "Unknown class name 'dgo'. Close names: dog"),
    (["--class", "7"], "Class id 7 is out of range: the model has 3 classes (0-2)"),
    (["--layer", "conv4_block3_ot"], "has no layer named 'conv4_block3_ot'"),
    (["--layer", "avg_pool"], "not a 4-D feature map"),
    (["--method", "score_map"], "score_map needs AlexNet's or VGG's"),
])
def test_explain_errors_are_one_line_before_any_image_is_read(run, tmp_path, capsys, argv, message):
    _, model, _ = run
    out = tmp_path / "none"
    assert main(["explain", str(tmp_path / "not_read.jpg"), "--model", model, "--out", str(out), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("kerascnn explain: error:") and message in err and "\n" not in err, err
    assert not out.exists()


def test_explain_needs_images_and_a_model(run, capsys):
    _, model, _ = run
    with pytest.raises(SystemExit) as exit_:
        main(["explain", "--model", model])
    assert exit_.value.code != 0
    assert "the following arguments are required: images" in capsys.readouterr().err
    assert main(["explain", "x.jpg"]) == 2
    assert "give a .keras file with --model" in capsys.readouterr().err


def test_show_filters_draws_alexnets_two_towers(tmp_path, capsys):
    from kerascnn.applications import AlexNet

    keras.utils.set_random_seed(0)
    model = AlexNet(include_top=False, input_shape=(67, 67, 3), groups=2)
    path = tmp_path / "alexnet.keras"
    model.save(path)
    out = tmp_path / "filters.png"
    assert main(["show-filters", "--model", str(path), "--out", str(out)]) == 0
    with Image.open(out) as picture:
        mosaic = np.asarray(picture.convert("RGB"))
    # two towers of 48 kernels, 3 rows of 16 each; 11x11 tiles enlarged 4x (44 px), 2 px
    # apart, the towers 12 px apart (as AlexNet's Figure 3: GPU 1's kernels on top)
    tile, gap, band = 44, 2, 12
    tower_h = 3 * tile + 2 * gap
    assert mosaic.shape == (2 * tower_h + band, 16 * tile + 15 * gap, 3)
    assert (mosaic[tower_h:tower_h + band] == 255).all()
    kernel = model.get_layer("conv1").kernel.numpy()  # 11, 11, 3, 96
    for index in (0, 47, 48, 95):  # first and last of each tower
        k = kernel[..., index]
        want = np.round((k - k.min()) / (k.max() - k.min()) * 255)
        tower, j = divmod(index, 48)
        r, c = divmod(j, 16)
        y, x = tower * (tower_h + band) + r * (tile + gap), c * (tile + gap)
        got = mosaic[y:y + tile:4, x:x + tile:4]
        assert np.abs(got.astype(float) - want).max() <= 1


def test_show_filters_feature_maps(tmp_path, run, capsys):
    _, model, broken = run
    hopper, _ = photo("grace_hopper")
    out = tmp_path / "maps.png"
    assert main(["show-filters", "--model", model, "--feature-maps", hopper,
                 "--layer", "conv2_block1_out", "--out", str(out)]) == 0
    with Image.open(out) as picture:
        # 16 channels of a 16x16 map, each enlarged 3x (48 px): one row of 16
        assert picture.size == (16 * 48 + 15 * 2, 48)
    assert main(["show-filters", "--model", model, "--feature-maps", broken, "--out", str(out)]) == 2
    assert broken in capsys.readouterr().err
