"""GoogLeNet(aux_logits=True) trains on plain (x, y) with a plain compile: the loss
is main + 0.3 * (aux1 + aux2); predict and inference see the main head only."""

import keras
import numpy as np
import pytest

from kerascnn import applications as apps

from _zoo_helpers import images


def _ce(y, p):
    p = np.asarray(p, np.float64)
    return float(np.mean(-np.log(p[np.arange(len(y)), y])))


@pytest.mark.tf_only  # the mechanism runs under jax in tests/layers/test_auxiliary.py
def test_fit_step_loss_is_main_plus_aux_and_decreases():
    # Dropout off, so that the hand computation sees the same graph as the step.
    model = apps.GoogLeNet(aux_logits=True, input_shape=(65, 65, 3), classes=4,
                           dropout=0.0, aux_dropout=0.0)
    x = images((65, 65, 3), n=8) / 60.0
    y = np.array([0, 1, 2, 3, 0, 1, 2, 3], "int32")
    # Eager steps: tracing GoogLeNet's train step costs more CPU than 4 steps of it; the
    # traced step of the same AuxiliaryLossModel is tests/layers/test_auxiliary.py's.
    model.compile(keras.optimizers.SGD(0.01, momentum=0.9),
                  "sparse_categorical_crossentropy", metrics=["accuracy"], run_eagerly=True)
    main, aux1, aux2 = [keras.ops.convert_to_numpy(t)
                        for t in model.with_aux_outputs()(x, training=False)]
    want = _ce(y, main) + 0.3 * (_ce(y, aux1) + _ce(y, aux2))
    assert abs(want - _ce(y, main)) > 0.5  # the aux terms matter
    history = model.fit(x, y, batch_size=8, epochs=4, verbose=0, shuffle=False)
    losses = history.history["loss"]
    assert losses[0] == pytest.approx(want, rel=1e-4)
    assert history.history["accuracy"][0] == pytest.approx(np.mean(main.argmax(-1) == y))
    assert losses[-1] < losses[0]

    pred = model.predict(x, verbose=0)
    assert isinstance(pred, np.ndarray) and pred.shape == (8, 4)
    main_after = keras.ops.convert_to_numpy(model.with_aux_outputs()(x, training=False)[0])
    np.testing.assert_allclose(pred, main_after, rtol=1e-5, atol=1e-6)
    # (evaluate = main head only: tests/layers/test_auxiliary.py, same class.)
