"""A tiny image-folder dataset of real PNG files and a tiny recipe over it."""

import os
import subprocess
import sys

import pytest
from tinyrun import TINY, make_folder


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory):
    return make_folder(str(tmp_path_factory.mktemp("folder")))


@pytest.fixture
def tiny_recipe(tmp_path, image_folder):
    def write(epochs=2, batch=8, steps=3, lr=0.05, name="tiny.toml", source=None):
        path = tmp_path / name
        path.write_text(TINY.format(source=source or image_folder, epochs=epochs,
                                    batch=batch, steps=steps, lr=lr))
        return str(path)
    return write


def kerascnn_cmd(*args):
    return [sys.executable, "-m", "kerascnn.cli", *args]


def run_cli(args, cwd, env=None, timeout=240):
    full_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **(env or {}))
    return subprocess.run(kerascnn_cmd(*args), cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture
def cli():
    """``cli(args, cwd, env=None)`` runs ``python -m kerascnn.cli`` in a subprocess."""
    return run_cli
