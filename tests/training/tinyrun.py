"""A tiny image-folder dataset of real PNG files and a tiny recipe over it (shared by
the training tests; conftest.py turns them into fixtures)."""

import os

import numpy as np
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


# The network is not what these runs test (the driver is): AlexNet's four-layer
# Figure 1 net (kerascnn.applications.AlexNetFig1: 3 convolutions, 1 dense layer, no
# batch norm), whose train step traces several times faster than ResNet-20's ~65 layers.
TINY = """
name = "tiny"
departures = "a test recipe"
[model]
name = "alexnet_fig1"
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


def kill_when(cmd, cwd, env, marker, log_path, timeout):
    """Runs ``cmd`` until the file ``marker`` appears (or it ends, or ``timeout`` s
    pass), then SIGKILLs it: ``(returncode, what it printed)``."""
    import subprocess
    import time

    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while not os.path.exists(marker) and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        proc.kill()
        proc.wait(timeout=60)
    with open(log_path) as log:
        return proc.returncode, log.read()
