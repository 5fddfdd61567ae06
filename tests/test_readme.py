"""Every command and every Python block of README.md runs.

The README's ```bash and ```python blocks are read from the file at collection time;
each shell command (``\\``-continued lines joined) and each Python block is one step,
run in README order in one subprocess (TensorFlow imported once) whose working
directory and ``$HOME`` are a fresh temporary folder. ``./dev <command>`` runs as
``kerascnn <command>`` (``kerascnn.cli.main``: a step passes when it returns 0), the
benchmarks as child processes, the Python blocks with ``exec``. Nothing downloads:
``tensorflow_datasets.testing.mock_data`` answers every ``tfds`` load with small
random images, and the paths of data a user would download are generated stand-ins.
The changes from the README's text are only the ones in the tables below: sizes and
paths (``SUBSTITUTIONS``), names a block uses without defining them (``PRELUDES``),
and what cannot run here (``SKIPPED``, each with its reason).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")

pytestmark = [pytest.mark.slow, pytest.mark.tf_only]

def _free_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Sizes appended to commands (argparse: a later option wins over the README's own,
# e.g. `--epochs 10` then `--epochs 1`) and paths of downloads replaced by generated
# stand-ins, as (regular expression on the command, replacement or text to append).
TRAIN_SIZES = ("--epochs 1 --batch-size 2 --set training.steps_per_epoch=2 "
               "--set training.validation_steps=1")
NO_TEST = "--set 'data.test_split=\"\"'"
SUBSTITUTIONS = [
    # ImageNet-size networks train at 64x64 (an input size they all take): sizes only.
    # (VGG keeps 224: its fc6 is sized for the 7x7x512 map of the last pool)
    (r"^\./dev train resnet50_imagenet", "APPEND --set data.image_size=64"),
    # the localization recipe: no pass over its 60,000 64x64 canvases for a per-pixel mean
    (r"^\./dev train fashion_mnist_boxes_cam", "APPEND --set 'data.mean=\"none\"'"),
    # the several-device runs: no test split (the full 10,000 Fashion-MNIST test images
    # evaluated replicated on two devices dominated their time)
    (r"^\./dev (--backend jax )?train --strategy mirrored", "APPEND " + NO_TEST),
    (r"^\./dev train", "APPEND " + TRAIN_SIZES),
    # evaluations on the first images only
    (r"^\./dev evaluate", "APPEND --limit 16 --batch-size 8"),
    # the speed measurements, on a few images and steps
    (r"benchmarks/pipeline\.py", "APPEND --images 500 --rounds 1"),  # it takes >= 500
    (r"benchmarks/pipeline_parts\.py", "APPEND --images 64 --repeats 1"),  # one batch of 64
    (r"benchmarks/evaluation\.py", "APPEND --images 16 --batch-size 8 --repeats 1"),
    (r"benchmarks/explain\.py", "APPEND --images 8 --batch-size 4 --repeats 1"),
    (r"benchmarks/train_step\.py", "APPEND --steps 2 --batch-sizes 8 --variants float32:false:keras"),
    # downloads a user has and the test has not: generated image folder and TFRecords
    (r"/data/imagenet/train|/data/imagenet", "PATH imagenet_folder"),
    (r"/data/train-\*", "PATH tfrecords/train-*"),
    # the pretrained sets' files a user downloads (the one download kerascnn makes): a
    # file in the same publisher's format made here (keras.applications' own ResNet-50,
    # random weights, written by Keras' legacy HDF5 writer), passed as a path
    (r'ResNet50\(weights="imagenet"\)', 'ResNet50(weights="{work}/" + KERAS_APP_RESNET50)'),
    (r'finetune_model\("resnet50", "imagenet"',
     'finetune_model("resnet50", "{work}/" + KERAS_APP_RESNET50'),
    (r"--weights imagenet", "--weights {work}/" + "resnet50_weights_tf_dim_ordering_tf_kernels.h5"),
    (r"^\./dev train finetune_folder",
     "APPEND --set 'model.weights=\"{work}/resnet50_weights_tf_dim_ordering_tf_kernels.h5\"' "
     "--set data.image_size=64 --set training.head_epochs=1 --set training.epochs=2 "
     "--set training.batch_size=2"),
    (r"/path/to/images", "PATH finetune_folder"),
    (r"epochs=6, callbacks", "epochs=2, callbacks"),
    (r"benchmarks/throughput\.py", "APPEND --networks resnet50 --precisions fp32 --batch-size 2 "
                                   "--image-size 32 --steps 1 --warmup 1"),
    # the same job under JAX: sizes only
    (r"^\./dev --backend jax train", "APPEND " + TRAIN_SIZES),
    # the two local JAX processes: sizes (before the `&`), and a free port for the coordinator
    (r"(--output-dir runs/worker\d)", r"\1 " + TRAIN_SIZES + " " + NO_TEST),
    (r"127\.0\.0\.1:12345", f"127.0.0.1:{_free_port()}"),
    # the reproductions: two iterations of each network on a few images
    (r"^\./dev reproduce", "APPEND --iterations 2 --points 1 --batch-size 8 --train-examples 64 "
                           "--test-examples 16"),
    # the Colab block trains 5 epochs; one here
    (r"model\.fit\(ds, epochs=5\)", "model.fit(ds, epochs=1)"),
    # an IPython shell escape: the package is installed in the environment under test
    (r"^!pip install .*$", ""),
]

# Names a block uses without defining them (the README's reader has their own).
PRELUDES = {
    "model.fit(train_ds)": (
        "import numpy as np, tensorflow as tf\n"
        "train_ds = tf.data.Dataset.from_tensor_slices((np.zeros((2, 224, 224, 3), np.float32),"
        " np.array([0, 1]))).batch(2)  # the user's (images, labels)\n"),
    "report = evaluate(model,": (
        "import keras\n"
        "keras.utils.set_random_seed(0)\n"
        "_i = keras.Input((32, 32, 3))\n"
        "_x = keras.layers.Conv2D(8, 3, padding='same', activation='relu')(_i)\n"
        "_x = keras.layers.MaxPooling2D(4)(_x)\n"
        "_x = keras.layers.Flatten(name='flatten')(_x)\n"
        "_x = keras.layers.Dense(16, activation='relu', name='fc6')(_x)\n"
        "_x = keras.layers.Dense(16, activation='relu', name='fc7')(_x)\n"
        "model = keras.Model(_i, keras.layers.Dense(1000, activation='softmax', name='fc8')(_x),"
        " name='vgg_standin')  # a trained VGG\n"),
}

# Commands that cannot run here. Keep this short and true.
SKIPPED = {
    "./dev test": "it is this test suite (running it from here would recurse)",
    "docker run": "needs Docker and the tensorflow/serving image (network); the export's "
                  "signatures are served in a TensorFlow-only process by tests/export/test_serving.py",
    "curl": "needs the TF Serving container above",
}

# Before a step: what the README assumes was done (e.g. a run it warm-starts from).
BEFORE = {
    "--init-from runs/vgg_a_imagenet/checkpoints/best.keras":
        "./dev train vgg_a_imagenet " + TRAIN_SIZES,
}


def _blocks(text):
    """``(kind, first line number, body)`` of each ```bash / ```python block."""
    blocks, kind, start, body = [], None, 0, []
    for number, line in enumerate(text.splitlines(), 1):
        fence = re.match(r"^```(\w*)\s*$", line)
        if fence and kind is None:
            kind, start, body = fence.group(1) or "text", number + 1, []
        elif fence:
            if kind in ("bash", "python"):
                blocks.append((kind, start, "\n".join(body)))
            kind = None
        elif kind is not None:
            body.append(line)
    return blocks


def _commands(body, start):
    """Shell commands of a bash block: ``(line, text)``, continuations joined,
    comment-only lines dropped (comments after a command are dropped by shlex)."""
    out, pending, first = [], "", None
    for offset, line in enumerate(body.splitlines()):
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        first = first if pending else start + offset
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        out.append((first, pending + line))
        pending = ""
    return out


def _substitute(text):
    for pattern, change in SUBSTITUTIONS:
        if not re.search(pattern, text, flags=re.M):
            continue
        if change.startswith("APPEND "):
            text = text.split(" #")[0].rstrip() + " " + change[len("APPEND "):]
        elif change.startswith("PATH "):
            text = re.sub(pattern, "{work}/" + change[len("PATH "):], text)
        else:
            text = re.sub(pattern, change, text, flags=re.M)
    return text


def steps():
    with open(README) as f:
        text = f.read()
    out = []
    for kind, start, body in _blocks(text):
        if kind == "python":
            code = _substitute(body)
            prelude = "".join(p for key, p in PRELUDES.items() if key in body)
            out.append({"id": f"README.md:{start} python", "kind": "python",
                        "code": prelude + code})
            continue
        for line, command in _commands(body, start):
            step = {"id": f"README.md:{line} {command.split(' #')[0].strip()[:60]}",
                    "kind": "bash", "command": _substitute(command)}
            skip = [reason for prefix, reason in SKIPPED.items() if command.startswith(prefix)]
            if skip:
                step["skip"] = skip[0]
            step["before"] = [b for key, b in BEFORE.items() if key in command]
            out.append(step)
    return out


STEPS = steps()

RUNNER = r"""
import contextlib, io, json, os, runpy, shlex, subprocess, sys, time, traceback

