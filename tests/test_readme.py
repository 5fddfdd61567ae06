"""Every command and every Python block of README.md runs.

The README's ```bash and ```python blocks are read from the file at collection time;
each shell command (``\\``-continued lines joined) and each Python block is one step.
The steps run by README section: a section is a part (``PARTS``), whose steps run in
README order in a fresh working folder of its own; the parts run by group (``GROUPS``):
each group is one test (``test_readme_section_runs``, ``-k`` with its name) and one
subprocess, with TensorFlow (or a JAX group's Keras) imported once and a fresh ``$HOME``,
so that ``./dev test``'s workers run the groups side by side. A step that uses the main
job's run or export (``runs/fashion_mnist/``, ``saved_models/fashion_mnist``) in a
section that does not train it runs in the main job's part, after it. ``./dev
<command>`` runs as ``kerascnn <command>`` (``kerascnn.cli.main``: a step passes when it
returns 0) in the group's process, and in a process of its own where the process is
what the step shows (``--backend`` another than the group's, ``NAME=value ./dev ...``,
``... &``); the benchmarks run as ``__main__`` in the group's process (their own child
processes, where they make them, included), the Python blocks with ``exec``.
Nothing downloads: ``tensorflow_datasets.testing.mock_data`` answers every ``tfds``
load with small random images, and the paths of data a user would download are
generated stand-ins. Fashion-MNIST is Debian's, its first ``FASHION_MNIST`` images
(``KERASCNN_FASHION_MNIST_DIR``): the steps show commands, not a pass over 70,000
images. The changes from the README's text are only the ones in the tables below:
sizes and paths (``SUBSTITUTIONS``), names a block uses without defining them
(``PRELUDES``), and what cannot run here (``SKIPPED``, each with its reason). Each
group's log, with the seconds of each step (wall-clock and CPU), is
``<tmp>/readme-<group>/runner.log`` (copied to ``$KERASCNN_README_LOG.<group>`` when
that is set).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
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
# A training: one epoch of two steps of 2 images, one validation batch, the first 16
# test examples.
TRAIN_SIZES = ("--epochs 1 --batch-size 2 --set training.steps_per_epoch=2 "
               "--set training.validation_steps=1 --set training.eval_batch_size=16 "
               "--set data.test_examples=16")
NO_TEST = "--set 'data.test_split=\"\"'"
SUBSTITUTIONS = [
    # ImageNet-size networks train at 64x64 (an input size they all take): sizes only.
    # (VGG keeps 224: below)
    (r"^\./dev train resnet50_imagenet", "APPEND --set data.image_size=64"),
    # the localization recipe: no pass over its 60,000 64x64 canvases for a per-pixel mean,
    # and no export (its evaluations read the checkpoint; the main job exports the same
    # ResNet-20 through the same code)
    (r"^\./dev train fashion_mnist_boxes_cam", "APPEND --set 'data.mean=\"none\"' --no-export"),
    # the several-device runs show the strategy: no test split and no export (the main
    # job and the JAX job export theirs)
    (r"^\./dev (--backend jax )?train --strategy mirrored", "APPEND " + NO_TEST + " --no-export"),
    (r"^\./dev train", "APPEND " + TRAIN_SIZES),
    # VGG-16 at 224x224 (its fc6 is sized for the 7x7x512 map of the last pool, and the
    # builder refuses another size with the top): one step of one image, one image for
    # validation and one for the test
    (r"^\./dev train vgg_d_imagenet", "APPEND --batch-size 1 --set training.steps_per_epoch=1 "
                                       "--set training.eval_batch_size=1 "
                                       "--set data.test_examples=1"),
    # evaluations on the first images only (ResNet-50's 10 crops at 224: on two)
    (r"^\./dev evaluate", "APPEND --limit 16 --batch-size 8"),
    (r"^\./dev evaluate --arch resnet50", "APPEND --limit 2 --batch-size 2"),
    # the ImageNet recipes show their data sources and VGG's warm start: no export of
    # their full-size networks (the main job exports its net, through the same code)
    # (nor of the CIFAR recipe's ResNet-20 here: the default job exports the same net;
    # nor of the fine-tuned ResNet-50: `./dev export --arch resnet50 --weights imagenet`
    # exports that net with the weight set's preprocessing, in the same part)
    (r"^\./dev train (resnet50_imagenet|alexnet_imagenet|vgg_d_imagenet|resnet20_cifar10"
     r"|finetune_folder)", "APPEND --no-export"),
    # the speed measurements, on a few images and steps
    (r"benchmarks/pipeline\.py", "APPEND --images 500 --rounds 1 --batch-size 8"),  # >= 500
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
    # ... and at 64x64 (an input size ResNet-50 takes): sizes only
    (r"\(224, 224\)\) - mean", "(64, 64)) - mean"),
    (r"10, \(224, 224, 3\)\)", "10, (64, 64, 3))"),
    # (one of its five networks: AlexNet, the fewest layers to trace; at its 227x227)
    (r"benchmarks/throughput\.py", "APPEND --networks alexnet --precisions fp32 --batch-size 2 "
                                   "--image-size 32 --steps 1 --warmup 1"),
    # the same job under JAX: sizes only
    (r"^\./dev --backend jax train", "APPEND " + TRAIN_SIZES),
    # the two local JAX processes: sizes (before the `&`), and a free port for the
    # coordinator; no export (the JAX job exports through the same code, and that
    # process 0 alone exports is tests/training/test_jax_distribution.py's check)
    (r"(--output-dir runs/worker\d)", r"\1 " + TRAIN_SIZES + " " + NO_TEST + " --no-export"),
    (r"127\.0\.0\.1:12345", f"127.0.0.1:{_free_port()}"),
    # the reproductions: two iterations of each network on a few images, one seed
    (r"^\./dev reproduce", "APPEND --iterations 2 --points 1 --batch-size 8 --train-examples 64 "
                           "--test-examples 16"),
    (r"^\./dev reproduce shortcuts", "APPEND --seeds 1"),
    # the evaluation API's example: its protocols on two images
    (r"train_scale=\(256, 512\)\)", "train_scale=(256, 512), max_examples=2)"),
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

# The README's sections by part: a part is one working folder (its steps in README
# order). Sections are parts of their own unless merged here.
PARTS = {
    "The two commands": "main",
    "The networks": "networks",
    "Pretrained ImageNet weights": "pretrained",
    "Input pipelines": "pipelines",
    "Train a paper recipe on real data": "recipes",
    "Evaluate with the papers' test protocols": "evaluate",
    "See what the network sees": "explain",
    "Weakly supervised localization, measured": "localization",
    "Reproduce the ResNet paper's claims": "reproduce",
    "Train on TensorFlow or JAX": "jax",
    "Train on several devices or machines": "devices",
    "Use it in Colab": "colab",
    "Speed": "speed",
}
# Steps that run in a part of their own, away from their section's (command regex, part).
OWN_PARTS = [(r"^\./dev train vgg_d_imagenet", "recipes_vgg"),
             (r"^\./dev --backend jax train --strategy mirrored", "devices_jax"),
             (r"^KERAS_DISTRIBUTION_JOB_ADDRESSES=", "devices_workers")]
# The parts by group: a group is one test and one subprocess (TensorFlow, or Keras with
# the group's backend, imported once), which runs its parts one after the other, each in
# its own fresh working folder. The order is the tests' order, the longest first
# (measured), so that `./dev test`'s workers start on them; a part not listed here is a
# group of its own, after them. Few groups: each pays a TensorFlow (and Keras) import
# and its stand-ins once; the two TensorFlow groups are of about the same CPU seconds
# (measured from the groups' runner.log), the JAX one runs its own processes.
GROUPS = {
    "main": ["main", "devices", "localization", "evaluate", "networks", "recipes",
             "recipes_vgg", "speed"],
    "pretrained": ["pretrained", "explain", "pipelines", "colab", "reproduce"],
    "jax": ["jax", "devices_jax", "devices_workers"],
}
# The groups whose process runs Keras on JAX: there `./dev --backend jax <command>` runs
# in the group's process (Keras already on that backend: what the flag selects).
BACKENDS = {"jax": "jax"}
# A step naming the main job's run or export joins the main job's group unless its own
# section trains the default recipe first (`./dev --backend jax train ...`).
USES_MAIN_RUN = re.compile(r"(runs|saved_models)/fashion_mnist(/|\s|$)")
TRAINS_MAIN = re.compile(r"^\./dev (--backend \w+ )?train( --|$)")
# Fashion-MNIST: the first images of Debian's files (train, test); the default recipe
# holds out the last 2,000 training images for validation.
FASHION_MNIST = (2400, 200)


def _blocks(text):
    """``(kind, first line number, body, section)`` of each ```bash / ```python block;
    ``section``: the heading above it."""
    blocks, kind, start, body, section = [], None, 0, [], ""
    for number, line in enumerate(text.splitlines(), 1):
        fence = re.match(r"^```(\w*)\s*$", line)
        if fence and kind is None:
            kind, start, body = fence.group(1) or "text", number + 1, []
        elif fence:
            if kind in ("bash", "python"):
                blocks.append((kind, start, "\n".join(body), section))
            kind = None
        elif kind is not None:
            body.append(line)
        elif line.startswith("#"):
            section = line.lstrip("#").strip()
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
    for kind, start, body, section in _blocks(text):
        if kind == "python":
            code = _substitute(body)
            prelude = "".join(p for key, p in PRELUDES.items() if key in body)
            out.append({"id": f"README.md:{start} python", "kind": "python",
                        "code": prelude + code, "section": section})
            continue
        for line, command in _commands(body, start):
            step = {"id": f"README.md:{line} {command.split(' #')[0].strip()[:60]}",
                    "kind": "bash", "command": _substitute(command), "section": section}
            skip = [reason for prefix, reason in SKIPPED.items() if command.startswith(prefix)]
            if skip:
                step["skip"] = skip[0]
            out.append(step)
    trains_main = {s["section"] for s in out if TRAINS_MAIN.match(s.get("command", ""))}
    main = out[0]["section"]
    for step in out:
        text = step.get("command", step.get("code", ""))
        if USES_MAIN_RUN.search(text) and step["section"] not in trains_main:
            step["section"] = main
        step["part"] = PARTS.get(step["section"], re.sub(r"\W+", "_", step["section"]).lower())
        for pattern, part in OWN_PARTS:
            if re.search(pattern, step.get("command", "")):
                step["part"] = part
        step["group"] = next((g for g, parts in GROUPS.items() if step["part"] in parts),
                             step["part"])
    return out


STEPS = steps()

RUNNER = r"""
import contextlib, io, json, os, resource, runpy, shlex, subprocess, sys, time, traceback

