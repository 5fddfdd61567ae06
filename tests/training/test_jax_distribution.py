"""Data parallelism under KERAS_BACKEND=jax with Keras' own
``keras.distribution.DataParallel`` (kerascnn.training.strategy), on two host devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=2``) and two local processes.

- one training step (L2SGD, batch norm, the top-k metrics) on 2 devices leaves the
  weights of one step on 1 device with the same global batch (float tolerance), and
  an evaluation whose last batch the devices cannot split gives the same metrics;
  an AuxiliaryLossModel's (GoogLeNet's auxiliary heads) step on 2 devices reports
  main + 0.3 * (aux1 + aux2), computed here;
- ``kerascnn --backend jax train --strategy mirrored`` on 2 devices says
  "2 replica(s)", is SIGKILLed when epoch 1's backup commits, resumes at epoch 2 and
  exports; a TensorFlow-only process serves the export with the checkpoint's
  probabilities; ``evaluate --strategy mirrored`` on the 2 devices agrees with them;
- ``--strategy multi_worker``: two processes on 127.0.0.1 (KERAS_DISTRIBUTION_*),
  one device each, end with the same weights and test metrics; process 0 exports;
- what cannot work is refused in one line before any data is read.

Every JAX process is a subprocess (a process picks its backend and its devices once);
the pytest worker (TensorFlow) serves the export. The runs train AlexNet's Figure 1
net (``alexnet_fig1``, four layers with weights): the distribution is what is tested,
and XLA's compile time grows with the number of layers; batch normalisation on two
devices is in the one-step check. The processes on the two devices that run one after
the other (the killed run, its resume, the one-step process that also evaluates the
run's checkpoint) share JAX's persistent compilation cache
(jaxrun_recipe.compile_cache_env): a process loads what an earlier one compiled.
"""

import json
import os
import socket
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from jaxrun_recipe import SHALLOW_LAYERS, compile_cache_env, shallow
from tinyrun import COLOURS, TINY, kill_when, make_folder

pytestmark = pytest.mark.jax
pytest.importorskip("jax")

TIMEOUT = 600
BASE_ENV = {k: v for k, v in os.environ.items()
            if k not in ("KERAS_BACKEND", "TF_CONFIG", "XLA_FLAGS")
            and not k.startswith("KERAS_DISTRIBUTION_")}
BASE_ENV.update(TF_CPP_MIN_LOG_LEVEL="2", JAX_PLATFORMS="cpu")
TWO_DEVICES = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}


def _env(backend="jax", **extra):
    return dict(BASE_ENV, **extra, **({"KERAS_BACKEND": backend} if backend else {}))


def _cli(*args):
    return [sys.executable, "-m", "kerascnn.cli", *args]


def _run(cmd, cwd, env, ok=True):
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT)
    assert proc.returncode == 0 or not ok, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _weights(keras_file):
    """The arrays of a .keras file (its model.weights.h5), read with h5py: no Keras."""
    import h5py

    out = {}
    with zipfile.ZipFile(keras_file) as z, z.open("model.weights.h5") as f:
        with h5py.File(f, "r") as h5:
            h5.visititems(lambda name, obj: out.__setitem__(name, np.asarray(obj))
                          if isinstance(obj, h5py.Dataset) else None)
    return out


