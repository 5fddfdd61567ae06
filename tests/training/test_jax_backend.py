"""Train, resume, evaluate and export under KERAS_BACKEND=jax (TensorFlow
installed beside it: tf.data feeds JAX, the SavedModel is written by TensorFlow).

Every Keras process here is a subprocess with its backend set (a process picks its
backend once). The recipe is the tiny one of the training tests with the default
recipe's machinery: mixed_bfloat16, L2SGD (weight decay), the top-k metrics, the
callbacks and the atomic backup.

- a run under JAX is SIGKILLed when epoch 1's backup commits, then the same command
  (``kerascnn --backend jax train``) resumes at epoch 2, evaluates and exports;
- the JAX model's probabilities on test images (computed in a JAX process with the
  run's Preprocessing) equal what a TensorFlow-only process gets from a SavedModel
  exported from JAX (max abs difference <= 1e-4), and the run's export has the
  signatures and outputs of a TensorFlow export;
- GoogLeNet with auxiliary heads: one fit step under JAX reports main + 0.3 * (aux1 +
  aux2), the three losses computed here from ``with_aux_outputs()``;
- ``kerascnn --backend jax`` runs a command with the JAX backend, and refuses
  ``--strategy multi_worker`` without its environment variables in one line
  (the distribution itself: test_jax_distribution.py).
"""

import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from tinyrun import TINY, kill_when, make_folder

pytestmark = pytest.mark.jax
pytest.importorskip("jax")

TIMEOUT = 600
RECIPE = dict(epochs=2, steps=2, batch=4)
BASE_ENV = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
BASE_ENV["TF_CPP_MIN_LOG_LEVEL"] = "2"


def _env(backend=None):
    env = dict(BASE_ENV)
    if backend:
        env["KERAS_BACKEND"] = backend
    return env


def _cli(*args):
    return [sys.executable, "-m", "kerascnn.cli", *args]


