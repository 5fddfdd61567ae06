"""What is settled before the first image is read: the run folder's lock, the paths,
the mean in one meaning, and the run's one Preprocessing."""

import os
import subprocess
import sys

import numpy as np
import pytest

from kerascnn.cli import main
from kerascnn.training import run_dir as rd
from kerascnn.training.recipe import load_recipe

pytestmark = pytest.mark.tf_only  # tf.data


# -- the lock: one process per run folder ----------------------------------------------
def test_a_second_train_into_a_held_run_folder_fails_at_once_naming_the_pid(
        tiny_recipe, tmp_path, cli):
    out = str(tmp_path / "run")
    with rd.RunDir(out).lock():
        assert open(os.path.join(out, "run.lock")).read().strip() == str(os.getpid())
        proc = cli(["train", tiny_recipe(), "--output-dir", out, "--no-export"],
                   cwd=str(tmp_path))
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert f"in use by process {os.getpid()}" in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert sorted(os.listdir(out)) == []  # released at exit; the second wrote nothing


def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path, capsys):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "run.lock").write_text(f"{dead.pid}\n")  # left by a killed run
    run = rd.RunDir(str(folder))
    with run:
        assert (folder / "run.lock").read_text().strip() == str(os.getpid())
        with pytest.raises(rd.RunLocked, match=f"process {os.getpid()}"):
            rd.RunDir(str(folder)).lock()  # a second holder, even in this process
    assert f"from process {dead.pid}" in capsys.readouterr().out
    assert not (folder / "run.lock").exists()


def test_the_lock_is_released_on_error(tmp_path):
    run = rd.RunDir(str(tmp_path / "run"))
    with pytest.raises(RuntimeError, match="boom"):
        with run.lock():
            raise RuntimeError("boom")
    with rd.RunDir(str(tmp_path / "run")).lock():  # free again
        pass


def test_run_names_stay_inside_their_base_folder(tmp_path):
    for name in ("..", "../x", "a/b", "/abs", ""):
        with pytest.raises(ValueError, match="one plain folder name"):
            rd.resolve_run_dir(name, None, base=str(tmp_path))
    assert rd.resolve_run_dir("tiny", None, base=str(tmp_path)) == str(tmp_path / "tiny")


# -- paths checked before the data -----------------------------------------------------
@pytest.mark.parametrize("flag,value,expect", [
    ("--data-dir", "{tmp}/no_such_folder", "--data-dir {tmp}/no_such_folder does not exist"),
    ("--export-dir", "{tmp}/a_file/saved_models", "--export-dir {tmp}/a_file/saved_models"
                                                  " cannot be written"),
    ("--init-from", "{tmp}/missing.keras", "--init-from {tmp}/missing.keras: no such file"),
])
def test_bad_paths_are_refused_before_any_data_is_read(tmp_path, capsys, flag, value,
                                                       expect):
    (tmp_path / "a_file").write_text("not a folder")
    recipe = tmp_path / "r.toml"
    from tinyrun import TINY

    # a data source that does not exist: opening it would be the error reported
    recipe.write_text(TINY.format(source=tmp_path / "no_data", epochs=1, batch=4, steps=1,
                                  lr=0.1))
    out = tmp_path / "run"
    code = main(["train", str(recipe), "--output-dir", str(out),
                 flag, value.format(tmp=tmp_path)])
    printed = capsys.readouterr().err
    assert code == 2
    assert expect.format(tmp=tmp_path) in printed and "no_data" not in printed
    assert not out.exists()


# -- one mean, one Preprocessing -------------------------------------------------------
def _in_memory(size=28, channels=1, n=6):
    from kerascnn.data import from_arrays

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, size, size, channels), dtype=np.uint8)
    return from_arrays(images, np.arange(n) % 3, ["a", "b", "c"], name="mem")


def test_the_mean_has_one_meaning(tmp_path):
    from kerascnn.data import stats
    from kerascnn.training.experiment import resolve_mean

    rgb = _in_memory(channels=3)
    recipe = load_recipe("fashion_mnist")
    for kind, source, want in (("none", rgb, None), ("imagenet", _in_memory(), None)):
        recipe.data.mean = kind
        assert resolve_mean(recipe, source, str(tmp_path)) is want
    recipe.data.mean = "imagenet"
    np.testing.assert_array_equal(resolve_mean(recipe, rgb, str(tmp_path)),
                                  np.asarray(stats.IMAGENET_MEAN_RGB, np.float32))
    recipe.data.mean = "rgb"
    mean = resolve_mean(recipe, rgb, str(tmp_path / "run"))
    np.testing.assert_allclose(mean, rgb.images.reshape(-1, 3).mean(0), rtol=1e-5)
    assert os.path.exists(tmp_path / "run" / "mean.npy")


