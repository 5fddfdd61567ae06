"""Packaging as a user gets it: a non-editable ``pip install .`` into a fresh virtual
environment trains from another folder with the recipes shipped in the package, and the
declared Python range is one the code runs on."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Standard-library modules newer than Python 3.10, with the version that added them.
NEWER_STDLIB = {"tomllib": (3, 11), "wsgiref.types": (3, 11)}


def _lower_bound(spec):
    match = re.fullmatch(r"\s*>=\s*(\d+)\.(\d+)\s*", spec)
    assert match, f"requires-python should be a plain lower bound. Received: {spec!r}"
    return int(match.group(1)), int(match.group(2))


def _imported_modules():
    for folder, _, files in os.walk(os.path.join(ROOT, "kerascnn")):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
                    if isinstance(node, ast.Import):
                        for alias in node.names:
                            yield path, alias.name
                    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                        yield path, node.module


def test_requires_python_covers_the_standard_library_the_package_imports():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        lower = _lower_bound(tomllib.load(f)["project"]["requires-python"])
    needed = {(path, module): NEWER_STDLIB[module] for path, module in _imported_modules()
              if module in NEWER_STDLIB}
    assert "tomllib" in {module for _, module in needed}  # the recipes' reader
    for (path, module), version in needed.items():
        assert lower >= version, f"{path} imports {module} (Python {version}) but " \
                                 f"pyproject.toml allows Python {lower}"
    assert sys.version_info[:2] >= lower  # the declared range is what the tests run


def _write_idx(path, array):
    """An IDX file as Fashion-MNIST ships it (unsigned bytes, big-endian sizes)."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    with open(path, "wb") as f:
        f.write(header + np.ascontiguousarray(array, np.uint8).tobytes())


def _tiny_fashion_mnist(folder):
    """Fashion-MNIST's files at a tiny size (64 training, 32 test images), so that the
    default recipe trains, validates and tests in seconds."""
    rng = np.random.default_rng(0)
    os.makedirs(folder)
    for stem, n in (("train", 64), ("t10k", 32)):
        labels = np.arange(n) % 10
        _write_idx(os.path.join(folder, f"{stem}-images-idx3-ubyte"),
                   rng.integers(0, 256, (n, 28, 28)))
        _write_idx(os.path.join(folder, f"{stem}-labels-idx1-ubyte"), labels)
    return folder


def _copy_source(dest):
    """The files a ``pip install .`` reads (a copy, so that the build's egg-info and
    build/ folders stay out of the repository)."""
    os.makedirs(dest)
    for name in ("pyproject.toml", "setup.cfg", "README.md"):
        shutil.copy(os.path.join(ROOT, name), dest)
    shutil.copytree(os.path.join(ROOT, "kerascnn"), os.path.join(dest, "kerascnn"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    return dest


@pytest.mark.slow
def test_non_editable_install_trains_from_another_folder(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True, timeout=60).stdout.strip()
    # the dependencies (and pip, setuptools) come from the environment running the tests,
    # after the new environment's own site-packages (a .pth line appends a path; the
    # test environment's own .pth files, e.g. an editable kerascnn, are not run)
    shared = sysconfig.get_paths()["purelib"]
    with open(os.path.join(site, "shared_dependencies.pth"), "w") as f:
        f.write(shared + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    source = _copy_source(tmp_path / "src")
    subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--no-build-isolation",
                    "--ignore-installed", "--quiet", str(source)],
                   check=True, env=env, cwd=tmp_path, timeout=300)
    shutil.rmtree(source)  # nothing may be read from the source after the install

    work = tmp_path / "work"  # an empty folder: no pipelines/ and no kerascnn/ here
    work.mkdir()
    where = subprocess.run(
        [str(python), "-c", "import kerascnn, sys; print(kerascnn.__file__); "
         "print('tensorflow' in sys.modules); from kerascnn.training.recipe import "
         "find_recipe, list_recipes; print(list_recipes()); "
         "print(find_recipe('finetune_folder'))"],
        check=True, capture_output=True, text=True, env=env, cwd=work, timeout=120).stdout.split("\n")
    assert os.path.realpath(where[0]).startswith(os.path.realpath(site) + os.sep), where[0]
    assert where[1] == "False"  # the package imports no TensorFlow by itself
    assert "'finetune_folder'" in where[2] and "'fashion_mnist'" in where[2]
    assert os.path.realpath(where[3]) == os.path.join(
        os.path.realpath(site), "kerascnn", "pipelines", "finetune_folder.toml")

    kerascnn = str(venv / "bin" / "kerascnn")
    unknown = subprocess.run([kerascnn, "train", "no_such_recipe"], capture_output=True,
                             text=True, env=env, cwd=work, timeout=120)
    assert unknown.returncode == 2
    assert "finetune_folder" in unknown.stdout + unknown.stderr
    assert "resnet20_cifar10" in unknown.stdout + unknown.stderr

    data = _tiny_fashion_mnist(str(tmp_path / "fashion_mnist"))
    # The default recipe (the shipped fashion_mnist.toml) with its network swapped for
    # AlexNet's four-layer Figure 1 net: the install is what is tested, not ResNet-20,
    # whose ~65 layers take several CPU-s more to trace.
    run = subprocess.run(
        [kerascnn, "train", "--epochs", "1", "--batch-size", "8", "--no-export", "--verbose", "0",
         "--data-dir", data, "--set", 'model.name="alexnet_fig1"', "--set", "model.options={}",
         "--set", "data.validation_from_train=16",
         "--set", "training.steps_per_epoch=2", "--set", "training.validation_steps=1",
         "--set", "training.precision=\"float32\""],
        capture_output=True, text=True, env=env, cwd=work, timeout=400)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    history = (work / "runs" / "fashion_mnist" / "history.csv").read_text().splitlines()
    assert len(history) == 2, history  # a header and the one epoch
    assert (work / "runs" / "fashion_mnist" / "checkpoints" / "best.keras").stat().st_size > 0
