"""Train, resume, evaluate and export under KERAS_BACKEND=jax (TensorFlow
installed beside it: tf.data feeds JAX, the SavedModel is written by TensorFlow).

Every Keras process here but the pytest worker (TensorFlow, which serves the export)
is a subprocess with its backend set (a process picks its backend once). The recipe
is the tiny one of the training tests with the default recipe's machinery:
mixed_bfloat16, L2SGD (weight decay), the top-k metrics, the callbacks and the atomic
backup. Its network is ResNet-20 (jaxrun_recipe.RESNET20_NET), not tinyrun's: with the shallower ``alexnet_fig1`` (a
flatten head, no average pool) the 4 steps give confident outputs whose bfloat16
rounding differs between XLA and TensorFlow by more than the 1e-4 the served
probabilities are held to (4.7e-4 measured).

- ``kerascnn --backend jax train`` (no KERAS_BACKEND) is SIGKILLed when epoch 1's
  backup commits, then the same command (``kerascnn.cli.main``, what ``python -m
  kerascnn.cli`` runs, in a second JAX process) resumes at epoch 2, evaluates and
  exports;
- the JAX model's probabilities on test images (computed in a JAX process with the
  run's Preprocessing) equal what TensorFlow (this process) gets from the SavedModel
  the JAX run exported (max abs difference <= 1e-4), and that export has the
  signatures, outputs and metadata of a TensorFlow export;
- ``kerascnn --backend jax`` runs a command with the JAX backend, and refuses
  ``--strategy multi_worker`` without its environment variables in one line
  (the distribution itself: test_jax_distribution.py).

The second JAX process runs every check after the kill (the resume, evaluate,
predict, the flag) and writes what each gave to a JSON file that the tests read: JAX
and TensorFlow are imported once. The two JAX processes share JAX's persistent
compilation cache (jaxrun_recipe.compile_cache_env): the resumed run loads the
executables the killed one compiled (ResNet-20's initialisers and train step) instead
of compiling them again. (GoogLeNet's auxiliary loss under JAX, which this file
checked in its JAX process, is checked in test_zoo_jax.py's, where GoogLeNet's layers
are compiled anyway.)
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from jaxrun_recipe import RESNET20_NET, compile_cache_env, with_network
from tinyrun import TINY, kill_when, make_folder

pytestmark = pytest.mark.jax
pytest.importorskip("jax")

TIMEOUT = 600
RECIPE = dict(epochs=2, steps=2, batch=4)
BASE_ENV = {k: v for k, v in os.environ.items()
            if k not in ("KERAS_BACKEND", "TF_CONFIG") and not k.startswith("KERAS_DISTRIBUTION_")}
BASE_ENV.update(TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")


def _cli(*args):
    return [sys.executable, "-m", "kerascnn.cli", *args]


def _recipe_text(folder):
    """tinyrun's recipe with mixed_bfloat16 and XLA."""
    return with_network(TINY.format(source=folder, lr=0.05, **RECIPE), RESNET20_NET).replace(
        'jit_compile = "false"', 'jit_compile = "auto"\nprecision = "mixed_bfloat16"')