# -- one step on 2 devices == one step on 1 device ------------------------------------
STEP = """
import json
import numpy as np, keras, tensorflow as tf
assert keras.backend.backend() == "jax"
import jax
assert jax.local_device_count() == 2
from kerascnn.training.metrics import default_metrics
from kerascnn.training.optimizers import L2SGD
from kerascnn.training.strategy import evaluation_callbacks, select_strategy

rng = np.random.default_rng(0)
x = rng.normal(size=(8, 12, 12, 3)).astype("float32")
y = rng.integers(0, 5, 8)
xv = rng.normal(size=(7, 12, 12, 3)).astype("float32")  # 7 = 4 + 3: the last batch
yv = rng.integers(0, 5, 7)                               # cannot be split over 2

def build():
    keras.utils.set_random_seed(0)
    inp = keras.Input((12, 12, 3))
    h = keras.layers.Conv2D(6, 3, use_bias=False)(inp)
    h = keras.layers.BatchNormalization()(h)
    h = keras.layers.ReLU()(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    model = keras.Model(inp, keras.layers.Dense(5, activation="softmax")(h))
    model.compile(L2SGD(0.1, momentum=0.9, l2=1e-3), "sparse_categorical_crossentropy",
                  metrics=default_metrics())
    return model

def data(ctx=None):
    batch = ctx.get_per_replica_batch_size(8) if ctx else 8
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)

val = tf.data.Dataset.from_tensor_slices((xv, yv)).batch(4)
one = build()
init = [w.tolist() for w in one.get_weights()]
h1 = one.fit(data(), epochs=1, verbose=0).history
e1 = one.evaluate(val, verbose=0, return_dict=True)
strategy = select_strategy("mirrored")
with strategy.scope():
    two = build()
h2 = two.fit(strategy.distribute_datasets_from_function(data), epochs=1, verbose=0).history
e2 = two.evaluate(val, verbose=0, return_dict=True, callbacks=evaluation_callbacks())
kernel = two.trainable_variables[0].value
out = {"replicas": strategy.num_replicas_in_sync, "type": type(strategy).__name__,
       "distribution": type(keras.distribution.distribution()).__mro__[1].__name__,
       "kernel_devices": len(kernel.sharding.device_set),
       "init": init, "h1": h1, "h2": h2, "e1": e1, "e2": e2,
       "one": [w.tolist() for w in one.get_weights()],
       "two": [w.tolist() for w in two.get_weights()]}

# an AuxiliaryLossModel (GoogLeNet's auxiliary heads: kerascnn.layers.auxiliary),
# one step on the two devices; a small graph: what is checked is the loss of the
# heads split over the devices, not GoogLeNet's layers (its builder under JAX:
# test_jax_backend.py)
from kerascnn.layers import AuxiliaryLossModel
with strategy.scope():
    keras.utils.set_random_seed(0)
    inp = keras.Input((12, 12, 3))
    h = keras.layers.Conv2D(8, 3, activation="relu", name="conv")(inp)
    h = keras.layers.GlobalAveragePooling2D(name="gap")(h)
    heads = [keras.layers.Dense(4, activation="softmax", name=n)(h) for n in ("main", "aux1")]
    heads.append(keras.layers.Dense(4, activation="softmax", name="aux2")(
        keras.layers.Flatten(name="flat")(inp)))
    g = AuxiliaryLossModel(inp, heads[0], heads[1:], aux_loss_weight=0.3, name="aux")
    g.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
gx = np.random.default_rng(1).uniform(-2, 2, (4, 12, 12, 3)).astype("float32")
gy = np.array([0, 1, 2, 3], "int32")
heads = [np.asarray(keras.ops.convert_to_numpy(t), np.float64)
         for t in g.with_aux_outputs().predict(gx, batch_size=4, verbose=0)]  # compiled
loss = g.fit(gx, gy, batch_size=4, epochs=1, verbose=0, shuffle=False).history["loss"][0]
out.update(heads=[h.tolist() for h in heads], aux_loss=loss)

# `kerascnn --backend jax evaluate --strategy mirrored` (its entry point, kerascnn.cli.main)
# on the two devices, of the mirrored run's checkpoint (batches 4, 4, 1), after the
# checks above (it sets the distribution of this process)
import sys
from kerascnn.cli import main
keras.backend.clear_session()
out["evaluate_rc"] = main(["--backend", "jax", "evaluate", "--strategy", "mirrored", *sys.argv[1:]])
json.dump(out, open("step.json", "w"))
"""


@pytest.fixture(scope="module")
def step(tmp_path_factory, mirrored_run):
    """One process on the two devices: the step checks, then the evaluation of the
    mirrored run (below) with `evaluate --strategy mirrored`."""
    root = tmp_path_factory.mktemp("step")
    path = root / "script.py"
    path.write_text(STEP)
    _run([sys.executable, str(path), "--model",
          os.path.join(mirrored_run["run"], "checkpoints", "last.keras"), "--source",
          mirrored_run["folder"], "--split", "test", "--protocol", "center",
          "--batch-size", "4", "--out", mirrored_run["report"], "--quiet"],
         str(root), _env(**TWO_DEVICES, **mirrored_run["cache"]))
    return json.load(open(root / "step.json"))


def test_one_step_on_two_devices_equals_one_device(step):
    assert step["replicas"] == 2 and step["type"] == "JaxDataParallel"
    assert step["distribution"] == "DataParallel"  # Keras' keras.distribution.DataParallel
    assert step["kernel_devices"] == 2  # the variables live on both devices
    one, two = step["one"], step["two"]
    assert len(one) == len(two) == 7  # conv, BN (4), dense (2)
    moved = max(float(np.abs(np.asarray(a) - np.asarray(b)).max())
                for a, b in zip(one, step["init"]))
    assert moved > 1e-3  # the step changed the weights
    for a, b in zip(one, two):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-6)
    for key in ("loss", "top1_error", "top5_error"):
        assert step["h2"][key][0] == pytest.approx(step["h1"][key][0], rel=1e-5, abs=1e-5)
    # the 7-example evaluation (batches 4 + 3) on two devices: same metrics
    for key in ("loss", "top1_error", "top5_error"):
        assert step["e2"][key] == pytest.approx(step["e1"][key], rel=1e-5, abs=1e-5), key


