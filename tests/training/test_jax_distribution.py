"""Issue 20: data parallelism under KERAS_BACKEND=jax with Keras' own
``keras.distribution.DataParallel`` (kerascnn.training.strategy), on two host devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=2``) and two local processes.

- one training step (L2SGD, batch norm, the top-k metrics) on 2 devices leaves the
  weights of one step on 1 device with the same global batch (float tolerance), and
  an evaluation whose last batch the devices cannot split gives the same metrics;
  GoogLeNet's step on 2 devices reports main + 0.3 * (aux1 + aux2), computed here;
- ``kerascnn --backend jax train --strategy mirrored`` on 2 devices says
  "2 replica(s)", is SIGKILLed when epoch 1's backup commits, resumes at epoch 2 and
  exports; a TensorFlow-only process serves the export with the checkpoint's
  probabilities;
- ``--strategy multi_worker``: two processes on 127.0.0.1 (KERAS_DISTRIBUTION_*),
  one device each, end with the same weights, each reading half of the data;
- what cannot work is refused in one line before any data is read.

Every Keras process is a subprocess (a process picks its backend and its devices once).
"""

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import zipfile

import numpy as np
import pytest

from tinyrun import TINY, make_folder

pytestmark = pytest.mark.jax
pytest.importorskip("jax")

TIMEOUT = 600
BASE_ENV = {k: v for k, v in os.environ.items()
            if k not in ("KERAS_BACKEND", "TF_CONFIG", "XLA_FLAGS")
            and not k.startswith("KERAS_DISTRIBUTION_")}
BASE_ENV.update(TF_CPP_MIN_LOG_LEVEL="2", JAX_PLATFORMS="cpu")
TWO_DEVICES = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}


def _env(backend="jax", **extra):
    env = dict(BASE_ENV, **extra)
    if backend:
        env["KERAS_BACKEND"] = backend
    return env


def _cli(*args):
    return [sys.executable, "-m", "kerascnn.cli", *args]


def _run(cmd, cwd, env, ok=True):
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT)
    if ok:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _python(code, cwd, env):
    path = os.path.join(cwd, f"script_{time.monotonic_ns()}.py")
    with open(path, "w") as f:
        f.write(textwrap.dedent(code))
    return _run([sys.executable, path], cwd, env)


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

# GoogLeNet with its auxiliary heads, one step on the two devices
from kerascnn import applications as apps
with strategy.scope():
    g = apps.GoogLeNet(aux_logits=True, input_shape=(65, 65, 3), classes=4, dropout=0.0,
                       aux_dropout=0.0)
    g.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
gx = np.random.default_rng(1).uniform(-2, 2, (4, 65, 65, 3)).astype("float32")
gy = np.array([0, 1, 2, 3], "int32")
heads = [np.asarray(keras.ops.convert_to_numpy(t), np.float64)
         for t in g.with_aux_outputs()(gx, training=False)]
loss = g.fit(gx, gy, batch_size=4, epochs=1, verbose=0, shuffle=False).history["loss"][0]
out.update(heads=[h.tolist() for h in heads], aux_loss=loss)
json.dump(out, open("step.json", "w"))
"""


@pytest.fixture(scope="module")
def step(tmp_path_factory):
    root = tmp_path_factory.mktemp("step")
    _python(STEP, str(root), _env(**TWO_DEVICES))
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


def test_googlenet_aux_loss_on_two_devices(step):
    y = np.array([0, 1, 2, 3])
    main, aux1, aux2 = (np.asarray(h) for h in step["heads"])
    ce = lambda p: float(np.mean(-np.log(p[np.arange(4), y])))  # noqa: E731
    want = ce(main) + 0.3 * (ce(aux1) + ce(aux2))
    assert abs(want - ce(main)) > 0.1  # the auxiliary terms matter
    assert step["aux_loss"] == pytest.approx(want, rel=1e-4)
