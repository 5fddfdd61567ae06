"""Grad-CAM, CAM and the score map against the papers' formulas computed here.

- Grad-CAM (Selvaraju et al., ICCV 2017, eq. 1-2) against an implementation written in
  this test: ``tf.GradientTape`` on a sub-model ``image -> [A, classifier input]``, the
  pre-softmax score ``x @ W + b``, ``alpha = mean_ij dy/dA``, ``ReLU(sum_k alpha_k A_k)``;
  at the default layer of a GAP net and of a flatten net, and inside a residual block.
- CAM (Zhou et al., CVPR 2016) against ``A @ W[:, c]``.
- On a trained GAP net: Grad-CAM at the pooled map = ReLU(CAM) / (h * w) (Grad-CAM §3.1).
- The score map against the dense evaluation's posterior map, via a numpy convolution of
  fc6's kernel.
- Bad input: one-line errors.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from explainnets import blob_data, fc_net, resnet, trained_resnet
from kerascnn.explain import class_activation_map, grad_cam, last_conv_layer, score_map

pytestmark = pytest.mark.tf_only  # the reference is a tf.GradientTape; JAX: test_jax.py


def reference_grad_cam(model, x, layer, dense_name, classes=None):
    """Grad-CAM from the paper's equations, written independently of kerascnn."""
    dense = model.get_layer(dense_name)
    sub = keras.Model(model.input, [model.get_layer(layer).output, dense.input])
    with tf.GradientTape() as tape:
        a, features = sub(x, training=False)
        logits = tf.matmul(features, dense.kernel) + dense.bias  # before the softmax
        c = tf.argmax(logits, -1) if classes is None else tf.constant(classes, tf.int64)
        score = tf.reduce_sum(tf.gather(logits, c, batch_dims=1))
    grads = tape.gradient(score, a)
    alpha = tf.reduce_mean(grads, axis=(1, 2))  # eq. 1
    return tf.nn.relu(tf.einsum("nhwk,nk->nhw", a, alpha)).numpy()  # eq. 2


def _close(got, want, tol=1e-5):
    assert got.shape == want.shape
    scale = max(1.0, float(np.abs(want).max()))
    assert float(np.abs(got - want).max()) <= tol * scale


@pytest.mark.parametrize("which", ["gap_default", "gap_inside_block", "flatten_default"])
def test_grad_cam_is_the_papers_formula(which):
    if which.startswith("gap"):
        model, dense, size = resnet(16, 3), "predictions", 16
        layer = "conv4_block3_out" if which == "gap_default" else "conv3_block2_1_conv"
    else:
        model, dense, size, layer = fc_net(32, 5), "fc8", 32, "pool5"
    x = np.random.default_rng(1).normal(0, 60, (3, size, size, 3)).astype(np.float32)
    if which != "gap_inside_block":
        assert last_conv_layer(model) == layer  # found by the head's names
    maps = grad_cam(model, x, layer=None if which != "gap_inside_block" else layer)
    want = reference_grad_cam(model, x, layer, dense)
    assert maps.dtype == np.float32 and (maps >= 0).all() and maps.max() > 0
    _close(maps, want)
    # an explicit class per image
    classes = [2, 0, 1]
    _close(grad_cam(model, x, classes, layer=layer), reference_grad_cam(model, x, layer, dense, classes))


def test_cam_is_features_times_classifier_weights():
    model = resnet(16, 3)
    x = np.random.default_rng(2).normal(0, 60, (2, 16, 16, 3)).astype(np.float32)
    dense = model.get_layer("predictions")
    dense.bias.assign(np.array([3.0, -2.0, 5.0], np.float32))  # the CAM has no bias term
    a = keras.Model(model.input, model.get_layer("conv4_block3_out").output)(x).numpy()
    w = dense.kernel.numpy()
    for classes in ([1, 2], 0):
        got = class_activation_map(model, x, classes)
        c = classes if isinstance(classes, list) else [classes] * 2
        want = np.stack([a[i] @ w[:, c[i]] for i in range(2)])
        _close(got, want)
    top = np.argmax(model.predict(x, verbose=0), -1)
    _close(class_activation_map(model, x), np.stack([a[i] @ w[:, top[i]] for i in range(2)]))


