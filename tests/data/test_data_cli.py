import json

import numpy as np
import pytest
from PIL import Image

from kerascnn.cli import main
from kerascnn.data._cli import policy_of


def test_show_augmentations_writes_a_png_grid(image_folder, tmp_path):
    out = tmp_path / "grid.png"
    assert main(["show-augmentations", "resnet", "--source", str(image_folder),
                 "--out", str(out), "--rows", "2", "--cols", "3",
                 "--image-size", "24", "24"]) == 0
    image = np.asarray(Image.open(out))
    assert image.ndim == 3 and image.shape[0] > 100 and image.std() > 10


def test_recipe_name_reads_the_data_policy(tmp_path, image_folder):
    (tmp_path / "resnet20_fashion.toml").write_text(
        '[data]\nsource = "fashion_mnist"\npolicy = "cifar"\n')
    assert policy_of("resnet20_fashion", str(tmp_path))[0] == "cifar"
    (tmp_path / "vgg_s.toml").write_text(
        f'[data]\nsource = "{image_folder}"\npolicy = "vgg"\n'
        'policy_options = { scale = [20, 30] }\nimage_size = 16\n')
    out = tmp_path / "vgg.png"
    assert main(["show-augmentations", "vgg_s", "--pipelines-dir", str(tmp_path),
                 "--out", str(out), "--rows", "1", "--cols", "2"]) == 0
    assert out.stat().st_size > 0
    assert policy_of("vgg", str(tmp_path)) == ("vgg", {})
    with pytest.raises(ValueError, match="no recipe file"):
        policy_of("nothing", str(tmp_path))
    assert main(["show-augmentations", "nothing", "--pipelines-dir",
                 str(tmp_path)]) == 2


def test_dataset_stats_json(image_folder, tmp_path):
    out = tmp_path / "stats.json"
    assert main(["dataset-stats", "--source", str(image_folder), "--out", str(out),
                 "--per-pixel", "--image-size", "32", "32"]) == 0
    result = json.loads(out.read_text())
    assert result["num_examples"] == 12 and len(result["mean_rgb"]) == 3
    assert len(result["eigval"]) == 3 and np.array(result["eigvec"]).shape == (3, 3)
    assert np.load(result["per_pixel_mean_file"]).shape == (32, 32, 3)
