"""kerascnn.layers.BatchNormalization (TensorFlow's fused kernel) against the
batch-norm formulas computed here in numpy, and against Keras' own layer."""

import keras
import numpy as np
import pytest

from kerascnn.layers import BatchNormalization

EPS = 1.001e-5


def _layers(momentum=0.9):
    ours = BatchNormalization(momentum=momentum, epsilon=EPS)
    theirs = keras.layers.BatchNormalization(momentum=momentum, epsilon=EPS)
    x = np.random.default_rng(0).normal(3.0, 2.0, (4, 5, 6, 3)).astype("float32")
    for layer in (ours, theirs):
        layer.build(x.shape)
        layer.gamma.assign([0.5, 1.5, -2.0])
        layer.beta.assign([0.1, -0.3, 2.0])
        layer.moving_mean.assign([1.0, 2.0, 3.0])
        layer.moving_variance.assign([0.5, 1.0, 4.0])
    return ours, theirs, x


def test_training_matches_numpy_and_keras():
    ours, theirs, x = _layers()
    got = keras.ops.convert_to_numpy(ours(x, training=True))
    mean, var = x.mean((0, 1, 2)), x.var((0, 1, 2))  # biased variance, as the paper
    want = (x - mean) / np.sqrt(var + EPS) * np.array([0.5, 1.5, -2.0]) + [0.1, -0.3, 2.0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ours.moving_mean),
                               0.9 * np.array([1.0, 2.0, 3.0]) + 0.1 * mean, rtol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ours.moving_variance),
                               0.9 * np.array([0.5, 1.0, 4.0]) + 0.1 * var, rtol=1e-4)
    theirs(x, training=True)
    for a, b in zip(ours.weights, theirs.weights):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(a),
                                   keras.ops.convert_to_numpy(b), rtol=1e-4, atol=1e-6)


def test_inference_uses_moving_statistics():
    ours, theirs, x = _layers()
    got = keras.ops.convert_to_numpy(ours(x, training=False))
    want = ((x - [1.0, 2.0, 3.0]) / np.sqrt(np.array([0.5, 1.0, 4.0]) + EPS)
            * [0.5, 1.5, -2.0] + [0.1, -0.3, 2.0])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got, keras.ops.convert_to_numpy(theirs(x, training=False)),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.tf_only
def test_gradients_match_keras():
    import tensorflow as tf

    ours, theirs, x = _layers()
    x = tf.constant(x)
    upstream = tf.random.stateless_normal(x.shape, [1, 2])
    grads = []
    for layer in (ours, theirs):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x, training=True) * upstream)
        grads.append(tape.gradient(loss, [x, layer.gamma.value, layer.beta.value]))
    for a, b in zip(*grads):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-3, atol=1e-4)


@pytest.mark.tf_only
def test_uses_the_fused_kernel_and_falls_back():
    import tensorflow as tf

    layer = BatchNormalization(epsilon=EPS)
    graph = tf.function(lambda v: layer(v, training=True)).get_concrete_function(
        tf.TensorSpec([2, 4, 4, 3])).graph
    assert any(op.type.startswith("FusedBatchNorm") for op in graph.get_operations())
    # epsilon below the fused kernel's minimum, or 2-D input: Keras' implementation
    for layer, spec in ((BatchNormalization(epsilon=1e-6), [2, 4, 4, 3]),
                        (BatchNormalization(epsilon=EPS), [2, 3])):
        graph = tf.function(lambda v, layer=layer: layer(v, training=True)
                            ).get_concrete_function(tf.TensorSpec(spec)).graph
        assert not any(op.type.startswith("FusedBatchNorm")
                       for op in graph.get_operations())


@pytest.mark.tf_only
@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision(policy):
    ours, _, x = _layers()
    reference = keras.ops.convert_to_numpy(ours(x, training=False))
    mixed = BatchNormalization(epsilon=EPS, dtype=policy)
    mixed.build(x.shape)
    for a, b in zip(mixed.weights, ours.weights):
        a.assign(b)
    out = mixed(x, training=False)
    assert keras.backend.standardize_dtype(out.dtype) == policy.split("_")[1]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(keras.ops.cast(out, "float32")),
                               reference, rtol=2e-2, atol=5e-2)
    mixed(x, training=True)  # the training kernel exists for this dtype


def test_round_trip(tmp_path):
    inputs = keras.Input((4, 4, 3))
    model = keras.Model(inputs, BatchNormalization(epsilon=EPS, momentum=0.8, name="bn")(inputs))
    model.get_layer("bn").moving_mean.assign([1.0, 2.0, 3.0])
    path = str(tmp_path / "bn.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    layer = loaded.get_layer("bn")
    assert type(layer) is BatchNormalization and layer.momentum == 0.8
    assert layer.get_config() == model.get_layer("bn").get_config()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.moving_mean), [1.0, 2.0, 3.0])
