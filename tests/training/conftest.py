"""A tiny image-folder dataset of real PNG files and a tiny recipe over it."""

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

COLOURS = {"red": (200, 40, 40), "green": (40, 200, 40), "blue": (40, 40, 200)}


def make_folder(root, per_class_train=16, per_class_test=6, size=16, seed=0):
    rng = np.random.default_rng(seed)
    for split, n in (("train", per_class_train), ("test", per_class_test)):
        for name, colour in COLOURS.items():
            folder = os.path.join(root, split, name)
            os.makedirs(folder, exist_ok=True)
            for i in range(n):
                noise = rng.integers(-40, 40, (size, size, 3))
                img = np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)
                Image.fromarray(img).save(os.path.join(folder, f"{i}.png"))
    return root


TINY = """
name = "tiny"
departures = "a test recipe"
[model]
name = "resnet20"
options = {{ shortcut = "A" }}
[data]
source = "{source}"
train_split = "train"
validation_split = "test"
test_split = "test"
policy = "cifar"
image_size = 16
mean = "rgb"
pca = "none"
[optimizer]
learning_rate = {lr}
weight_decay = 1e-4
[schedule]
name = "plateau"
patience = 1
[training]
epochs = {epochs}
batch_size = {batch}
steps_per_epoch = {steps}
seed = 0
jit_compile = "false"
"""


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