def test_the_recipe_takes_the_first_examples_of_each_split_and_its_source_options(
        tmp_path):
    """data.train/validation/test_examples (0: all) and data.source_options (a
    TFRecord source's num_classes), with ``{split}`` in its glob naming the shards."""
    import tensorflow as tf

    from kerascnn.training.experiment import load_sources

    recipe = load_recipe("fashion_mnist", ["data.train_examples=100",
                                           "data.validation_from_train=10",
                                           "data.test_examples=7"])
    train, val, test = load_sources(recipe)
    assert (train.num_examples, val.num_examples, test.num_examples) == (100, 10, 7)
    for split, n in (("train", 5), ("test", 3)):
        with tf.io.TFRecordWriter(str(tmp_path / f"{split}-0")) as w:
            for i in range(n):
                w.write(tf.train.Example(features=tf.train.Features(feature={
                    "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(
                        value=[tf.io.encode_png(tf.zeros((4, 4, 3), tf.uint8)).numpy()])),
                    "image/class/label": tf.train.Feature(
                        int64_list=tf.train.Int64List(value=[i % 2]))})).SerializeToString())
    recipe = load_recipe("fashion_mnist", [
        f"data.source='tfrecord:{tmp_path}/{{split}}-*'", "data.validation_from_train=0",
        "data.validation_split='test'", "data.validation_examples=2",
        "data.source_options={ num_classes = 2 }"])
    train, val, test = load_sources(recipe)
    assert train.num_classes == 2
    count = lambda s: sum(1 for _ in s.dataset)  # noqa: E731
    assert (count(train), count(val), count(test)) == (5, 2, 3)


def test_fixed_size_images_get_their_own_size_as_resize_and_evaluate_unchanged():
    """Fashion-MNIST-like 28x28 images, network input 32 (pad 2): resize 28 is the
    identity on them, bit for bit, and brings a 10x upscaled image back to 28x28 with
    antialiasing (PIL's filtered resize, within a level)."""
    from kerascnn.training.experiment import run_preprocessing

    recipe = load_recipe("fashion_mnist", ["data.image_size=32", "data.eval_pad=2"])
    source = _in_memory()
    mean = np.full((32, 32, 1), 70.5, np.float32)
    prep = run_preprocessing(recipe, source, mean)
    assert (prep.image_size, prep.channels, prep.resize, prep.pad) == ((32, 32), 1, 28, 2)
    np.testing.assert_array_equal(prep.mean, mean)
    images = source.images
    unresized = prep.replace(resize=None)
    np.testing.assert_array_equal(np.asarray(prep(images)), np.asarray(unresized(images)))
    upscaled = np.kron(images, np.ones((1, 10, 10, 1), np.uint8))  # 280x280, nearest
    assert upscaled.shape[1:3] == (280, 280)
    # ... and downscales it with antialiasing, as PIL's filtered bilinear resize does
    # (a 10x nearest upscale comes back as its filtered downscale, not bit for bit)
    from PIL import Image

    filtered = np.stack([np.asarray(Image.fromarray(u[..., 0]).resize((28, 28), Image.BILINEAR))
                         for u in upscaled])[..., None]
    diff = np.abs(np.asarray(prep(upscaled)) - np.asarray(unresized(filtered)))
    assert diff.mean() <= 0.5 and diff.max() <= 1.0, (diff.mean(), diff.max())
    # cropping the 280x280 image (the old serving) is something else entirely
    assert not np.array_equal(np.asarray(unresized(upscaled)), np.asarray(prep(images)))
    # a recipe's eval_resize wins; an image folder (sizes differ) gets none
    assert run_preprocessing(load_recipe("fashion_mnist", ["data.eval_resize=36"]),
                             source, None).resize == 36


def test_image_folders_keep_no_resize(image_folder):
    from kerascnn.data import load_source
    from kerascnn.training.experiment import run_preprocessing

    prep = run_preprocessing(load_recipe("fashion_mnist"),
                             load_source(image_folder, "train"), None)
    assert prep.resize is None and prep.mean is None and prep.channels == 3


def test_no_test_split_writes_and_lists_no_test_metrics(tiny_recipe, tmp_path, capsys):
    """A run without a test split writes no test metrics and lists none."""
    from kerascnn.training.trainer import train

    recipe = load_recipe(tiny_recipe(epochs=1, steps=1, batch=4), ["data.test_split=''"])
    out = str(tmp_path / "run")
    result = train(recipe, output_dir=out, export=False, verbose=0)
    printed = capsys.readouterr().out
    assert result.test_metrics is None
    assert not os.path.exists(os.path.join(out, "test_metrics.json"))
    assert "test_metrics.json" not in printed and "history.csv" in printed
    assert rd.RunDir(out).completed()["test_metrics"] is None
    from kerascnn.data.preprocessing import Preprocessing

    prep, names = Preprocessing.load(out)
    assert prep.mean is not None and prep.mean.shape == (3,) and names == ["blue", "green",
                                                                           "red"]


def test_an_export_that_finished_before_a_kill_is_not_repeated(tmp_path, capsys):
    """Killed after the export's rename, before completed.json: the rerun finds the
    version whose kerascnn.json names this run folder and exports nothing."""
    import json
    import types

    from kerascnn.training.trainer import _export_stage

    run = rd.RunDir(str(tmp_path / "run"))
    base = tmp_path / "sm"
    for version, owner in ((1, "elsewhere"), (2, os.path.abspath(run.path))):
        extra = base / "tiny" / str(version) / "assets.extra"
        extra.mkdir(parents=True)
        (extra / "kerascnn.json").write_text(json.dumps({"run_path": owner}))
    exp = types.SimpleNamespace(recipe=types.SimpleNamespace(name="tiny"))
    path = _export_stage(exp, run, None, str(base), None)  # no model: nothing exported
    assert path == str(base / "tiny" / "2")
    assert "this run was exported before" in capsys.readouterr().out