# What runs in the second JAX process (started without KERAS_BACKEND), in order; each
# check's result goes into checks.json under its own key. Printed markers split its
# output: the resumed training's lines are between "=== resume" and "=== resumed".
JAX_CHECKS = """
import contextlib, io, json, os, sys
from kerascnn.cli import main
plan = json.load(open("plan.json"))
run, folder, model_path = plan["run"], plan["folder"], plan["model"]
out = {}

# the flag: `kerascnn --backend jax models` in a process without KERAS_BACKEND
printed = io.StringIO()
with contextlib.redirect_stdout(printed):
    out["models_rc"] = main(["--backend", "jax", "models"])
out["models_stdout"] = printed.getvalue()
import keras
out["backend"] = keras.backend.backend()

# --strategy multi_worker without its environment variables: one line, exit status 2
err = io.StringIO()
with contextlib.redirect_stderr(err):
    try:
        out["refused_rc"] = main(["--backend", "jax", "train", "--strategy", "multi_worker"])
    except SystemExit as e:
        out["refused_rc"] = e.code
out["refused_stderr"] = err.getvalue()

# the killed run, resumed by the same command
print("=== resume", flush=True)
out["resume_rc"] = main(["--backend", "jax", *plan["train"]])
print("=== resumed", flush=True)
keras.mixed_precision.set_global_policy("float32")
keras.backend.clear_session()

import numpy as np, tensorflow as tf
from kerascnn.data.decode import decode_image
from kerascnn.data.preprocessing import Preprocessing
from kerascnn.evaluation.loading import load_keras_model

# the JAX model's probabilities with the run's Preprocessing
model = load_keras_model(model_path)
prep, names = Preprocessing.load(run)
x = np.stack([prep(decode_image(tf.io.read_file(p), channels=3)).numpy() for p in plan["files"]])
np.save("jax_probs.npy", np.asarray(model.predict(x, verbose=0), np.float32))
keras.backend.clear_session()

# evaluate and predict through the command line, and the error computed here
out["evaluate_rc"] = main(["--backend", "jax", "evaluate", "--model", model_path, "--source",
                           folder, "--split", "test", "--protocol", "center", "--out",
                           plan["report"], "--quiet"])
keras.backend.clear_session()
model = load_keras_model(model_path)
prep, names = Preprocessing.load(run)
wrong = total = 0
test = os.path.join(folder, "test")
for label, cls in enumerate(sorted(os.listdir(test))):
    for n in sorted(os.listdir(os.path.join(test, cls))):
        img = decode_image(tf.io.read_file(os.path.join(test, cls, n)), channels=3)
        p = model.predict(prep(img)[None].numpy(), verbose=0)[0]
        wrong += int(np.argmax(p) != label); total += 1
out["own_top1_error"] = 100.0 * wrong / total
keras.backend.clear_session()
printed = io.StringIO()
with contextlib.redirect_stdout(printed):
    out["predict_rc"] = main(["--backend", "jax", "predict", "--model", model_path, "-k", "2",
                              os.path.join(folder, "test", "red", "0.png")])
out["predict_stdout"] = printed.getvalue()
json.dump(out, open("checks.json", "w"))
"""


@pytest.fixture(scope="module")
def jax_run(tmp_path_factory):
    """A JAX run killed after epoch 1's backup, then resumed to the end in the JAX
    process of the other checks (JAX_CHECKS)."""
    root = tmp_path_factory.mktemp("jaxrun")
    folder = make_folder(str(root / "data"), per_class_train=8, per_class_test=4)
    recipe = root / "tiny.toml"
    recipe.write_text(_recipe_text(folder))
    run, export_dir = str(root / "run"), str(root / "sm")
    env = dict(BASE_ENV, **compile_cache_env(root / "jax-cache"))
    train = ["train", str(recipe), "--output-dir", run, "--export-dir", export_dir,
             "--verbose", "2"]
    # First attempt: `kerascnn --backend jax train`, killed when epoch 1's backup commits.
    marker = os.path.join(run, "backup", "training_metadata.json")
    returncode, first_log = kill_when(_cli("--backend", "jax", *train), root, env,
                                      marker, root / "killed.log", TIMEOUT)
    assert os.path.exists(marker), first_log[-3000:]
    assert returncode == -9, first_log[-3000:]
    assert json.load(open(marker))["epoch"] == 1
    assert not os.path.exists(os.path.join(run, "trained.json"))
    # Second: the same command resumes, then the other checks, in one JAX process.
    files = sorted(os.path.join(dp, n) for dp, _, ns in os.walk(os.path.join(folder, "test"))
                   for n in ns)[::3]
    plan = dict(run=run, folder=folder, files=files, train=train,
                model=os.path.join(run, "checkpoints", "last.keras"),
                report=os.path.join(root, "report"))
    with open(root / "plan.json", "w") as f:
        json.dump(plan, f)
    (root / "checks.py").write_text(JAX_CHECKS)
    proc = subprocess.run([sys.executable, "checks.py"], cwd=root, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=3 * TIMEOUT)
    assert proc.returncode == 0, proc.stdout[-6000:]
    second = proc.stdout.split("=== resume\n", 1)[-1].split("=== resumed\n", 1)[0]
    return dict(plan, root=str(root), export_dir=export_dir, first=first_log,
                second=second, **json.load(open(root / "checks.json")))