def test_aux_loss_on_two_devices(step):
    y = np.array([0, 1, 2, 3])
    main, aux1, aux2 = (np.asarray(h) for h in step["heads"])
    ce = lambda p: float(np.mean(-np.log(p[np.arange(4), y])))  # noqa: E731
    want = ce(main) + 0.3 * (ce(aux1) + ce(aux2))
    assert abs(want - ce(main)) > 0.1  # the auxiliary terms matter
    assert step["aux_loss"] == pytest.approx(want, rel=1e-4)


# -- kerascnn --backend jax train --strategy mirrored: kill, resume, export -----------
def _recipe(root, epochs=2):
    folder = make_folder(str(root / "data"), per_class_train=8, per_class_test=3)
    path = root / "tiny.toml"
    path.write_text(shallow(TINY.format(source=folder, lr=0.05, epochs=epochs, steps=2,
                                        batch=4)))
    return folder, str(path)


@pytest.fixture(scope="module")
def mirrored_run(tmp_path_factory):
    """A 2-device run killed when epoch 1's backup commits, then resumed to the end."""
    root = tmp_path_factory.mktemp("mirrored")
    folder, recipe = _recipe(root)
    run, export_dir = str(root / "run"), str(root / "sm")
    cache = compile_cache_env(root / "jax-cache")
    cmd = _cli("--backend", "jax", "train", recipe, "--strategy", "mirrored",
               "--output-dir", run, "--export-dir", export_dir, "--verbose", "2")
    marker = os.path.join(run, "backup", "training_metadata.json")
    returncode, first = kill_when(cmd, root, _env(None, **TWO_DEVICES, **cache), marker,
                                  root / "killed.log", TIMEOUT)
    assert os.path.exists(marker), first[-3000:]
    assert returncode == -9, first[-3000:]
    assert not os.path.exists(os.path.join(run, "trained.json"))
    second = _run(cmd, str(root), _env(None, **TWO_DEVICES, **cache))
    return dict(root=str(root), cache=cache, folder=folder, run=run, export_dir=export_dir, first=first,
                second=second.stdout + second.stderr, report=str(root / "report"))


def test_mirrored_cli_run_resumes_and_exports(mirrored_run, step):
    run = mirrored_run["run"]
    for log in (mirrored_run["first"], mirrored_run["second"]):
        assert "strategy JaxDataParallel with 2 replica(s): global batch 8 = 4 x 2" in log
    assert f"resuming tiny in {run} at the train stage" in mirrored_run["second"]
    epochs = [l for l in mirrored_run["second"].splitlines() if l.startswith("Epoch ")]
    assert epochs and epochs[0].startswith("Epoch 2/2"), epochs
    with open(os.path.join(run, "history.csv")) as f:
        assert [line.split(",")[0] for line in f.read().splitlines()[1:]] == ["0", "1"]
    metrics = json.load(open(os.path.join(run, "test_metrics.json")))
    assert metrics["num_examples"] == 9 and 0.0 <= metrics["top1_error"] <= 100.0
    assert json.load(open(os.path.join(run, "completed.json")))["export"]
    # TensorFlow (this process) serves the export: the checkpoint's probabilities
    import keras
    import tensorflow as tf

    from kerascnn.data.decode import decode_image
    from kerascnn.data.preprocessing import Preprocessing
    from kerascnn.evaluation.loading import load_keras_model

    assert keras.backend.backend() == "tensorflow"
    files = sorted(os.path.join(dp, n) for dp, _, ns in
                   os.walk(os.path.join(mirrored_run["folder"], "test")) for n in ns)
    loaded = tf.saved_model.load(os.path.join(mirrored_run["export_dir"], "tiny", "1"))
    out = loaded.signatures["serving_default"](
        image_bytes=tf.constant([open(p, "rb").read() for p in files]))
    model = load_keras_model(os.path.join(run, "checkpoints", "last.keras"))
    prep, _ = Preprocessing.load(run)
    x = np.stack([prep(decode_image(tf.io.read_file(p), channels=3)).numpy() for p in files])
    served, probs = out["probabilities"].numpy(), np.asarray(model.predict(x, verbose=0))
    assert served.shape == (9, 3)
    assert np.abs(served - probs).max() <= 1e-4
    # `evaluate --strategy mirrored` on the 2 devices (batches 4, 4, 1; run in the
    # `step` process): the top-1 error of the served probabilities
    assert step["evaluate_rc"] == 0
    (center,) = json.load(open(mirrored_run["report"] + ".json"))["results"]
    labels = [sorted(COLOURS).index(os.path.basename(os.path.dirname(f))) for f in files]
    assert center["examples"] == 9
    assert center["top1"] == pytest.approx(100 * np.mean(served.argmax(-1) != labels), abs=1e-3)