steps = json.load(open(sys.argv[1]))
work, repo = sys.argv[2], sys.argv[3]
os.chdir(work)

import keras
import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from kerascnn.cli import main

KERAS_APP_RESNET50 = "resnet50_weights_tf_dim_ordering_tf_kernels.h5"


def stand_ins():
    rng = np.random.default_rng(0)
    for c in range(3):
        os.makedirs(f"imagenet_folder/n0000000{c}", exist_ok=True)
        for i in range(4):
            size = (40 + 8 * i, 48)
            Image.fromarray(rng.integers(0, 256, size + (3,), dtype=np.uint8)).save(
                f"imagenet_folder/n0000000{c}/{i}.JPEG", format="JPEG")
    import tensorflow as tf

    os.makedirs("tfrecords", exist_ok=True)
    for shard in range(2):
        with tf.io.TFRecordWriter(f"tfrecords/train-{shard:05d}-of-00002") as w:
            for i in range(6):
                buf = io.BytesIO()
                Image.fromarray(rng.integers(0, 256, (36, 44, 3), dtype=np.uint8)).save(buf, format="JPEG")
                feature = {
                    "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[buf.getvalue()])),
                    # build_imagenet_data.py writes labels 1..1000 (0 is "background")
                    "image/class/label": tf.train.Feature(int64_list=tf.train.Int64List(value=[1 + i % 3])),
                }
                w.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    for d in ("imagenet_tars", "tensorflow_datasets"):
        os.makedirs(os.path.join(os.environ["HOME"], d), exist_ok=True)
    # two trained networks for the fusion example (ImageNet's 1000 classes, RGB)
    for seed, name in ((1, "a"), (2, "b")):
        keras.utils.set_random_seed(seed)
        i = keras.Input((32, 32, 3))
        x = keras.layers.Conv2D(8, 3, activation="relu")(i)
        x = keras.layers.GlobalAveragePooling2D()(x)
        keras.Model(i, keras.layers.Dense(1000, activation="softmax")(x), name=f"net_{name}").save(f"{name}.keras")
    # a user's photo, and an image folder with train/ and val/ (fine-tuning)
    Image.fromarray(rng.integers(0, 256, (180, 240, 3), dtype=np.uint8)).save("photo.jpg")
    for split in ("train", "val"):
        for c in range(2):
            os.makedirs(f"finetune_folder/{split}/class{c}", exist_ok=True)
            for i in range(4):
                Image.fromarray(rng.integers(0, 256, (48 + 4 * i, 56, 3), dtype=np.uint8)).save(
                    f"finetune_folder/{split}/class{c}/{i}.jpg")
    # keras.applications' ResNet-50 file as the publisher writes it (Keras-2 HDF5 with
    # weight_names), random weights: what weights="imagenet" would download
    import h5py
    from keras.src.legacy.saving import legacy_h5_format
    keras.utils.set_random_seed(3)
    with h5py.File(KERAS_APP_RESNET50, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, keras.applications.ResNet50(weights=None))
    keras.backend.clear_session()
    # the client's shoe: a Fashion-MNIST-sized gray PNG, enlarged (any size is served)
    Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).resize((112, 112)).save("shoe.png")