def test_jax_run_resumes_after_kill_and_finishes(jax_run):
    run = jax_run["run"]
    assert "under jax every step is XLA-compiled" in jax_run["first"]
    assert jax_run["resume_rc"] == 0, jax_run["second"][-3000:]
    assert f"resuming tiny in {run} at the train stage" in jax_run["second"]
    epochs = [l for l in jax_run["second"].splitlines() if l.startswith("Epoch ")]
    assert epochs and epochs[0].startswith(f"Epoch 2/{RECIPE['epochs']}"), epochs
    with open(os.path.join(run, "history.csv")) as f:
        rows = [line.split(",")[0] for line in f.read().splitlines()[1:]]
    assert rows == ["0", "1"]
    metrics = json.load(open(os.path.join(run, "test_metrics.json")))
    assert 0.0 <= metrics["top1_error"] <= 100.0 and metrics["top5_error"] == 0.0  # 3 classes
    recipe = json.load(open(os.path.join(run, "recipe.json")))
    assert recipe["training"]["precision"] == "mixed_bfloat16"
    done = json.load(open(os.path.join(run, "completed.json")))
    assert done["export"]
    assert not os.path.exists(os.path.join(run, "backup"))


def test_export_from_jax_serves_the_jax_probabilities_in_tensorflow(jax_run):
    import tensorflow as tf

    files, run = jax_run["files"], jax_run["run"]
    # TensorFlow (this process): serve the JAX run's export with plain tf.saved_model.
    served = tf.saved_model.load(os.path.join(jax_run["export_dir"], "tiny", "1"))
    out = served.signatures["serving_default"](
        image_bytes=tf.constant([open(p, "rb").read() for p in files]))
    tf_probs = out["probabilities"].numpy()
    jax_probs = np.load(os.path.join(jax_run["root"], "jax_probs.npy"))
    assert jax_probs.shape == tf_probs.shape == (len(files), 3)
    np.testing.assert_allclose(jax_probs.sum(-1), 1.0, atol=1e-3)
    assert np.abs(jax_probs - tf_probs).max() <= 1e-4, np.abs(jax_probs - tf_probs).max()
    outputs = ["probabilities", "top5_classes", "top5_names", "top5_probabilities"]
    sigs = {k: sorted(f.structured_outputs) for k, f in served.signatures.items()}
    assert sigs == {"serving_default": outputs, "serving_images": outputs}, sigs
    imgs = served.signatures["serving_images"](
        images=tf.cast(tf.stack([tf.io.decode_png(tf.io.read_file(p)) for p in files]),
                       tf.float32))
    assert sorted(n.decode() for n in imgs["top5_names"].numpy()[0]) == ["blue", "green", "red"]
    # the metadata the run passed (through the JSON of the TensorFlow export child)
    meta = json.load(open(os.path.join(jax_run["export_dir"], "tiny", "1", "assets.extra",
                                       "kerascnn.json")))
    assert meta["class_names"] == ["blue", "green", "red"]
    assert meta["recipe"] == "tiny" and meta["run_path"] == os.path.abspath(run)
    assert meta["test_metrics"] == json.load(open(os.path.join(run, "test_metrics.json")))
    assert os.path.exists(os.path.join(jax_run["export_dir"], "models.config"))


def test_evaluate_and_predict_under_jax(jax_run):
    assert jax_run["evaluate_rc"] == 0
    report = json.load(open(jax_run["report"] + ".json"))
    (center,) = report["results"]
    assert center["protocol"] == "center" and center["examples"] == 12
    # the same error computed from the JAX model's own predictions
    own = jax_run["own_top1_error"]
    assert center["top1"] == pytest.approx(own, abs=1e-4)  # float32 in the report; 1 image = 8.3
    pred = jax_run["predict_stdout"]
    assert jax_run["predict_rc"] == 0
    assert "1. " in pred and "2. " in pred, pred


def test_backend_flag(jax_run):
    # `kerascnn --backend jax models` in a process without KERAS_BACKEND (the CLI's
    # entry point): the list, and Keras on JAX afterwards
    assert jax_run["models_rc"] == 0 and "resnet50" in jax_run["models_stdout"]
    assert jax_run["backend"] == "jax"
    # and `python -m kerascnn.cli --backend jax train` ran under JAX: the killed run
    assert "under jax every step is XLA-compiled" in jax_run["first"]
    refused = jax_run["refused_stderr"]
    assert jax_run["refused_rc"] == 2, refused
    lines = [l for l in refused.splitlines() if l.startswith("kerascnn")]
    assert len(lines) == 1 and "--strategy multi_worker" in lines[0], refused
