"""Distribution: MirroredStrategy over two logical CPUs matches one device, and its
one-pass epochs count only real batches; two local worker processes (TF_CONFIG) train
together with MultiWorkerMirroredStrategy.

The recipe runs train AlexNet's Figure 1 net (jaxrun_recipe.py) at width 8: the strategy
is what is tested, and tf.function tracing grows with the number of layers. The two
logical CPUs are set before TensorFlow's first op, so they need a process of their own:
ONE process runs every MirroredStrategy check (the Keras fit of one device against the
mirrored one, the fit driver's run, the one-pass run) and prints a JSON the tests
read. It and the two workers are children forked by one process that imported
TensorFlow and kerascnn once and ran no op (``tinyrun.ForkServer``)."""

import json
import os
import socket

import pytest
from jaxrun_recipe import shallow, shallow_file
from tinyrun import TINY, ForkServer, make_folder

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

# one-pass epochs (steps_per_epoch = 0) under the same strategy
import csv, os
train(load_recipe(sys.argv[3]), output_dir=sys.argv[4], strategy=strategy, export=False,
      verbose=0)
with open(os.path.join(sys.argv[4], "history.csv"), newline="") as f:
    rows = list(csv.DictReader(f))
print(json.dumps({"replicas": strategy.num_replicas_in_sync, "h1": h1, "h2": h2,
                  "weight_diff": diff, "test": result.test_metrics, "one_pass": rows}))
"""


@pytest.fixture(scope="module")
def server():
    """The process the MIRRORED process and the workers are forked from."""
    forks = ForkServer(env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    yield forks
    forks.close()


@pytest.fixture(scope="module")
def mirrored(tmp_path_factory, server):
    """The MIRRORED process: ``(its JSON, its stdout)``."""
    root = tmp_path_factory.mktemp("mirrored")
    # the fit driver: AlexNet's Figure 1 net at width 8, 2 steps of 4 images per replica
    folder = make_folder(str(root / "data"))
    driver = root / "driver.toml"
    driver.write_text(shallow(TINY.format(source=folder, epochs=1, batch=4, steps=2,
                                          lr=0.05)))
    # one-pass epochs: 24 training images, 4 per replica
    one_pass_folder = make_folder(str(root / "one_pass_data"), per_class_train=8,
                                  per_class_test=2)
    one_pass = root / "one_pass.toml"
    one_pass.write_text(TINY.format(source=one_pass_folder, lr=0.05, epochs=2, steps=0,
                                    batch=4))
    script = root / "mirrored.py"
    script.write_text(MIRRORED)
    out, err = root / "stdout.txt", root / "stderr.txt"
    pid = server.start([driver, root / "run", one_pass, root / "one_pass_run"], root, out,
                       err=err, script=script)
    code = server.wait(pid, timeout=600)
    stdout = out.read_text()
    assert code == 0, stdout[-2000:] + err.read_text()[-4000:]
    return json.loads(stdout.strip().splitlines()[-1]), stdout


def test_mirrored_two_logical_cpus_matches_one_device(mirrored):
    out, stdout = mirrored
    assert out["replicas"] == 2
    for key in ("loss", "top1_error", "top5_error", "val_loss", "val_top1_error"):
        assert out["h1"][key] == pytest.approx(out["h2"][key], rel=1e-4, abs=1e-4), key
    assert out["weight_diff"] < 1e-5
    assert "global batch 8 = 4 x 2" in stdout
    assert out["test"]["num_examples"] == 18


def test_distributed_one_pass_epochs_count_only_real_batches(mirrored):
    """One-pass epochs (test_real_examples.py) under MirroredStrategy (two logical
    CPUs): tf.distribute reports the per-replica batches as the steps, so distributed
    the passes repeat and fit is given the steps of one pass. (Each replica's batch is
    augmented with its own seeds, so the numbers are not the single device's.)"""
    out, _ = mirrored
    rows = out["one_pass"]
    assert out["replicas"] == 2 and len(rows) == 2
    for row in rows:
        assert float(row["top5_error"]) == float(row["val_top5_error"]) == 0.0
        wrong = float(row["top1_error"]) * 24 / 100  # over the 24 training images
        assert wrong == pytest.approx(round(wrong), abs=1e-4)


def _free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_two_workers_with_tf_config(tiny_recipe, tmp_path, server):
    recipe = shallow_file(tiny_recipe(epochs=2, steps=2, batch=4))
    workers = [f"localhost:{_free_port()}", f"localhost:{_free_port()}"]
    pids = []
    for index in range(2):  # two processes, `kerascnn train` each
        env = {"TF_CONFIG": json.dumps(
            {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})}
        cmd = ["train", recipe, "--output-dir", str(tmp_path / f"worker{index}"),
               "--export-dir", str(tmp_path / "sm"), "--verbose", "0"]
        pids.append(server.start(cmd, tmp_path, tmp_path / f"worker{index}.log", env=env))
    codes = [server.wait(pid, timeout=300) for pid in pids]
    outputs = [(tmp_path / f"worker{index}.log").read_text() for index in range(2)]
    for code, out in zip(codes, outputs):
        assert code == 0, out[-4000:]
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