background = []  # `command &`: started, waited for after the next command


def run_command(command):
    # -> (exit status, the end of what it wrote to stderr)
    argv = shlex.split(command.replace("{work}", work), comments=True)
    env = dict(os.environ)
    while argv and "=" in argv[0] and argv[0].split("=")[0].isidentifier():  # NAME=value cmd
        name, value = argv.pop(0).split("=", 1)
        env[name] = value
    detach = argv[-1] == "&"
    argv = argv[:-1] if detach else argv
    if argv[0] == "./dev" and argv[1:2] == ["--backend"]:
        # Keras' backend is fixed when it is imported (this process: TensorFlow's)
        cmd = [sys.executable, "-m", "kerascnn.cli", *argv[1:]]
        if detach:
            log = open(os.path.join(work, f"background{len(background)}.log"), "w+")
            background.append((subprocess.Popen(cmd, cwd=work, env=env, stdout=log,
                                                stderr=subprocess.STDOUT, text=True), log))
            return 0, ""
        proc = subprocess.run(cmd, cwd=work, env=env, timeout=900, capture_output=True,
                              text=True)
        rc, err = proc.returncode, proc.stderr[-3000:]
        while background:
            child, log = background.pop()
            if child.wait(timeout=900) != 0 and rc == 0:
                log.seek(0)
                rc, err = child.returncode, "(the `&` command) " + log.read()[-3000:]
            log.close()
        return rc, err
    if env != os.environ:
        raise ValueError(f"no rule to run {argv[0]!r} with environment variables")
    if argv[0] == "./dev":
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            rc = main(argv[1:] or ["train"])
        sys.stderr.write(err.getvalue())
        return rc, err.getvalue()[-3000:]
    if argv[0] == ".venv/bin/python":
        script = os.path.join(repo, argv[1])
        proc = subprocess.run([sys.executable, script, *argv[2:]], cwd=work, timeout=900,
                              capture_output=True, text=True)
        return proc.returncode, proc.stderr[-3000:]
    raise ValueError(f"no rule to run {argv[0]!r}")


