import json
import os

import numpy as np
import pytest
from PIL import Image

from kerascnn.cli import main
from kerascnn.training.recipe import pipelines_dir

PIPELINES = str(pipelines_dir())


def test_show_augmentations_writes_a_png_grid(image_folder, tmp_path):
    out = tmp_path / "grid.png"
    assert main(["show-augmentations", "resnet", "--source", str(image_folder),
                 "--out", str(out), "--rows", "2", "--cols", "3",
                 "--image-size", "24", "24"]) == 0
    image = np.asarray(Image.open(out))
    assert image.ndim == 3 and image.shape[0] > 100 and image.std() > 10


def _recipe(tmp_path, image_folder):
    """pipelines/fashion_mnist.toml with an image folder, the vgg policy, and a tfds
    manual_dir that the folder source ignores."""
    text = open(os.path.join(PIPELINES, "fashion_mnist.toml")).read()
    text = text.replace('source = "fashion_mnist"', f'source = "{image_folder}"\nmanual_dir = "~/imagenet"')
    text = text.replace('policy = "cifar"', 'policy = "vgg"')
    text = text.replace("policy_options = { pad = 0, random_crop = false, flip = false }",
                        "policy_options = { scale = [20, 30] }")
    text = text.replace("image_size = 28", "image_size = 16")
    path = tmp_path / "recipes" / "vgg_s.toml"
    path.parent.mkdir()
    path.write_text(text)
    return path


def test_recipes_are_found_from_any_folder(tmp_path, image_folder, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # no pipelines/ here: the package's folder is used
    out = tmp_path / "fmnist.png"
    assert main(["show-augmentations", "fashion_mnist", "--out", str(out), "--rows", "1",
                 "--cols", "2"]) == 0
    assert out.stat().st_size > 0
    recipe = _recipe(tmp_path, image_folder)
    out = tmp_path / "vgg.png"
    assert main(["show-augmentations", str(recipe), "--out", str(out), "--rows", "2",
                 "--cols", "2"]) == 0
    assert np.asarray(Image.open(out)).std() > 10
    monkeypatch.setenv("KERASCNN_PIPELINES", str(recipe.parent))
    assert main(["show-augmentations", "vgg_s", "--out", str(out), "--rows", "1",
                 "--cols", "2"]) == 0
    stats = tmp_path / "stats.json"
    assert main(["dataset-stats", "vgg_s", "--out", str(stats)]) == 0
    assert json.loads(stats.read_text())["num_examples"] == 12


def test_unknown_recipe_is_one_line(tmp_path, capsys):
    assert main(["show-augmentations", "nothing", "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nothing" in err and "not a policy" in err


def test_dataset_stats_json(image_folder, tmp_path):
    out = tmp_path / "new" / "folder" / "stats.json"  # created before the pass
    assert main(["dataset-stats", "--source", str(image_folder), "--out", str(out),
                 "--per-pixel", "--image-size", "32", "32"]) == 0
    result = json.loads(out.read_text())
    assert result["num_examples"] == 12 and len(result["mean_rgb"]) == 3
    assert len(result["eigval"]) == 3 and np.array(result["eigvec"]).shape == (3, 3)
    assert np.load(result["per_pixel_mean_file"]).shape == (32, 32, 3)


def test_dataset_stats_unwritable_out_fails_before_the_pass(image_folder, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the folder should be")
    empty = tmp_path / "empty"
    empty.mkdir()  # an empty class-less folder: reading it would fail differently
    assert main(["dataset-stats", "--source", str(empty), "--out",
                 str(blocker / "stats.json")]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "No class sub-folders" not in err
