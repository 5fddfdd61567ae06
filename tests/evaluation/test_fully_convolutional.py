"""Fully-convolutional conversion of AlexNet/VGG heads (VGG paper §3.2).

The networks here follow PAPERS.md's layer tables with reduced widths (for speed) and the
kerascnn.applications head names; the real builders are checked too when present."""

import json

import keras
import numpy as np
import pytest

from kerascnn.evaluation import DenseAsConv, has_convertible_head, to_fully_convolutional

# PAPERS.md's VGG table; ints are 3x3 convs, "c" + int a 1x1 conv, "M" a 2x2 max-pool.
VGG_CFGS = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "C": [64, 64, "M", 128, 128, "M", 256, 256, "c256", "M", 512, 512, "c512", "M", 512, 512, "c512", "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M"] + [256] * 4 + ["M"] + [512] * 4 + ["M"] + [512] * 4 + ["M"],
}


def _head(x, width, classes):
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(width, activation="relu", name="fc6")(x)
    x = keras.layers.Dropout(0.5, name="drop6")(x)
    x = keras.layers.Dense(width, activation="relu", name="fc7")(x)
    x = keras.layers.Dropout(0.5, name="drop7")(x)
    return keras.layers.Dense(classes, activation="softmax", name="fc8")(x)


def small_vgg(config, size=224, div=16, classes=7):
    inputs = keras.Input((size, size, 3))
    x = inputs
    for i, v in enumerate(VGG_CFGS[config]):
        if v == "M":
            x = keras.layers.MaxPooling2D(2, name=f"pool{i}")(x)
        elif isinstance(v, str):
            x = keras.layers.Conv2D(int(v[1:]) // div, 1, activation="relu", name=f"conv{i}")(x)
        else:
            x = keras.layers.Conv2D(v // div, 3, padding="same", activation="relu", name=f"conv{i}")(x)
    return keras.Model(inputs, _head(x, 4096 // div // 4, classes), name=f"vgg_{config}")


def small_alexnet(groups, div=8, classes=7):
    inputs = keras.Input((227, 227, 3))
    x = keras.layers.Conv2D(96 // div, 11, strides=4, activation="relu", name="conv1")(inputs)
    x = keras.layers.MaxPooling2D(3, 2, name="pool1")(x)
    x = keras.layers.Conv2D(256 // div, 5, padding="same", groups=groups, activation="relu", name="conv2")(x)
    x = keras.layers.MaxPooling2D(3, 2, name="pool2")(x)
    x = keras.layers.Conv2D(384 // div, 3, padding="same", activation="relu", name="conv3")(x)
    x = keras.layers.Conv2D(384 // div, 3, padding="same", groups=groups, activation="relu", name="conv4")(x)
    x = keras.layers.Conv2D(256 // div, 3, padding="same", groups=groups, activation="relu", name="conv5")(x)
    x = keras.layers.MaxPooling2D(3, 2, name="pool5")(x)
    assert x.shape[1:3] == (6, 6)
    return keras.Model(inputs, _head(x, 64, classes), name=f"alexnet_g{groups}")


def _randomize(model, seed=0):
    rng = np.random.RandomState(seed)
    for w in model.weights:  # non-zero biases so that they are exercised too
        w.assign(rng.normal(0, 0.05 if len(w.shape) > 1 else 0.5, w.shape).astype(np.float32))


def _check(model, size, kernel):
    _randomize(model)
    fcn = to_fully_convolutional(model)
    assert fcn.get_layer("fc6_conv").kernel_size == (kernel, kernel)
    x = np.random.RandomState(1).uniform(-100, 100, (2, size, size, 3)).astype(np.float32)
    want = model(x, training=False).numpy()
    got = fcn(x, training=False).numpy()
    assert np.abs(got - want).max() <= 1e-5
    big = int(size * 1.5)
    xb = np.random.RandomState(2).uniform(-100, 100, (1, big, big, 3)).astype(np.float32)
    score_map = to_fully_convolutional(model, average=False)(xb).numpy()
    assert score_map.shape[1] > 1 and score_map.shape[1] == score_map.shape[2]
    np.testing.assert_allclose(score_map.sum(-1), 1.0, rtol=1e-5)  # softmax at every location
    np.testing.assert_allclose(fcn(xb).numpy(), score_map.mean(axis=(1, 2)), rtol=1e-5, atol=1e-7)
    return fcn, score_map


@pytest.mark.parametrize("groups", [1, 2])
def test_alexnet_head_as_6x6_conv(groups):
    fcn, score_map = _check(small_alexnet(groups), 227, 6)
    # 340 px: conv1 83, pool1 41, pool2 20, pool5 9 -> 9 - 6 + 1 = 4x4 class-score map.
    assert score_map.shape == (1, 4, 4, 7)


@pytest.mark.parametrize("config", list(VGG_CFGS))
def test_vgg_head_as_7x7_conv(config):
    _, score_map = _check(small_vgg(config), 224, 7)
    assert score_map.shape == (1, 4, 4, 7)  # 336 px -> 10x10 features -> 4x4 map


def test_weights_are_shared_not_copied():
    model = small_vgg("A", size=64, div=32)  # 2x2 features
    fcn = to_fully_convolutional(model)
    assert {id(v) for v in fcn.trainable_weights} == {id(v) for v in model.trainable_weights}
    x = np.random.RandomState(3).uniform(-50, 50, (2, 96, 96, 3)).astype(np.float32)
    before = fcn(x).numpy()
    fc6 = model.get_layer("fc6")
    fc6.kernel.assign(fc6.kernel.numpy() * 1.7)  # "training" the original model...
    after = fcn(x).numpy()
    assert np.abs(after - before).max() > 1e-4  # ...shows in the converted one
    xs = x[:, :64, :64]
    np.testing.assert_allclose(fcn(xs).numpy(), model(xs).numpy(), atol=1e-5)


def test_dense_as_conv_config_round_trip():
    dense = keras.layers.Dense(5, activation="relu", name="fc")
    dense.build((None, 2 * 2 * 3))
    layer = DenseAsConv(dense, (2, 2), name="fc_conv")
    config = json.loads(json.dumps(layer.get_config()))
    clone = DenseAsConv.from_config(config)
    assert clone.kernel_size == (2, 2) and clone.dense.units == 5 and clone.name == "fc_conv"
    x = np.random.RandomState(0).normal(size=(1, 4, 5, 3)).astype(np.float32)
    assert clone(x).shape == (1, 3, 4, 5)


def test_model_without_head_is_refused():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3, name="predictions")(x), name="gap_net")
    assert not has_convertible_head(model)
    with pytest.raises(ValueError, match="gap_net"):
        to_fully_convolutional(model)


def _builder(name):
    from kerascnn import applications

    return getattr(applications, name)


@pytest.mark.parametrize("groups", [1, 2])
def test_real_alexnet_builder(groups):
    model = _builder("AlexNet")(groups=groups, classes=10)
    x = np.random.RandomState(1).uniform(-100, 100, (1, 227, 227, 3)).astype(np.float32)
    fcn = to_fully_convolutional(model)
    assert np.abs(fcn(x).numpy() - model(x, training=False).numpy()).max() <= 1e-5
    score_map = to_fully_convolutional(model, average=False)(np.zeros((1, 340, 340, 3), np.float32))
    assert score_map.shape[0] == 1 and score_map.shape[1] > 1 and score_map.shape[-1] == 10


@pytest.mark.parametrize("config", ["A", "E"])
def test_real_vgg_builder(config):
    # The real builder needs 224 px with its head: the smallest and deepest configs (all of A..E: replicas above).
    model = _builder("VGG")(config=config, classes=10)
    fcn = to_fully_convolutional(model)
    assert fcn.get_layer("fc6_conv").kernel_size == (7, 7)
    x = np.random.RandomState(1).uniform(-100, 100, (1, 224, 224, 3)).astype(np.float32)
    assert np.abs(fcn(x).numpy() - model(x, training=False).numpy()).max() <= 1e-5
    score_map = to_fully_convolutional(model, average=False)(np.zeros((1, 336, 336, 3), np.float32))
    assert score_map.shape == (1, 4, 4, 10)  # 336 px -> 10x10 features -> 4x4 map
