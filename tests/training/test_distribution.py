"""Distribution: MirroredStrategy over two logical CPUs matches one device; two
local worker processes (TF_CONFIG) train together with MultiWorkerMirroredStrategy.

The recipe runs train AlexNet's Figure 1 net (jaxrun_recipe.py) instead of the tiny
recipe's ResNet-20: the strategy is what is tested, and tf.function tracing grows with
the number of layers."""

import json
import os
import socket
import subprocess
import sys

import pytest
from jaxrun_recipe import shallow_file

from kerascnn.training.strategy import select_strategy, tf_config_workers

pytestmark = pytest.mark.tf_only  # tf.data / tf.distribute / SavedModel

MIRRORED = r"""
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
import keras
import numpy as np
from kerascnn.training.metrics import default_metrics
from kerascnn.training.optimizers import L2SGD
from kerascnn.training.strategy import select_strategy

rng = np.random.default_rng(0)
x = rng.normal(size=(64, 8, 8, 3)).astype("float32")
y = rng.integers(0, 5, 64)
GLOBAL = 16

def build():
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(4, 3, activation="relu")(inp)
    h = keras.layers.GlobalAveragePooling2D()(h)
    out = keras.layers.Dense(5, activation="softmax")(h)
    model = keras.Model(inp, out)
    model.compile(L2SGD(0.1, momentum=0.9, l2=1e-3), "sparse_categorical_crossentropy",
                  metrics=default_metrics())
    return model

def data(ctx=None):
    batch = ctx.get_per_replica_batch_size(GLOBAL) if ctx else GLOBAL
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)

single = build()
h1 = single.fit(data(), epochs=3, verbose=0, validation_data=data()).history
strategy = select_strategy("mirrored")
with strategy.scope():
    mirrored = build()
h2 = mirrored.fit(strategy.distribute_datasets_from_function(data), epochs=3, verbose=0,
                  validation_data=data()).history
diff = max(float(np.max(np.abs(a - b)))
           for a, b in zip(single.get_weights(), mirrored.get_weights()))

# the fit driver end to end under the same strategy
from kerascnn.training.recipe import load_recipe
from kerascnn.training.trainer import train

result = train(load_recipe(sys.argv[1]), output_dir=sys.argv[2], strategy=strategy,
               export=False, verbose=0)
print(json.dumps({"replicas": strategy.num_replicas_in_sync, "h1": h1, "h2": h2,
                  "weight_diff": diff, "test": result.test_metrics}))
"""


def test_mirrored_two_logical_cpus_matches_one_device(tiny_recipe, tmp_path):
    recipe = shallow_file(tiny_recipe(epochs=1, steps=2, batch=4))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, "-c", MIRRORED, recipe, str(tmp_path / "run")],
                          capture_output=True, text=True, env=env, timeout=300,
                          cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["replicas"] == 2
    for key in ("loss", "top1_error", "top5_error", "val_loss", "val_top1_error"):
        assert out["h1"][key] == pytest.approx(out["h2"][key], rel=1e-4, abs=1e-4), key
    assert out["weight_diff"] < 1e-5
    assert "global batch 8 = 4 x 2" in proc.stdout
    assert out["test"]["num_examples"] == 18


def _free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_two_workers_with_tf_config(tiny_recipe, tmp_path):
    recipe = shallow_file(tiny_recipe(epochs=2, steps=2, batch=4))
    workers = [f"localhost:{_free_port()}", f"localhost:{_free_port()}"]
    procs = []
    for index in range(2):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TF_CONFIG=json.dumps(
            {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}))
        cmd = [sys.executable, "-m", "kerascnn.cli", "train", recipe, "--output-dir",
               str(tmp_path / f"worker{index}"), "--export-dir", str(tmp_path / "sm"),
               "--verbose", "0"]
        procs.append(subprocess.Popen(cmd, cwd=str(tmp_path), env=env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    outputs = []
    for proc in procs:
        try:
            outputs.append(proc.communicate(timeout=300)[0])
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            raise
    for proc, out in zip(procs, outputs):
        assert proc.returncode == 0, out[-4000:]
        assert "with 2 replica(s)" in out
        assert "global batch 8 = 4 x 2" in out
    for index in range(2):
        with open(tmp_path / f"worker{index}" / "history.csv") as f:
            assert len(f.read().splitlines()) == 3  # header + 2 epochs
    # only the chief exports
    assert sorted(os.listdir(tmp_path / "sm" / "tiny")) == ["1"]


def test_strategy_selection(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert tf_config_workers() == 0
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1", "b:2"]},
                                                "task": {"type": "worker", "index": 0}}))
    assert tf_config_workers() == 2
    monkeypatch.setenv("TF_CONFIG", "{bad")
    with pytest.raises(ValueError, match="TF_CONFIG"):
        tf_config_workers()
    monkeypatch.delenv("TF_CONFIG")
    with pytest.raises(ValueError, match="strategy='tpu'"):
        select_strategy("tpu")
    assert select_strategy("auto").num_replicas_in_sync == 1
