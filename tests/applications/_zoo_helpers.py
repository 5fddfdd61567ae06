"""Backend-agnostic helpers of the application tests."""

import keras
import numpy as np


def gradients(model, x, y):
    """d(sparse CE)/d(trainable weights) in training mode, on TF or JAX."""
    loss_fn = keras.losses.SparseCategoricalCrossentropy()
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
    elif backend == "jax":
        import jax

        trainable = [v.value for v in model.trainable_variables]
        non_trainable = [v.value for v in model.non_trainable_variables]

        def f(tv, ntv, x, y):
            y_pred, _ = model.stateless_call(tv, ntv, x, training=True)
            return loss_fn(y, y_pred)

        # One XLA compilation instead of op-by-op dispatch (much faster on CPU).
        grads = jax.jit(jax.grad(f))(trainable, non_trainable, x, y)
    else:  # pragma: no cover
        raise ValueError(f"gradients are computed for the tensorflow and jax backends only. Received: backend={backend!r}")
    return [None if g is None else np.asarray(keras.ops.convert_to_numpy(g)) for g in grads]


def forward(model, x):
    """``model(x, training=False)`` as numpy; jitted on JAX (op-by-op is slow)."""
    if keras.backend.backend() == "jax":
        import jax

        def f(tv, ntv, x):
            return model.stateless_call(tv, ntv, x, training=False)[0]

        out = jax.jit(f)(
            [v.value for v in model.trainable_variables],
            [v.value for v in model.non_trainable_variables],
            x,
        )
    else:
        out = model(x, training=False)
    return np.asarray(keras.ops.convert_to_numpy(out))


def images(shape, n=2, seed=0):
    """Mean-subtracted pixels on the 0-255 scale."""
    return (np.random.default_rng(seed).standard_normal((n, *shape)) * 60).astype("float32")


def assert_every_weight_has_gradient(model, x, y):
    grads = gradients(model, x, y)
    assert len(grads) == len(model.trainable_variables) > 0
    missing = [
        v.path for v, g in zip(model.trainable_variables, grads)
        if g is None or not np.all(np.isfinite(g)) or not np.any(g != 0)
    ]
    assert not missing, f"no (finite, non-zero) gradient for {missing}"