def _run(cmd, cwd, backend=None):
    proc = subprocess.run(cmd, cwd=cwd, env=_env(backend), capture_output=True, text=True,
                          timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _python(code, cwd, backend):
    path = os.path.join(cwd, f"script_{backend}_{time.monotonic_ns()}.py")
    with open(path, "w") as f:
        f.write(textwrap.dedent(code))
    return _run([sys.executable, path], cwd, backend)


@pytest.fixture(scope="module")
def jax_run(tmp_path_factory):
    """A JAX run killed after epoch 1's backup, then resumed to the end."""
    root = tmp_path_factory.mktemp("jaxrun")
    folder = make_folder(str(root / "data"), per_class_train=8, per_class_test=4)
    text = TINY.format(source=folder, lr=0.05, **RECIPE).replace(
        'jit_compile = "false"', 'jit_compile = "auto"\nprecision = "mixed_bfloat16"')
    recipe = root / "tiny.toml"
    recipe.write_text(text)
    run, export_dir = str(root / "run"), str(root / "sm")
    cmd = ["train", str(recipe), "--output-dir", run, "--export-dir", export_dir, "--verbose", "2"]
    # First attempt: KERAS_BACKEND=jax, killed when epoch 1's backup is committed.
    marker = os.path.join(run, "backup", "training_metadata.json")
    returncode, first_log = kill_when(_cli(*cmd), root, _env("jax"), marker,
                                      root / "killed.log", TIMEOUT)
    assert os.path.exists(marker), first_log[-3000:]
    assert returncode == -9, first_log[-3000:]
    assert json.load(open(marker))["epoch"] == 1
    assert not os.path.exists(os.path.join(run, "trained.json"))
    # Second: the same command with --backend jax (no KERAS_BACKEND) resumes.
    second = _run(_cli("--backend", "jax", *cmd), str(root))
    return dict(root=str(root), folder=folder, run=run, export_dir=export_dir,
                first=first_log, second=second.stdout + second.stderr)


def test_jax_run_resumes_after_kill_and_finishes(jax_run):
    run = jax_run["run"]
    assert "under jax every step is XLA-compiled" in jax_run["first"]
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


# What the tests below check under JAX, in one JAX process (TensorFlow and JAX are
# imported once): the model's probabilities with the run's Preprocessing and an export
# from JAX; `kerascnn --backend jax evaluate` and `predict` through the command line's
# entry point (kerascnn.cli.main, what `python -m kerascnn.cli` runs) and the top-1
# error computed here from the model's own predictions; GoogLeNet's auxiliary loss.
JAX_CHECKS = """
import contextlib, io, json, os, numpy as np, keras, tensorflow as tf
assert keras.backend.backend() == "jax"
from kerascnn.cli import main
from kerascnn.data.decode import decode_image
from kerascnn.data.preprocessing import Preprocessing
from kerascnn.evaluation.loading import load_keras_model
from kerascnn.export import export_model
plan = json.load(open("plan.json"))
run, folder, model_path = plan["run"], plan["folder"], plan["model"]
out = {}

# the JAX model's probabilities with the run's Preprocessing, and an export from JAX
model = load_keras_model(run + "/checkpoints/last.keras")
prep, names = Preprocessing.load(run)
x = np.stack([prep(decode_image(tf.io.read_file(p), channels=3)).numpy() for p in plan["files"]])
np.save("jax_probs.npy", np.asarray(model.predict(x, verbose=0), np.float32))
export_model(model, "fromjax", base_dir="sm_direct", preprocessing=prep,
             class_names=names, metadata={"note": "jax"})
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
keras.backend.clear_session()

# GoogLeNet with auxiliary heads: one fit step
from kerascnn import applications as apps
model = apps.GoogLeNet(aux_logits=True, input_shape=(65, 65, 3), classes=4,
                       dropout=0.0, aux_dropout=0.0)
x = np.random.default_rng(0).uniform(-2, 2, (4, 65, 65, 3)).astype("float32")
y = np.array([0, 1, 2, 3], "int32")
model.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
heads = [np.asarray(keras.ops.convert_to_numpy(t), np.float64)
         for t in model.with_aux_outputs().predict(x, batch_size=4, verbose=0)]  # compiled
loss = model.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False).history["loss"][0]
out.update(heads=[h.tolist() for h in heads], aux_loss=loss)
json.dump(out, open("checks.json", "w"))
"""


@pytest.fixture(scope="module")
def jax_checks(jax_run):
    root, run = jax_run["root"], jax_run["run"]
    files = sorted(os.path.join(dp, n) for dp, _, ns in os.walk(os.path.join(jax_run["folder"], "test"))
                   for n in ns)[::3]
    plan = dict(run=run, folder=jax_run["folder"], files=files,
                model=os.path.join(run, "checkpoints", "last.keras"),
                report=os.path.join(root, "report"))
    with open(os.path.join(root, "plan.json"), "w") as f:
        json.dump(plan, f)
    _python(JAX_CHECKS, root, "jax")
    return dict(plan, **json.load(open(os.path.join(root, "checks.json"))))


def test_export_from_jax_serves_the_jax_probabilities_in_tensorflow(jax_run, jax_checks):
    root, files = jax_run["root"], jax_checks["files"]
    # TensorFlow only: serve both exports with plain tf.saved_model.
    _python(f"""
        import json, numpy as np, tensorflow as tf
        files = json.load(open("plan.json"))["files"]
        data = tf.constant([open(p, "rb").read() for p in files])
        direct = tf.saved_model.load("sm_direct/fromjax/1")
        out = direct.signatures["serving_default"](image_bytes=data)
        np.save("tf_probs.npy", out["probabilities"].numpy())
        run_export = tf.saved_model.load({jax_run["export_dir"]!r} + "/tiny/1")
        sigs = {{}}
        for m, name in ((direct, "direct"), (run_export, "run")):
            sigs[name] = {{k: sorted(f.structured_outputs) for k, f in m.signatures.items()}}
        imgs = run_export.signatures["serving_images"](
            images=tf.cast(tf.stack([tf.io.decode_png(tf.io.read_file(p)) for p in files]), tf.float32))
        sigs["top5_names"] = [n.decode() for n in imgs["top5_names"].numpy()[0]]
        json.dump(sigs, open("signatures.json", "w"))
    """, root, "tensorflow")
    jax_probs = np.load(os.path.join(root, "jax_probs.npy"))
    tf_probs = np.load(os.path.join(root, "tf_probs.npy"))
    assert jax_probs.shape == tf_probs.shape == (len(files), 3)
    np.testing.assert_allclose(jax_probs.sum(-1), 1.0, atol=1e-3)
    assert np.abs(jax_probs - tf_probs).max() <= 1e-4, np.abs(jax_probs - tf_probs).max()
    sigs = json.load(open(os.path.join(root, "signatures.json")))
    outputs = ["probabilities", "top5_classes", "top5_names", "top5_probabilities"]
    for name in ("direct", "run"):
        assert sigs[name] == {"serving_default": outputs, "serving_images": outputs}, sigs
    assert sorted(sigs["top5_names"]) == ["blue", "green", "red"]
    meta = json.load(open(os.path.join(root, "sm_direct", "fromjax", "1", "assets.extra",
                                       "kerascnn.json")))
    assert meta["note"] == "jax" and meta["class_names"] == ["blue", "green", "red"]
    assert os.path.exists(os.path.join(root, "sm_direct", "models.config"))


def test_evaluate_and_predict_under_jax(jax_checks):
    assert jax_checks["evaluate_rc"] == 0
    report = json.load(open(jax_checks["report"] + ".json"))
    (center,) = report["results"]
    assert center["protocol"] == "center" and center["examples"] == 12
    # the same error computed from the JAX model's own predictions
    own = jax_checks["own_top1_error"]
    assert center["top1"] == pytest.approx(own, abs=1e-4)  # float32 in the report; 1 image = 8.3
    pred = jax_checks["predict_stdout"]
    assert jax_checks["predict_rc"] == 0
    assert "1. " in pred and "2. " in pred, pred


def test_googlenet_aux_loss_under_jax(jax_checks):
    y = np.array([0, 1, 2, 3])
    main, aux1, aux2 = (np.asarray(h) for h in jax_checks["heads"])
    ce = lambda p: float(np.mean(-np.log(p[np.arange(4), y])))  # noqa: E731
    want = ce(main) + 0.3 * (ce(aux1) + ce(aux2))
    assert abs(want - ce(main)) > 0.1  # the auxiliary terms matter
    assert jax_checks["aux_loss"] == pytest.approx(want, rel=1e-4)


def test_backend_flag(tmp_path):
    proc = _run(_cli("--backend", "jax", "models"), str(tmp_path))
    assert "resnet50" in proc.stdout
    code = ("import sys; from kerascnn.cli import main; "
            "rc = main(['--backend', 'jax', 'models']); "
            "import keras; print('BACKEND', keras.backend.backend()); sys.exit(rc)")
    proc = _run([sys.executable, "-c", code], str(tmp_path))
    assert "BACKEND jax" in proc.stdout
    env = {k: v for k, v in _env().items() if not k.startswith("KERAS_DISTRIBUTION_")}
    refused = subprocess.run(_cli("--backend", "jax", "train", "--strategy", "multi_worker"),
                             cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=TIMEOUT)
    assert refused.returncode == 2
    lines = [l for l in refused.stderr.splitlines() if l.startswith("kerascnn")]
    assert len(lines) == 1 and "--strategy multi_worker" in lines[0], refused.stderr