steps = json.load(open(sys.argv[1]))
root, repo = sys.argv[2], sys.argv[3]
work = root  # the working folder of the part that runs (each part has its own)

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from kerascnn.cli import main

KERAS_APP_RESNET50 = "resnet50_weights_tf_dim_ordering_tf_kernels.h5"
rng = np.random.default_rng(0)


def imagenet_folder():
    for c in range(3):
        os.makedirs(f"imagenet_folder/n0000000{c}", exist_ok=True)
        for i in range(4):
            size = (40 + 8 * i, 48)
            Image.fromarray(rng.integers(0, 256, size + (3,), dtype=np.uint8)).save(
                f"imagenet_folder/n0000000{c}/{i}.JPEG", format="JPEG")


def tfrecords():
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


def fusion_members():
    # two trained networks for the fusion example (ImageNet's 1000 classes, RGB)
    import keras

    for seed, name in ((1, "a"), (2, "b")):
        keras.utils.set_random_seed(seed)
        i = keras.Input((32, 32, 3))
        x = keras.layers.Conv2D(8, 3, activation="relu")(i)
        x = keras.layers.GlobalAveragePooling2D()(x)
        keras.Model(i, keras.layers.Dense(1000, activation="softmax")(x), name=f"net_{name}").save(f"{name}.keras")


