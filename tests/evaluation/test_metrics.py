"""TopKError against a plain numpy reference."""

import json

import numpy as np
import pytest

from kerascnn.evaluation import TopKError, top_k_error


def _numpy_top_k_error(labels, probs, k):
    top = np.argsort(-probs, axis=1, kind="stable")[:, :k]  # ties: lower class id first
    return 100.0 * (1.0 - np.mean((top == labels[:, None]).any(1)))


@pytest.mark.parametrize("k", [1, 5])
def test_streaming_equals_numpy_on_the_whole_array(k):
    rng = np.random.RandomState(0)
    probs = rng.dirichlet(np.ones(20), size=203).astype(np.float32)
    labels = rng.randint(0, 20, 203)
    metric = TopKError(k)
    for start in range(0, 203, 32):  # uneven last batch
        metric.update_state(labels[start : start + 32], probs[start : start + 32])
    want = _numpy_top_k_error(labels, probs, k)
    assert float(metric.result()) == pytest.approx(want, abs=1e-4)
    assert top_k_error(labels, probs, k) == pytest.approx(want, abs=1e-4)
    assert 0.0 < want < 100.0
    metric.reset_state()
    metric.update_state(labels[:1], np.eye(20, dtype=np.float32)[labels[:1]])
    assert float(metric.result()) == 0.0


def test_known_values_and_ties():
    probs = np.array([[0.1, 0.7, 0.2], [0.5, 0.25, 0.25], [0.2, 0.3, 0.5]], np.float32)
    labels = np.array([1, 2, 0])
    assert top_k_error(labels, probs, 1) == pytest.approx(100 * 2 / 3)
    # The tie (0.25, 0.25) is broken towards class 1, so label 2 is not in the top 2.
    assert top_k_error(labels, probs, 2) == pytest.approx(200 / 3)
    # A saturated softmax (exact zeros) does not put every class in the top 5.
    saturated = np.zeros((10, 10), np.float32)
    saturated[:, 0] = 1.0
    assert top_k_error(np.arange(10), saturated, 5) == pytest.approx(50.0)
    assert top_k_error(labels, probs, 2) == pytest.approx(_numpy_top_k_error(labels, probs, 2))
    assert top_k_error(labels, probs, 5) == 0.0  # k >= classes


def test_config_round_trip_and_bad_k():
    metric = TopKError(5)
    assert metric.name == "top5_error"
    clone = TopKError.from_config(json.loads(json.dumps(metric.get_config())))
    assert clone.k == 5 and clone.name == "top5_error"
    with pytest.raises(ValueError, match="k=0"):
        TopKError(0)