# -- two processes on 127.0.0.1 --------------------------------------------------------
def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_multi_worker_two_local_processes_end_with_the_same_weights(tmp_path):
    _, recipe = _recipe(tmp_path, epochs=1)
    address = f"127.0.0.1:{_free_port()}"
    procs = []
    for index in range(2):
        env = _env(None, KERAS_DISTRIBUTION_JOB_ADDRESSES=address,
                   KERAS_DISTRIBUTION_NUM_PROCESSES="2",
                   KERAS_DISTRIBUTION_PROCESS_ID=str(index))
        cmd = _cli("--backend", "jax", "train", recipe, "--strategy", "multi_worker",
                   "--output-dir", str(tmp_path / f"worker{index}"),
                   "--export-dir", str(tmp_path / "sm"), "--verbose", "0")
        procs.append(subprocess.Popen(cmd, cwd=str(tmp_path), env=env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    outputs = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=TIMEOUT)[0])
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=60)
    for proc, out in zip(procs, outputs):
        assert proc.returncode == 0, out[-4000:]
        assert "strategy JaxDataParallel with 2 replica(s): global batch 8 = 4 x 2" in out
    ckpts = [_weights(str(tmp_path / f"worker{i}" / "checkpoints" / "last.keras"))
             for i in range(2)]
    assert ckpts[0].keys() == ckpts[1].keys()
    # every weight of the net (a kernel and a bias per layer) and the optimizer's state
    names = list(ckpts[0])
    assert sum(k.startswith("layers/") for k in names) == 2 * len(SHALLOW_LAYERS), names
    assert sum(k.startswith("optimizer/") for k in names) > 2 * len(SHALLOW_LAYERS), names
    for name, value in ckpts[0].items():
        np.testing.assert_array_equal(ckpts[1][name], value, err_msg=name)
    metrics = [json.load(open(tmp_path / f"worker{i}" / "test_metrics.json")) for i in range(2)]
    assert metrics[0] == metrics[1]
    assert sorted(os.listdir(tmp_path / "sm" / "tiny")) == ["1"]  # process 0 exports


# -- one-line refusals, before any data is read ----------------------------------------
def _refused(cmd, cwd, env):
    proc = _run(cmd, cwd, env, ok=False)
    assert proc.returncode != 0, proc.stdout + proc.stderr
    lines = [l for l in (proc.stdout + proc.stderr).splitlines() if l.startswith("kerascnn ")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    return lines[0]


def test_refusals(tmp_path):
    _, recipe = _recipe(tmp_path)
    train = _cli("--backend", "jax", "train", recipe, "--output-dir", str(tmp_path / "run"))
    line = _refused(train + ["--strategy", "multi_worker"], tmp_path, _env(None))
    assert "KERAS_DISTRIBUTION_JOB_ADDRESSES" in line and "not set" in line, line
    bad_id = _env(None, KERAS_DISTRIBUTION_JOB_ADDRESSES="127.0.0.1:1",
                  KERAS_DISTRIBUTION_NUM_PROCESSES="2", KERAS_DISTRIBUTION_PROCESS_ID="2")
    line = _refused(train + ["--strategy", "multi_worker"], tmp_path, bad_id)
    assert "KERAS_DISTRIBUTION_PROCESS_ID" in line and "'2'" in line, line
    tf_config = _env(None, TF_CONFIG=json.dumps({"cluster": {"worker": ["a:1", "b:2"]},
                                                 "task": {"type": "worker", "index": 0}}))
    line = _refused(train, tmp_path, tf_config)
    assert "TF_CONFIG" in line and "KERAS_DISTRIBUTION_NUM_PROCESSES" in line, line
    assert not os.path.exists(tmp_path / "run")
    # reproduce's --batch-size is the global batch: 2 devices cannot split 3
    out = tmp_path / "study"
    line = _refused(_cli("--backend", "jax", "reproduce", "degradation", "--strategy",
                         "mirrored", "--batch-size", "3", "--output-dir", str(out)),
                    tmp_path, _env(None, **TWO_DEVICES))
    assert "--batch-size 3" in line and "2 devices" in line, line
    assert os.listdir(out) == []  # nothing read, nothing written