def photo():
    Image.fromarray(rng.integers(0, 256, (180, 240, 3), dtype=np.uint8)).save("photo.jpg")


def finetune_folder():
    # an image folder with train/ and val/ (fine-tuning)
    for split in ("train", "val"):
        for c in range(2):
            os.makedirs(f"finetune_folder/{split}/class{c}", exist_ok=True)
            for i in range(4):
                Image.fromarray(rng.integers(0, 256, (48 + 4 * i, 56, 3), dtype=np.uint8)).save(
                    f"finetune_folder/{split}/class{c}/{i}.jpg")


def resnet50_file():
    # keras.applications' ResNet-50 file as the publisher writes it (Keras-2 HDF5 with
    # weight_names), random weights: what weights="imagenet" would download
    import h5py
    import keras
    from keras.src.legacy.saving import legacy_h5_format

    keras.utils.set_random_seed(3)
    with h5py.File(KERAS_APP_RESNET50, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, keras.applications.ResNet50(weights=None))
    keras.backend.clear_session()


def vgg_a_checkpoint():
    # what VGG's warm start reads: net A's .keras file as `./dev train vgg_a_imagenet`
    # writes it, here built and not trained (the warm start copies its layers whatever
    # their values; a training of net A at 224x224 would take minutes)
    import keras
    from kerascnn.applications import VGG

    keras.utils.set_random_seed(4)
    os.makedirs("runs/vgg_a_imagenet/checkpoints", exist_ok=True)
    VGG(config="A").save("runs/vgg_a_imagenet/checkpoints/best.keras")
    keras.backend.clear_session()