with tfds.testing.mock_data(num_examples=8):
    stand_ins()
    for step in steps:
        start, result = time.time(), {"id": step["id"]}
        if "skip" in step:
            result["skip"] = step["skip"]
        else:
            try:
                for command in step.get("before", []):
                    rc, err = run_command(command)
                    if rc != 0:
                        raise RuntimeError(f"preparing with {command!r} failed ({rc}):\n{err}")
                if step["kind"] == "bash":
                    rc, err = run_command(step["command"])
                    result["ok"] = rc == 0
                    if rc != 0:
                        result["error"] = f"exit status {rc}:\n{err}"
                else:
                    exec(compile(step["code"].replace("{work}", work), step["id"], "exec"),
                         {"__name__": "__readme__", "KERAS_APP_RESNET50": KERAS_APP_RESNET50})
                    result["ok"] = True
            except BaseException as err:  # noqa: BLE001 -- reported per step
                result["ok"] = False
                result["error"] = "".join(traceback.format_exception(err))[-4000:]
            finally:
                keras.mixed_precision.set_global_policy("float32")
                keras.backend.clear_session()
        result["seconds"] = round(time.time() - start, 1)
        print("STEP " + json.dumps(result), flush=True)
"""


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    work = tmp_path_factory.mktemp("readme")
    home = work / "home"
    home.mkdir()
    plan = work / "steps.json"
    plan.write_text(json.dumps(STEPS))
    env = dict(os.environ, HOME=str(home), TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, "-c", RUNNER, str(plan), str(work), ROOT],
                          capture_output=True, text=True, env=env, timeout=1800)
    log = proc.stdout + "\n--- stderr ---\n" + proc.stderr
    (work / "runner.log").write_text(log)
    if os.environ.get("KERASCNN_README_LOG"):  # a copy that outlives pytest's tmp folders
        with open(os.environ["KERASCNN_README_LOG"], "w") as f:
            f.write(log)
    found = {}
    for line in proc.stdout.splitlines():
        if line.startswith("STEP "):
            r = json.loads(line[5:])
            found[r["id"]] = r
    found["_stderr"] = proc.stderr[-4000:]
    return found


def test_readme_has_the_blocks_this_test_knows():
    """The tables above still match the README (a renamed command fails here)."""
    text = "\n".join(s.get("command", s.get("code", "")) for s in STEPS)
    for pattern, _ in SUBSTITUTIONS:
        assert re.search(pattern, open(README).read(), flags=re.M), pattern
    for prefix in SKIPPED:
        assert any(s.get("command", "").startswith(prefix) for s in STEPS), prefix
    assert "./dev train" in text and "kerascnn.applications" in text
    assert sum(1 for s in STEPS if "skip" in s) == len([
        s for s in STEPS if any(s.get("command", "").startswith(p) for p in SKIPPED)])


@pytest.mark.parametrize("step", STEPS, ids=[s["id"] for s in STEPS])
def test_readme_step_runs(results, step):
    if "skip" in step:
        pytest.skip(step["skip"])
    r = results.get(step["id"])
    assert r is not None, "the runner died before this step:\n" + results["_stderr"]
    assert r["ok"], f"{step.get('command') or 'python block'} failed:\n{r.get('error')}"