def test_grad_cam_equals_relu_cam_on_a_trained_gap_net():
    model, history = trained_resnet(steps=40)
    x, y = blob_data(64, 16, seed=5)
    accuracy = (np.argmax(model.predict(x, verbose=0), -1) == y).mean()
    assert accuracy > 0.5, accuracy  # it has learnt something (chance: 1/3)
    x = x[:8]
    g = grad_cam(model, x)
    cam = class_activation_map(model, x)
    relu = np.maximum(cam, 0)
    assert g.max() > 0 and (relu > 0).any()
    for i in range(len(x)):  # up to a positive constant per image ...
        k = float((g[i] * relu[i]).sum() / (relu[i] ** 2).sum())
        assert k > 0
        _close(g[i], k * relu[i], tol=1e-4)
        assert k == pytest.approx(1 / (8 * 8), rel=1e-4)  # ... which is 1 / (h * w)


def test_score_map_is_the_dense_evaluations_posterior_map():
    model = fc_net(32, 5)
    x = np.random.default_rng(3).normal(0, 60, (1, 48, 40, 3)).astype(np.float32)
    got = score_map(model, x, 3)
    # by hand: the trunk to pool5 (12x10x8), fc6 as an 8x8 valid convolution, fc7, fc8
    trunk = keras.Model(model.input, model.get_layer("pool5").output)
    features = keras.Model(trunk.input, trunk.output)  # the same layers, any input size
    inputs = keras.Input((None, None, 3))
    y = inputs
    for name in ("conv1", "pool1", "conv2", "pool5"):
        y = model.get_layer(name)(y)
    a = keras.Model(inputs, y)(x).numpy()[0]
    w6, b6 = (v.numpy() for v in model.get_layer("fc6").weights)
    w6 = w6.reshape(8, 8, 8, -1)
    h, w = a.shape[0] - 7, a.shape[1] - 7
    want = np.zeros((h, w))
    for i in range(h):
        for j in range(w):
            f6 = np.maximum(np.einsum("hwc,hwcu->u", a[i:i + 8, j:j + 8], w6) + b6, 0)
            f7 = np.maximum(f6 @ model.get_layer("fc7").kernel.numpy() + model.get_layer("fc7").bias.numpy(), 0)
            logits = f7 @ model.get_layer("fc8").kernel.numpy() + model.get_layer("fc8").bias.numpy()
            p = np.exp(logits - logits.max())
            want[i, j] = (p / p.sum())[3]
    assert got.shape == (1, h, w) == (1, 5, 3)
    _close(got[0], want.astype(np.float32), tol=1e-5)


def test_bad_input_is_one_line():
    model = resnet(16, 3)
    x = np.zeros((1, 16, 16, 3), np.float32)
    cases = [
        (dict(layer="conv4_block3_outt"), "close names): conv4_block3_out"),
        (dict(layer="avg_pool"), "not a 4-D feature map"),
        (dict(class_index=3), "out of range: the model has 3 classes (0-2)"),
        (dict(class_index="bird", class_names=["cat", "dog", "bird of prey"]), "Unknown class name 'bird'"),
        (dict(class_index="dgo", class_names=["cat", "dog", "bird"]), "Close names: dog"),
    ]
    for kwargs, text in cases:
        with pytest.raises(ValueError) as err:
            grad_cam(model, x, **kwargs)
        assert text in str(err.value) and "\n" not in str(err.value), str(err.value)
    assert grad_cam(model, x, class_index="DOG", class_names=["cat", "dog", "bird"]).shape == (1, 4, 4)
    with pytest.raises(ValueError, match="empty"):
        grad_cam(model, [])
    inputs = keras.Input((10,))
    tabular = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="predictions")(inputs))
    with pytest.raises(ValueError, match="must take one batch of images"):
        grad_cam(tabular, np.zeros((1, 10), np.float32))
    with pytest.raises(ValueError, match="method='gradcam'.*method='score_map'"):
        class_activation_map(fc_net(), np.zeros((1, 32, 32, 3), np.float32))
    with pytest.raises(ValueError, match="method='cam'"):
        score_map(model, x)
    with pytest.raises(ValueError, match="channels"):
        grad_cam(model, np.zeros((1, 16, 16, 1), np.float32))