def shoe():
    # the client's shoe: a Fashion-MNIST-sized gray PNG, enlarged (any size is served)
    Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).resize((112, 112)).save("shoe.png")


STAND_INS = [("imagenet_folder", imagenet_folder), ("tfrecords/", tfrecords),
             ("a.keras", fusion_members), ("photo.jpg", photo),
             ("finetune_folder", finetune_folder), ("KERAS_APP_RESNET50", resnet50_file),
             (KERAS_APP_RESNET50, resnet50_file), ("shoe.png", shoe),
             ("runs/vgg_a_imagenet/checkpoints/best.keras", vgg_a_checkpoint)]


made = {}  # stand-in maker -> the files it made (under <root>/stand-ins), made once


def stand_ins(part_steps):
    # the stand-ins the part's steps name, linked into its folder
    needs = json.dumps(part_steps)
    for name, make in STAND_INS:
        if name not in needs:
            continue
        if make not in made:
            folder = os.path.join(root, "stand-ins", make.__name__)
            os.makedirs(folder)
            os.chdir(folder)
            make()
            made[make] = sorted(os.path.relpath(os.path.join(d, f), folder)
                                for d, _, files in os.walk(folder) for f in files)
            os.chdir(work)
        for path in made[make]:
            if not os.path.exists(path):
                os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
                os.symlink(os.path.join(root, "stand-ins", make.__name__, path), path)


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
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if argv[0] == "./dev" and argv[1:2] == ["--backend"] and (
            argv[2:3] != [backend] or env != os.environ or detach):
        # Keras' backend is fixed when it is imported (this process: `backend`), and
        # `NAME=value cmd` and `cmd &` are processes of their own
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
        return run_script(os.path.join(repo, argv[1]), argv[2:])
    raise ValueError(f"no rule to run {argv[0]!r}")


def run_script(script, args):
    # `python script args` in this process (TensorFlow is imported once): the script as
    # __main__, its folder first on sys.path, as the interpreter would set them
    saved_argv, saved_path = sys.argv, sys.path[:]
    sys.argv = [script, *args]
    sys.path.insert(0, os.path.dirname(script))
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            runpy.run_path(script, run_name="__main__")
        rc = 0
    except SystemExit as exit:
        rc = exit.code if isinstance(exit.code, int) else int(exit.code is not None)
    finally:
        sys.argv, sys.path[:] = saved_argv, saved_path
        sys.stderr.write(err.getvalue())
    return rc, err.getvalue()[-3000:]


