"""A ``.keras`` file kerascnn writes loads in a new process after ``import kerascnn``
alone (in either order with ``import keras``), and ``import kerascnn`` imports neither
Keras nor TensorFlow."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import kerascnn
from kerascnn._serializables import SERIALIZABLES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(kerascnn.__file__)))


def _env():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, env.get("PYTHONPATH")]))
    return env


def _registering_modules():
    package = os.path.join(ROOT, "kerascnn")
    for folder, _, files in os.walk(package):
        for name in files:
            path = os.path.join(folder, name)
            if name.endswith(".py") and "register_keras_serializable(" in open(path).read():
                yield os.path.relpath(path[:-3], ROOT).replace(os.sep, ".").removesuffix(".__init__")


def test_the_table_names_every_registered_class_and_its_module():
    import keras

    modules = sorted(_registering_modules())
    assert "kerascnn.training.optimizers" in modules and "kerascnn.metrics" in modules
    for module in modules:
        importlib.import_module(module)
    registered = {name: f"{obj.__module__}" for name, obj in keras.saving.get_custom_objects().items()
                  if name.startswith("kerascnn>") and isinstance(obj, type)}
    assert registered == SERIALIZABLES


def test_import_kerascnn_imports_neither_keras_nor_tensorflow():
    out = subprocess.run(
        [sys.executable, "-c", "import sys, kerascnn; "
         "print(sorted(m for m in ('keras', 'tensorflow', 'jax') if m in sys.modules))"],
        capture_output=True, text=True, env=_env(), timeout=120, check=True).stdout
    assert out.strip() == "[]"


def _model():
    """A small model with every registered class: kerascnn's layers, an auxiliary head,
    a Dense applied as a convolution, compiled with L2SGD and the top-k metrics."""
    import keras

    from kerascnn.evaluation.fully_convolutional import DenseAsConv
    from kerascnn.layers import (AuxiliaryLossModel, BatchNormalization,
                                 LocalResponseNormalization, ZeroPadShortcut)
    from kerascnn.training.metrics import default_metrics
    from kerascnn.training.optimizers import L2SGD

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    x = ZeroPadShortcut(6, strides=2, name="shortcut")(x)
    x = LocalResponseNormalization(depth_radius=1, name="lrn")(x)
    x = BatchNormalization(name="bn")(x)
    x = keras.layers.Conv2D(5, 1, name="conv2")(x)
    dense = keras.layers.Dense(6, activation="relu", name="fc")
    dense.build((None, 5))
    x = DenseAsConv(dense, (1, 1), name="fc_conv")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    main = keras.layers.Dense(7, activation="softmax", name="predictions")(x)
    aux = keras.layers.Dense(7, activation="softmax", name="aux")(x)
    model = AuxiliaryLossModel(inputs, main, [aux], aux_loss_weight=0.3, name="tiny")
    model.compile(optimizer=L2SGD(learning_rate=0.05, l2=1e-3, l2_exclude=["bias"]),
                  loss=keras.losses.SparseCategoricalCrossentropy(), metrics=default_metrics())
    return model


_LOAD = """
import json, sys
import numpy as np
{imports}
model = keras.models.load_model(sys.argv[1])  # compile=True, safe_mode=True: the defaults
model.run_eagerly = True  # the compiled loss and metrics, without tracing evaluate/predict
data = np.load(sys.argv[2])
print(json.dumps({{
    "class": type(model).__name__, "optimizer": type(model.optimizer).__name__,
    "l2": model.optimizer.l2, "iterations": int(model.optimizer.iterations.numpy()),
    "metrics": model.evaluate(data["x"], data["y"], batch_size=4, verbose=0, return_dict=True),
    "prediction": model.predict(data["x"], verbose=0).tolist()}}))
"""


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """The model fitted one step, saved once, and what it says in this process; both
    import orders load the same file in their own process."""
    folder = tmp_path_factory.mktemp("saved")
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (8, 8, 8, 3)).astype("float32")
    y = rng.integers(0, 7, 8)
    model = _model()
    model.run_eagerly = True  # one step: tracing fit/evaluate/predict would cost more
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    path = str(folder / "tiny.keras")
    model.save(path)
    np.savez(folder / "data.npz", x=x, y=y)
    expected = model.evaluate(x, y, batch_size=4, verbose=0, return_dict=True)
    return folder, path, expected, model.predict(x, verbose=0)


@pytest.mark.parametrize("imports", ["import keras, kerascnn", "import kerascnn, keras"])
def test_a_saved_model_loads_compiled_after_import_kerascnn(saved, tmp_path, imports):
    folder, path, expected, prediction = saved
    assert set(expected) >= {"loss", "top1_error", "top5_error", "top1_accuracy"}

    script = tmp_path / "load.py"
    script.write_text(_LOAD.format(imports=imports))
    run = subprocess.run([sys.executable, str(script), path, str(folder / "data.npz")],
                         capture_output=True, text=True, env=_env(), timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert got["class"] == "AuxiliaryLossModel" and got["optimizer"] == "L2SGD"
    assert got["l2"] == pytest.approx(1e-3) and got["iterations"] == 1
    np.testing.assert_allclose(got["prediction"], prediction, atol=1e-5)
    for name, value in expected.items():
        assert got["metrics"][name] == pytest.approx(value, abs=1e-4), name
    assert not re.search(r"Could not locate", run.stderr)
