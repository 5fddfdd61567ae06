"""``evaluate --weights`` on a user's folder: ImageNet classes named by WordNet id or by
name are scored as ImageNet's class ids; other classes are refused before evaluating
(not reported as 100 % error against 1,000 unrelated outputs)."""

import os

import numpy as np
import pytest
from PIL import Image

from kerascnn.data import load_source
from kerascnn.evaluation._cli import _as_imagenet_classes

pytestmark = pytest.mark.tf_only

# ImageNet class ids (the ILSVRC-2012 order, keras' imagenet_class_index.json):
# 0 n01440764 tench, 1 n01443537 goldfish, 2 n01484850 great white shark, 10 n01530575
# brambling
EXPECTED = {"tench": 0, "goldfish": 1, "n01530575": 10, "great_white_shark": 2}


def _folder(root, names, per_class=2):
    rng = np.random.default_rng(0)
    for name in names:
        os.makedirs(root / "test" / name)
        for i in range(per_class):
            image = rng.integers(0, 255, (12, 12, 3)).astype(np.uint8)
            Image.fromarray(image).save(root / "test" / name / f"{i}.png")
    return str(root)


def _labels_by_folder(source):
    labels = [int(y) for _, y in source.dataset]
    return {os.path.basename(os.path.dirname(p)): y for p, y in zip(source.paths, labels)}


def test_imagenet_classes_by_name_or_wordnet_id_are_relabelled(tmp_path, capsys):
    source = load_source(_folder(tmp_path, EXPECTED), "test")
    assert sorted(set(_labels_by_folder(source).values())) == [0, 1, 2, 3]  # the folder's ids
    mapped = _as_imagenet_classes(source)
    assert _labels_by_folder(mapped) == EXPECTED
    assert mapped.num_classes == 1000
    assert sorted(mapped.labels) == sorted(2 * list(EXPECTED.values()))
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "are ImageNet classes" in err[0] and "tench -> 0" in err[0]


def test_imagenet_order_and_class_numbers_pass_unchanged(tmp_path):
    wnids = load_source(_folder(tmp_path / "a", ["n01440764", "n01443537", "n01484850"]), "test")
    assert _as_imagenet_classes(wnids) is wnids
    numbers = load_source(_folder(tmp_path / "b", ["0", "1", "2"]), "test")
    assert _as_imagenet_classes(numbers) is numbers


def test_other_classes_are_refused_naming_them(tmp_path):
    source = load_source(_folder(tmp_path, ["gizmo", "tench", "widget"]), "test")
    with pytest.raises(ValueError, match=r"2 of 3 are not ImageNet classes, e\.g\. "
                                         r"\['gizmo', 'widget'\]"):
        _as_imagenet_classes(source)


@pytest.mark.slow
def test_the_command_refuses_before_evaluating(tmp_path, capsys):
    """The command as a user runs it: keras.applications' ResNet-50 file (random
    weights, Keras' legacy HDF5 writer) and a folder of three non-ImageNet classes."""
    import h5py
    import keras
    from keras.src.legacy.saving import legacy_h5_format

    from kerascnn.cli import main

    weights = str(tmp_path / "resnet50_weights_tf_dim_ordering_tf_kernels.h5")
    with h5py.File(weights, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, keras.applications.ResNet50(weights=None))
    folder = _folder(tmp_path / "imgs", ["cat_toy", "dog_bed", "fox_hat"])
    out = tmp_path / "report"
    code = main(["evaluate", "--arch", "resnet50", "--weights", weights, "--source", folder,
                 "--split", "test", "--crop-size", "32", "--quiet", "--out", str(out)])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert code != 0 and len(lines) == 1, err
    assert "not the weights' classes" in lines[0] and "'cat_toy'" in lines[0]
    assert not os.path.exists(str(out) + ".json")