def reset():
    # what a step leaves in this process that the next must not inherit
    if "keras" in sys.modules:
        import keras

        keras.mixed_precision.set_global_policy("float32")
        keras.backend.clear_session()


def cpu():
    # CPU seconds of this process and its finished children (the machine is shared:
    # these, not the wall-clock seconds, say what a step costs)
    return sum(r.ru_utime + r.ru_stime for r in
               (resource.getrusage(resource.RUSAGE_SELF),
                resource.getrusage(resource.RUSAGE_CHILDREN)))


with tfds.testing.mock_data(num_examples=8):
    for d in ("imagenet_tars", "tensorflow_datasets"):
        os.makedirs(os.path.join(os.environ["HOME"], d), exist_ok=True)
    for part in dict.fromkeys(step["part"] for step in steps):
        part_steps = [step for step in steps if step["part"] == part]
        work = os.path.join(root, part)
        os.makedirs(work)
        os.chdir(work)
        start = time.time()
        stand_ins(part_steps)
        print("STAND-INS " + json.dumps({"part": part, "seconds": round(time.time() - start, 1),
                                         "cpu_seconds_since_start": round(cpu(), 1)}),
              flush=True)
        for step in part_steps:
            start, start_cpu, result = time.time(), cpu(), {"id": step["id"]}
            try:
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
                reset()
            result["seconds"] = round(time.time() - start, 1)
            result["cpu_seconds"] = round(cpu() - start_cpu, 1)
            print("STEP " + json.dumps(result), flush=True)
