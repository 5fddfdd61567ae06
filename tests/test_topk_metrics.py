"""One top-k rule for training and evaluation (kerascnn.metrics): ties broken as
``tf.math.top_k``, checked against numpy's stable sort; a compiled ``.keras`` file
reloads with ``compile=True`` and evaluates to the same numbers."""

import numpy as np
import pytest

import keras

from kerascnn import metrics as M

pytestmark = pytest.mark.tf_only  # compile / fit / evaluate on the TensorFlow backend


def _numpy_error(labels, probs, k):
    top = np.argsort(-probs, axis=1, kind="stable")[:, :k]  # ties: the lower class id first
    return 100.0 * (1.0 - np.mean((top == np.asarray(labels)[:, None]).any(1)))


def test_one_registered_class_for_training_and_evaluation():
    import kerascnn.evaluation.metrics as ev
    import kerascnn.training.metrics as tr

    assert ev.TopKError is tr.TopKError is M.TopKError
    assert keras.saving.get_registered_object("kerascnn>TopKError") is M.TopKError
    assert keras.saving.get_registered_object("kerascnn>TopKAccuracy") is M.TopKAccuracy
    assert [type(m) for m in tr.default_metrics()] == [M.TopKAccuracy, M.TopKAccuracy,
                                                        M.TopKError, M.TopKError]


def test_saturated_wrong_one_hot_top5_error_is_50_percent():
    """A one-hot on class 0 for labels 3 and 7 of 10 classes. With
    ties broken as top_k, label 3 ranks 4th (0, 1, 2 ahead), label 7 8th: top-5 error
    50 %. Keras' top-k accuracy counts every tied zero as a hit (error 0)."""
    from kerascnn.training.metrics import default_metrics

    probs = np.zeros((2, 10), np.float32)
    probs[:, 0] = 1.0
    labels = np.array([3, 7])
    assert _numpy_error(labels, probs, 5) == 50.0
    got = {}
    for metric in default_metrics():
        metric.update_state(labels, probs)
        got[metric.name] = float(metric.result())
    assert got == pytest.approx({"top1_accuracy": 0.0, "top5_accuracy": 0.5,
                                 "top1_error": 100.0, "top5_error": 50.0})
    keras_top5 = keras.metrics.SparseTopKCategoricalAccuracy(k=5)
    keras_top5.update_state(labels, probs)
    assert float(keras_top5.result()) == 1.0  # the bug the rule fixes
    import tensorflow as tf

    assert sorted(set(tf.math.top_k(probs, 5).indices.numpy().ravel())) == [0, 1, 2, 3, 4]


def test_streaming_accuracy_and_error_agree_with_numpy():
    rng = np.random.default_rng(3)
    probs = np.round(rng.random((61, 12)), 1).astype(np.float32)  # many ties
    labels = rng.integers(0, 12, 61)
    for k in (1, 5):
        err, acc = M.TopKError(k), M.TopKAccuracy(k)
        for start in range(0, 61, 16):
            err.update_state(labels[start:start + 16], probs[start:start + 16])
            acc.update_state(labels[start:start + 16], probs[start:start + 16])
        want = _numpy_error(labels, probs, k)
        assert float(err.result()) == pytest.approx(want, abs=1e-4)
        assert float(acc.result()) == pytest.approx(1 - want / 100, abs=1e-6)
        assert M.top_k_error(labels, probs, k) == pytest.approx(want, abs=1e-4)
    with pytest.raises(ValueError, match="k=0"):
        M.TopKAccuracy(0)


def test_compiled_keras_file_loads_with_compile_and_evaluates(tmp_path):
    from kerascnn.training.metrics import default_metrics
    from kerascnn.training.optimizers import L2SGD

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 6)).astype(np.float32)
    y = rng.integers(0, 8, 40)
    inp = keras.Input((6,))
    out = keras.layers.Dense(8, activation="softmax", name="fc")(inp)
    model = keras.Model(inp, out)
    model.compile(L2SGD(0.1, momentum=0.9), "sparse_categorical_crossentropy",
                  metrics=default_metrics())
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    again = keras.saving.load_model(path, compile=True)
    got = again.evaluate(x, y, batch_size=16, return_dict=True, verbose=0)
    probs = again.predict(x, verbose=0)
    for k in (1, 5):
        want = _numpy_error(y, probs, k)
        assert got[f"top{k}_error"] == pytest.approx(want, abs=1e-4)
        assert got[f"top{k}_accuracy"] == pytest.approx(1 - want / 100, abs=1e-6)
    assert {type(m) for m in again.metrics[1].metrics} >= {M.TopKError, M.TopKAccuracy}
