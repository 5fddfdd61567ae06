"""``kerascnn train`` end to end on a tiny recipe over real PNG files: outputs, a
completed run is never overwritten (kills at every stage: test_resume.py)."""

import csv
import json
import os
import subprocess
import sys

import pytest

from kerascnn.cli import main
from kerascnn.training.run_dir import resolve_run_dir

pytestmark = pytest.mark.tf_only  # tf.data / tf.distribute / SavedModel


def _rows(run_dir):
    with open(os.path.join(run_dir, "history.csv"), newline="") as f:
        return list(csv.DictReader(f))


def test_train_evaluates_exports_and_reports(tiny_recipe, tmp_path, capsys, monkeypatch):
    import keras

    traced, step = [], keras.Model.train_step

    def counted(self, data):  # its body runs only while tf.function traces it
        traced.append(data)
        return step(self, data)

    monkeypatch.setattr(keras.Model, "train_step", counted)
    recipe = tiny_recipe(epochs=2, steps=2)
    out_dir, export_dir = str(tmp_path / "run"), str(tmp_path / "saved_models")
    args = ["train", recipe, "--output-dir", out_dir, "--export-dir", export_dir,
            "--verbose", "0", "--set", "training.seed=3"]
    assert main(args) == 0
    # the train step is traced once: the optimizer's momenta exist before fit (created
    # inside the first trace, they made tf.function trace it a second time)
    assert len(traced) == 1, f"the train step was traced {len(traced)} times"
    printed = capsys.readouterr().out
    for name in ("history.csv", "curves.png", "test_metrics.json", "completed.json",
                 "recipe.json", "mean.npy", "preprocessing.json",
                 "checkpoints/last.keras", "checkpoints/best.keras", "logs"):
        assert os.path.exists(os.path.join(out_dir, name)), name
    for name in ("logs", "history.csv", "curves.png", "test_metrics.json",
                 "checkpoints/last.keras", "preprocessing.json"):
        assert os.path.join(out_dir, name) in printed, name  # where every output went
    assert not os.path.exists(os.path.join(out_dir, "backup"))  # removed when done
    # every checkpoint carries the run's preprocessing and class names (a file moved
    # out of the run keeps them): kerascnn.data.carried
    from kerascnn.data.carried import read_stored
    from kerascnn.data.preprocessing import Preprocessing

    run_prep = Preprocessing.load(out_dir)
    for name in ("last", "best"):
        assert read_stored(os.path.join(out_dir, "checkpoints", f"{name}.keras")) == run_prep
    assert [int(r["epoch"]) for r in _rows(out_dir)] == [0, 1]
    assert "Epoch 2: lr" in printed and "val top-1 error" in printed
    metrics = json.load(open(os.path.join(out_dir, "test_metrics.json")))
    assert metrics["num_examples"] == 18 and 0 <= metrics["top1_error"] <= 100
    assert json.load(open(os.path.join(out_dir, "recipe.json")))["training"]["seed"] == 3
    assert os.path.exists(os.path.join(export_dir, "tiny", "1", "saved_model.pb"))
    assert os.path.join(export_dir, "tiny", "1") in printed
    # the same command again: a completed run is kept, a fresh one goes next to it
    assert resolve_run_dir("tiny", out_dir) == out_dir + "-2"
    os.makedirs(out_dir + "-2")
    assert resolve_run_dir("tiny", out_dir) == out_dir + "-2"  # unfinished: resume it
    open(os.path.join(out_dir + "-2", "completed.json"), "w").write("{}")
    assert resolve_run_dir("tiny", out_dir) == out_dir + "-3"
    assert resolve_run_dir("tiny", None, base=str(tmp_path / "runs")) == str(
        tmp_path / "runs" / "tiny")


def test_steps_per_execution_reaches_compile(tiny_recipe, tmp_path):
    from kerascnn.training.recipe import load_recipe
    from kerascnn.training.trainer import train

    import keras

    recipe = load_recipe(tiny_recipe(epochs=1, steps=4), ["training.steps_per_execution=2",
                                                          'training.precision="mixed_bfloat16"'])
    assert keras.mixed_precision.global_policy().name == "float32"
    result = train(recipe, output_dir=str(tmp_path / "run"), export=False, verbose=0)
    # the run used the recipe's precision; the caller's global policy is back afterwards
    # (a library call leaves the process as it found it: a later model is float32)
    assert any(layer.dtype_policy.name == "mixed_bfloat16" for layer in result.model.layers)
    assert keras.mixed_precision.global_policy().name == "float32"
    assert result.model.steps_per_execution == 2
    assert [int(r["epoch"]) for r in _rows(str(tmp_path / "run"))] == [0]
    assert result.model.optimizer.iterations.numpy() == 4  # 2 calls x 2 steps


def test_corrupt_image_mid_stream_is_skipped_with_a_warning(tmp_path, image_folder,
                                                            tiny_recipe):
    """A PNG whose header and IEND pass the listing's checks but whose pixel data is
    broken: the run goes on, and the skip shows (TF's warning, not hidden by the CLI).
    An empty file beside it is named by the listing and counted at the run's end."""
    import io
    import shutil

    import numpy as np
    from PIL import Image

    data_dir = tmp_path / "data"
    shutil.copytree(image_folder, data_dir)
    buf = io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(buf, "PNG")  # ~12 KB: IEND far from the broken bytes
    broken = bytearray(buf.getvalue())
    broken[60:200] = b"\x00" * 140
    (data_dir / "train" / "red" / "broken.png").write_bytes(bytes(broken))
    (data_dir / "train" / "red" / "empty.jpg").write_bytes(b"")  # caught by the listing
    recipe = tiny_recipe(epochs=1, steps=0, source=data_dir)  # one pass: every file
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = subprocess.run(
        [sys.executable, "-m", "kerascnn.cli", "train", str(recipe), "--no-export",
         "--output-dir", str(tmp_path / "run"), "--verbose", "0"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Invalid PNG data" in proc.stderr
    assert os.path.exists(tmp_path / "run" / "completed.json")
    # the listing named the empty file before training, and the run ends with the count
    assert "empty.jpg" in proc.stderr
    lines = proc.stdout.splitlines()
    closing = [i for i, line in enumerate(lines) if "skipped 1 bad image file(s)" in line]
    done = [i for i, line in enumerate(lines) if "done in" in line]
    assert closing and done and closing[0] < done[0] and "train" in lines[closing[0]]


def test_bad_recipe_is_reported(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[model]\nname = 3\n")
    assert main(["train", str(bad)]) == 2
    out = capsys.readouterr().err
    assert "model.name" in out and str(bad) in out
