"""Through the commands: an image folder without the split a command
asks for is refused in one line naming the missing folder, before a run folder is
made or an image is read (it used to become its own validation and test set, with
the split folders as classes); ``data.validation_fraction`` holds out a seeded,
per-class part of the training split instead, said in the log and in holdout.json."""

import json
import os

import pytest
from tinyrun import TINY, make_folder

from kerascnn.cli import main

pytestmark = pytest.mark.tf_only


@pytest.fixture
def train_only(tmp_path):
    """``imgs/train/{red,green,blue}`` and no other split."""
    root = make_folder(str(tmp_path / "imgs"), per_class_train=6, per_class_test=1)
    import shutil

    shutil.rmtree(os.path.join(root, "test"))
    return root


def _recipe(tmp_path, source, epochs=1, steps=1):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY.format(source=source, lr=0.05, epochs=epochs, steps=steps, batch=4))
    return str(path)


def _error_line(out, command):
    lines = [line for line in out.splitlines() if line.startswith(f"kerascnn {command}: error:")]
    assert len(lines) == 1, out
    return lines[0]


def test_train_refuses_a_missing_split_folder(tmp_path, train_only, capsys):
    run = tmp_path / "run"
    args = ["train", _recipe(tmp_path, train_only), "--output-dir", str(run), "--no-export"]
    assert main(args) == 2
    line = _error_line(capsys.readouterr().err, "train")
    assert os.path.join(train_only, "test") in line and "data.validation_fraction" in line
    assert not run.exists()  # refused before the run folder (and any image)


def test_train_refuses_a_class_folder_as_its_own_validation(tmp_path, capsys):
    flat = make_folder(str(tmp_path / "data"), per_class_train=2, per_class_test=1)
    flat = os.path.join(flat, "train")  # {red,green,blue}/: no split folders
    run = tmp_path / "run"
    args = ["train", _recipe(tmp_path, flat), "--output-dir", str(run), "--no-export"]
    assert main(args) == 2
    line = _error_line(capsys.readouterr().err, "train")
    assert "no split folders" in line and "data.validation_fraction" in line
    assert not run.exists()


def test_evaluate_refuses_a_missing_split_folder(tmp_path, train_only, capsys):
    # the model file is never opened: the split is checked first
    code = main(["evaluate", "--model", str(tmp_path / "never_read.keras"), "--source",
                 train_only, "--split", "val"])
    assert code != 0
    err = capsys.readouterr().err
    line = _error_line(err, "evaluate")
    assert os.path.join(train_only, "val") in line and "never_read" not in err


def test_reproduce_refuses_a_missing_split_folder(tmp_path, train_only, capsys):
    out = tmp_path / "out"
    code = main(["reproduce", "degradation", "--data", train_only, "--iterations", "2",
                 "--points", "1", "--output-dir", str(out)])
    assert code == 2
    line = _error_line(capsys.readouterr().err, "reproduce")
    assert os.path.join(train_only, "test") in line
    assert not os.path.exists(out / "plan.json") and not os.path.exists(out / "mean.npy")


def test_train_holds_out_a_seeded_fraction(tmp_path, train_only, capsys):
    run = tmp_path / "run"
    args = ["train", _recipe(tmp_path, train_only), "--output-dir", str(run), "--no-export",
            "--verbose", "0", "--set", "data.validation_fraction=0.34"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "data.validation_fraction = 0.34: the validation split is 6 of the 18" in out
    assert "held out of the training split" in out
    held = json.load(open(run / "holdout.json"))
    assert held["heldout_examples"] == 6 and held["train_examples"] == 12
    assert held["used_as"] == ["validation", "test"] and held["seed"] == 0
    files = held["heldout_files"]
    assert len(files) == 6 and all(f.startswith(os.path.join(train_only, "train")) for f in files)
    assert sorted(os.path.basename(os.path.dirname(f)) for f in files) == \
        ["blue"] * 2 + ["green"] * 2 + ["red"] * 2  # per class
    metrics = json.load(open(run / "test_metrics.json"))
    assert metrics["num_examples"] == 6 and metrics["heldout_fraction"] == 0.34
