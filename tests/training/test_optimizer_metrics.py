"""L2SGD against the papers' update written in numpy; top-k errors against numpy."""

import keras
import numpy as np
import pytest

from kerascnn.training.metrics import TopKError, default_metrics
from kerascnn.training.optimizers import L2SGD, build_optimizer
from kerascnn.training.recipe import OptimizerConfig

pytestmark = pytest.mark.tf_only  # tf.data / tf.distribute / SavedModel


def _numpy_sgd(w, grads, lr, mu, lam, nesterov=False):
    v = np.zeros_like(w)
    for g in grads:
        g = g + lam * w
        v = mu * v - lr * g
        w = w + (mu * v - lr * g if nesterov else v)
    return w


@pytest.mark.parametrize("nesterov", [False, True])
def test_l2sgd_matches_the_papers_update(nesterov):
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=(4, 3)).astype(np.float32)
    grads = [rng.normal(size=(4, 3)).astype(np.float32) for _ in range(5)]
    var = keras.Variable(w0, name="kernel")
    opt = L2SGD(learning_rate=0.1, momentum=0.9, nesterov=nesterov, l2=5e-3)
    for g in grads:
        opt.apply_gradients([(keras.ops.convert_to_tensor(g), var)])
    expected = _numpy_sgd(w0.astype(np.float64), grads, 0.1, 0.9, 5e-3, nesterov)
    np.testing.assert_allclose(var.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_l2sgd_differs_from_keras_decoupled_weight_decay():
    w0 = np.ones((3,), np.float32)
    g = np.zeros((3,), np.float32)
    a, b = keras.Variable(w0), keras.Variable(w0)
    ours = L2SGD(learning_rate=0.1, momentum=0.9, l2=0.1)
    theirs = keras.optimizers.SGD(learning_rate=0.1, momentum=0.9, weight_decay=0.1)
    for _ in range(3):
        ours.apply_gradients([(keras.ops.convert_to_tensor(g), a)])
        theirs.apply_gradients([(keras.ops.convert_to_tensor(g), b)])
    # papers: the decay goes through momentum; Keras' decoupled decay does not
    np.testing.assert_allclose(a.numpy(), _numpy_sgd(w0.astype(np.float64), [g] * 3, 0.1, 0.9, 0.1),
                               rtol=1e-6)
    assert not np.allclose(a.numpy(), b.numpy())


def test_l2_exclude_and_config_roundtrip():
    w0 = np.ones((2,), np.float32)
    bias = keras.Variable(w0, name="bias")
    opt = L2SGD(learning_rate=0.1, momentum=0.0, l2=0.5, l2_exclude=["bias"])
    opt.apply_gradients([(keras.ops.zeros((2,)), bias)])
    np.testing.assert_allclose(bias.numpy(), w0)  # excluded: no decay
    config = opt.get_config()
    again = L2SGD.from_config(config)
    assert again.l2 == 0.5 and again.l2_exclude == ["bias"] and again.momentum == 0.0
    with pytest.raises(ValueError, match="weight_decay"):
        L2SGD(weight_decay=1e-4)
    with pytest.raises(ValueError, match="l2=-1"):
        L2SGD(l2=-1)


def test_build_optimizer_from_recipe():
    opt = build_optimizer(OptimizerConfig(learning_rate=0.01, weight_decay=5e-4, ema=0.999))
    assert isinstance(opt, L2SGD) and opt.l2 == 5e-4 and opt.use_ema
    assert float(opt.learning_rate.numpy()) == pytest.approx(0.01)


def test_topk_errors_match_numpy():
    rng = np.random.default_rng(1)
    probs = rng.random((50, 7)).astype(np.float32)
    labels = rng.integers(0, 7, 50)
    order = np.argsort(-probs, axis=1)
    top1 = 100 * (1 - np.mean(order[:, 0] == labels))
    top5 = 100 * (1 - np.mean([labels[i] in order[i, :5] for i in range(50)]))
    m1, m5 = TopKError(k=1), TopKError(k=5)
    for start in range(0, 50, 16):  # streaming over batches
        m1.update_state(labels[start:start + 16], probs[start:start + 16])
        m5.update_state(labels[start:start + 16], probs[start:start + 16])
    assert float(m1.result()) == pytest.approx(top1, abs=1e-4)
    assert float(m5.result()) == pytest.approx(top5, abs=1e-4)
    assert m1.name == "top1_error" and m5.name == "top5_error"
    assert TopKError.from_config(m5.get_config()).k == 5
    assert [m.name for m in default_metrics()] == [
        "top1_accuracy", "top5_accuracy", "top1_error", "top5_error"]