print("END " + json.dumps({"cpu_seconds": round(cpu(), 1)}), flush=True)
"""

GROUP_NAMES = sorted(dict.fromkeys(s["group"] for s in STEPS if "skip" not in s),
                     key=lambda g: list(GROUPS).index(g) if g in GROUPS else len(GROUPS))


def _plan(group):
    """The group's steps, part by part (in ``GROUPS``' order), each part's in README
    order."""
    steps = [s for s in STEPS if s["group"] == group and "skip" not in s]
    order = GROUPS.get(group, [group])
    return sorted(steps, key=lambda s: order.index(s["part"]))


@pytest.fixture(scope="session")
def fashion_mnist(tmp_path_factory):
    """A folder with the first FASHION_MNIST images of Debian's Fashion-MNIST, in its
    IDX format (None when Debian's files are not there: the steps then use tfds,
    which ``mock_data`` answers)."""
    import gzip

    from kerascnn.data import _fashion_mnist

    if not os.path.isdir(_fashion_mnist.DEBIAN_DIR):
        return None
    out = tmp_path_factory.mktemp("fashion_mnist")
    for (images, labels), n in zip(_fashion_mnist._FILES.values(), FASHION_MNIST):
        for stem in (images, labels):
            with gzip.open(os.path.join(_fashion_mnist.DEBIAN_DIR, stem + ".gz"), "rb") as f:
                data = f.read()
            ndim = data[3]
            dims = [n] + [int.from_bytes(data[4 + 4 * d:8 + 4 * d], "big")
                          for d in range(1, ndim)]
            size = int(np.prod(dims[1:], dtype=np.int64)) if ndim > 1 else 1
            head = data[:4] + b"".join(d.to_bytes(4, "big") for d in dims)
            with gzip.open(out / (stem + ".gz"), "wb") as f:
                f.write(head + data[4 + 4 * ndim:4 + 4 * ndim + n * size])
    return str(out)


def _run_group(group, tmp_path_factory, fashion_mnist):
    work = tmp_path_factory.mktemp(f"readme-{group}")
    home = work / "home"
    home.mkdir()
    plan = work / "steps.json"
    plan.write_text(json.dumps(_plan(group)))
    env = dict(os.environ, HOME=str(home), TF_CPP_MIN_LOG_LEVEL="2",
               KERAS_BACKEND=BACKENDS.get(group, "tensorflow"))
    if fashion_mnist:
        env["KERASCNN_FASHION_MNIST_DIR"] = fashion_mnist
    log_path = work / "runner.log"
    with open(log_path, "w") as log:
        try:
            subprocess.run([sys.executable, "-c", RUNNER, str(plan), str(work), ROOT],
                           stdout=log, stderr=subprocess.STDOUT, text=True, env=env,
                           timeout=1800)
        except subprocess.TimeoutExpired:
            log.write("\n[test_readme] the group timed out after 1800 s\n")
    text = log_path.read_text()
    if os.environ.get("KERASCNN_README_LOG"):  # a copy that outlives pytest's tmp folders
        with open(f"{os.environ['KERASCNN_README_LOG']}.{group}", "w") as f:
            f.write(text)
    found = {}
    for line in text.splitlines():
        if line.startswith("STEP "):
            r = json.loads(line[5:])
            found[r["id"]] = r
    return work, found, text


def test_readme_has_the_blocks_this_test_knows():
    """The tables above still match the README (a renamed command or heading fails
    here), and every step is run by one group or skipped with its reason."""
    text = "\n".join(s.get("command", s.get("code", "")) for s in STEPS)
    readme = open(README).read()
    for pattern, _ in SUBSTITUTIONS:
        assert re.search(pattern, readme, flags=re.M), pattern
    for prefix in SKIPPED:
        assert any(s.get("command", "").startswith(prefix) for s in STEPS), prefix
    for section in PARTS:
        assert re.search(rf"^#+ {re.escape(section)}$", readme, flags=re.M), section
    for pattern, _ in OWN_PARTS:
        assert any(re.search(pattern, s.get("command", "")) for s in STEPS), pattern
    parts = {s["part"] for s in STEPS if "skip" not in s}
    assert all(p in parts for group in GROUPS.values() for p in group), GROUPS
    assert "./dev train" in text and "kerascnn.applications" in text
    assert sum(1 for s in STEPS if "skip" in s) == len([
        s for s in STEPS if any(s.get("command", "").startswith(p) for p in SKIPPED)])
    assert len(STEPS) == len({s["id"] for s in STEPS})
    assert all(s["group"] in GROUP_NAMES for s in STEPS if "skip" not in s)
    # the main job's later users run after it, in its part
    main = [s["id"] for s in _plan(STEPS[0]["group"]) if s["part"] == STEPS[0]["part"]]
    assert main[0] == STEPS[0]["id"] and STEPS[0]["command"].startswith("./dev train")
    for s in STEPS:
        if USES_MAIN_RUN.search(s.get("command", "")) and "jax" not in s["command"]:
            assert s["part"] == STEPS[0]["part"] or "skip" in s, s["id"]


@pytest.mark.parametrize("group", GROUP_NAMES)
def test_readme_section_runs(group, tmp_path_factory, fashion_mnist):
    steps = [s for s in STEPS if s["group"] == group and "skip" not in s]
    work, found, log = _run_group(group, tmp_path_factory, fashion_mnist)
    failed = []
    for step in steps:
        r = found.get(step["id"])
        if r is None:
            failed.append(f"{step['id']}: the runner died before this step:\n{log[-4000:]}")
            break
        if not r["ok"]:
            failed.append(f"{step['id']} ({step.get('command') or 'python block'}) "
                          f"failed:\n{r.get('error')}")
    assert not failed, "\n\n".join(failed)
    for path in work.iterdir():  # passed: only the log is kept (VGG's runs are gigabytes)
        if path.name != "runner.log":
            shutil.rmtree(path) if path.is_dir() else path.unlink()


@pytest.mark.parametrize("step", [s for s in STEPS if "skip" in s],
                         ids=[s["id"] for s in STEPS if "skip" in s])
def test_readme_step_skipped(step):
    pytest.skip(step["skip"])
