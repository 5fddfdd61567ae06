import keras
import numpy as np
import pytest

from kerascnn.layers import AuxiliaryLossModel


def _tiny(aux_loss_weight=0.3, activation="softmax"):
    inputs = keras.Input((6,))
    h = keras.layers.Dense(16, activation="relu", name="h")(inputs)
    main = keras.layers.Dense(3, activation=activation, name="main")(h)
    aux1 = keras.layers.Dense(3, activation=activation, name="aux1")(h)
    aux2 = keras.layers.Dense(3, activation=activation, name="aux2")(inputs)
    return AuxiliaryLossModel(inputs, main, [aux1, aux2], aux_loss_weight=aux_loss_weight,
                              name="tiny")


def _data(n=16):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 6)).astype("float32"), rng.integers(0, 3, n).astype("int32")


def _heads(model, x):
    """The main and auxiliary heads' outputs, eager (``predict`` traces a function for
    each ``with_aux_outputs()`` graph)."""
    return [keras.ops.convert_to_numpy(t) for t in model.with_aux_outputs()(x, training=False)]


def _ce(y, p):
    p = np.asarray(p, np.float64)
    return float(np.mean(-np.log(p[np.arange(len(y)), y])))


@pytest.mark.parametrize("weight", [0.3, 1.0])
def test_fit_loss_is_main_plus_weighted_aux(weight):
    model = _tiny(weight)
    x, y = _data()
    model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    main, aux1, aux2 = _heads(model, x)
    want = _ce(y, main) + weight * (_ce(y, aux1) + _ce(y, aux2))
    history = model.fit(x, y, batch_size=len(x), epochs=1, verbose=0, shuffle=False)
    assert history.history["loss"][0] == pytest.approx(want, rel=1e-5)
    # Metrics describe the main head (computed before the update).
    acc = float(np.mean(np.argmax(main, -1) == y))
    assert history.history["accuracy"][0] == pytest.approx(acc)


def test_training_reduces_all_heads_and_inference_is_main_only():
    model = _tiny()
    x, y = _data()
    model.compile(keras.optimizers.SGD(0.2), "sparse_categorical_crossentropy")
    before = [_ce(y, p) for p in _heads(model, x)]
    history = model.fit(x, y, batch_size=len(x), epochs=15, verbose=0)
    after = [_ce(y, p) for p in _heads(model, x)]
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert all(a < b for a, b in zip(after, before))  # the aux heads train too
    pred = model.predict(x, verbose=0)
    assert isinstance(pred, np.ndarray) and pred.shape == (16, 3)
    # evaluate: the main head's loss only.
    assert model.evaluate(x, y, verbose=0) == pytest.approx(after[0], rel=1e-5)
    # training=True and training=False give the same type and shape.
    out_train = model(x, training=True)
    out_test = model(x, training=False)
    assert out_train.shape == out_test.shape == (16, 3)
    assert len(model.outputs) == 1


def test_logits_loss_object_and_zero_weight():
    model = _tiny(0.0, activation=None)
    x, y = _data()
    model.compile(keras.optimizers.SGD(0.0),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    logits = keras.ops.convert_to_numpy(model(x, training=False))
    p = keras.ops.convert_to_numpy(keras.ops.softmax(logits))
    history = model.fit(x, y, batch_size=len(x), epochs=1, verbose=0)
    assert history.history["loss"][0] == pytest.approx(_ce(y, p), rel=1e-5)


def test_bad_arguments():
    inputs = keras.Input((2,))
    out = keras.layers.Dense(2)(inputs)
    with pytest.raises(ValueError, match="aux_loss_weight=-1"):
        AuxiliaryLossModel(inputs, out, [out], aux_loss_weight=-1)
    with pytest.raises(ValueError, match="outputs="):
        AuxiliaryLossModel(inputs, [out, out], [])


def test_config_json_and_keras_file_round_trip(tmp_path):
    model = _tiny(0.5)
    x, _ = _data()
    config = model.get_config()
    clone = AuxiliaryLossModel.from_config(config)
    assert clone.aux_loss_weight == 0.5 and clone.name == "tiny"
    clone.set_weights(model.get_weights())
    for a, b in zip(_heads(clone, x),
                    _heads(model, x)):
        np.testing.assert_array_equal(a, b)
    from_json = keras.models.model_from_json(model.to_json())
    assert isinstance(from_json, AuxiliaryLossModel)

    path = tmp_path / "aux.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, AuxiliaryLossModel) and loaded.aux_loss_weight == 0.5
    for a, b in zip(_heads(loaded, x),
                    _heads(model, x)):
        np.testing.assert_array_equal(a, b)


_MIRRORED_SCRIPT = r"""
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from kerascnn.layers import AuxiliaryLossModel
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    inputs = keras.Input((6,))
    h = keras.layers.Dense(16, activation="relu")(inputs)
    main = keras.layers.Dense(3, activation="softmax")(h)
    aux = keras.layers.Dense(3, activation="softmax")(h)
    model = AuxiliaryLossModel(inputs, main, [aux], aux_loss_weight=0.3)
    model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
rng = np.random.default_rng(0)
x = rng.standard_normal((16, 6)).astype("float32")
y = rng.integers(0, 3, 16).astype("int32")
p_main, p_aux = [np.asarray(t, np.float64) for t in model.with_aux_outputs()(x)]
ce = lambda p: np.mean(-np.log(p[np.arange(16), y]))
ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
loss = model.fit(ds, epochs=1, verbose=0).history["loss"][0]
print("RESULT", strategy.num_replicas_in_sync, loss, ce(p_main) + 0.3 * ce(p_aux))
"""


@pytest.mark.tf_only
def test_mirrored_strategy_two_replicas():
    import os
    import subprocess
    import sys

    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run([sys.executable, "-c", _MIRRORED_SCRIPT], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(l for l in result.stdout.splitlines() if l.startswith("RESULT"))
    replicas, loss, want = line.split()[1:]
    assert int(replicas) == 2
    assert float(loss) == pytest.approx(float(want), rel=1e-5)
