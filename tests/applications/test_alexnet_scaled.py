"""The AlexNet paper's small networks (alexnet_fig1, alexnet_small): parameters counted
by hand, the ablation options' layers, get_config, refusals; AlexNet itself unchanged
by the shared trunk."""

import keras
import numpy as np
import pytest

from kerascnn import applications as apps


def trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def conv(k, c_in, c_out):
    return k * k * c_in * c_out + c_out


def fig1_params(width=32, channels=3, classes=10, side=32):
    s = side
    for _ in range(3):  # 3x3/2 "same" pools
        s = -(-s // 2)
    return (conv(5, channels, width) + conv(5, width, width) + conv(5, width, 2 * width)
            + s * s * 2 * width * classes + classes)


def small_params(width=0.125, fc=256, channels=3, classes=10, side=32):
    f = [round(n * width) for n in (96, 256, 384, 384, 256)]  # the paper's filters
    s = side
    for _ in range(3):  # pool1, pool2, pool5: stride 2, "same"
        s = -(-s // 2)
    return (conv(5, channels, f[0]) + conv(5, f[0], f[1]) + conv(3, f[1], f[2])
            + conv(3, f[2], f[3]) + conv(3, f[3], f[4])
            + (s * s * f[4] * fc + fc) + (fc * fc + fc) + (fc * classes + classes))


@pytest.mark.parametrize("kwargs,side,channels", [
    ({}, 32, 3),
    ({"activation": "tanh", "width": 8, "classes": 4}, 28, 1),
])
def test_fig1_params_by_hand(kwargs, side, channels):
    model = apps.AlexNetFig1(input_shape=(side, side, channels), **kwargs)
    expected = fig1_params(kwargs.get("width", 32), channels, kwargs.get("classes", 10), side)
    assert trainable(model) == expected
    if side == 32 and not kwargs:
        assert apps.get_model_info("alexnet_fig1").params == expected == 89_578
    act = kwargs.get("activation", "relu")
    for i in (1, 2, 3):
        assert model.get_layer(f"conv{i}").activation is getattr(keras.activations, act)
        assert model.get_layer(f"conv{i}").kernel_size == (5, 5)


@pytest.mark.parametrize("kwargs,side,channels", [
    ({}, 32, 3),
    ({"width": 0.25, "fc_width": 64, "lrn": False, "overlap": False, "dropout": 0.0,
      "classes": 3}, 28, 1),
])
def test_small_params_by_hand_and_beside_alexnets(kwargs, side, channels):
    model = apps.AlexNetSmall(input_shape=(side, side, channels), **kwargs)
    expected = small_params(kwargs.get("width", 0.125), kwargs.get("fc_width", 256), channels,
                            kwargs.get("classes", 10), side)
    assert trainable(model) == expected
    if not kwargs:
        from kerascnn.reproduce.alexnet_studies import PAPER_ALEXNET_PARAMS, SMALL_PARAMS

        assert apps.get_model_info("alexnet_small").params == expected == SMALL_PARAMS
        assert PAPER_ALEXNET_PARAMS == 60_965_224  # PAPERS.md
        assert apps.count_macs(model) == apps.get_model_info("alexnet_small").macs


def test_the_ablation_options_change_only_their_layers():
    names = lambda m: [layer.name for layer in m.layers]  # noqa: E731
    full = apps.AlexNetSmall(input_shape=(16, 16, 1), width=0.05, fc_width=8)
    assert names(full) == ["input", "scale", "conv1", "norm1", "pool1", "conv2", "norm2",
                           "pool2", "conv3", "conv4", "conv5", "pool5", "flatten", "fc6",
                           "drop6", "fc7", "drop7", "fc8"]
    assert full.get_layer("pool1").pool_size == (3, 3) and full.get_layer("pool1").strides == (2, 2)
    assert full.get_layer("drop6").rate == 0.5
    no_lrn = apps.AlexNetSmall(input_shape=(16, 16, 1), width=0.05, fc_width=8, lrn=False)
    assert [n for n in names(full) if n not in names(no_lrn)] == ["norm1", "norm2"]
    flat = apps.AlexNetSmall(input_shape=(16, 16, 1), width=0.05, fc_width=8, overlap=False)
    for pool in ("pool1", "pool2", "pool5"):
        assert flat.get_layer(pool).pool_size == (2, 2) and flat.get_layer(pool).strides == (2, 2)
    # the same map sizes, so the same parameters
    assert trainable(flat) == trainable(full) == trainable(no_lrn)
    assert flat.get_layer("flatten").input.shape == full.get_layer("flatten").input.shape
    nodrop = apps.AlexNetSmall(input_shape=(16, 16, 1), width=0.05, fc_width=8, dropout=0.0)
    assert nodrop.get_layer("drop7").rate == 0.0


def test_get_config_round_trips_and_outputs_match():
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 1)).astype("float32")
    for model in (apps.AlexNetSmall(input_shape=(16, 16, 1), width=0.05, fc_width=8),
                  apps.AlexNetFig1(input_shape=(16, 16, 1), width=4, activation="tanh")):
        again = keras.Model.from_config(model.get_config())
        again.set_weights(model.get_weights())
        np.testing.assert_allclose(np.asarray(again(x, training=False)),
                                   np.asarray(model(x, training=False)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("builder,kwargs,named", [
    (apps.AlexNetFig1, {"activation": "sigmoid"}, "activation"),
    (apps.AlexNetFig1, {"width": 0}, "width"),
    (apps.AlexNetSmall, {"dropout": 1.0}, "dropout"),
    (apps.AlexNetSmall, {"lrn": "yes"}, "lrn"),
    (apps.AlexNetSmall, {"width": -1}, "width"),
    (apps.AlexNetSmall, {"input_shape": (4, 4, 3)}, "input"),
])
def test_bad_arguments_name_themselves(builder, kwargs, named):
    with pytest.raises(ValueError, match=named):
        builder(**kwargs)


def test_alexnet_is_unchanged_by_the_shared_trunk():
    # the trunk alone (the full net's 60,965,224 is checked in test_zoo_counts): PAPERS.md's
    # count minus the three fc layers of the 6x6x256 map
    model = apps.AlexNet(include_top=False, input_shape=(67, 67, 3))
    fc = (6 * 6 * 256 * 4096 + 4096) + (4096 * 4096 + 4096) + (4096 * 1000 + 1000)
    assert trainable(model) == 60_965_224 - fc
    for pool in ("pool1", "pool2", "pool5"):
        layer = model.get_layer(pool)
        assert (layer.pool_size, layer.strides, layer.padding) == ((3, 3), (2, 2), "valid")
    assert model.get_layer("conv1").kernel_size == (11, 11)
    assert model.get_layer("conv1").strides == (4, 4)
    assert model.get_layer("conv2").groups == 2
    assert model.get_layer("norm1").get_config()["alpha"] == pytest.approx(1e-4)


def test_the_recipes_are_the_papers():
    from kerascnn.training.recipe import load_recipe

    fig1 = load_recipe("alexnet_fig1_cifar10")  # Figure 1: no regularisation of any kind
    assert (fig1.optimizer.weight_decay, fig1.schedule.name) == (0.0, "constant")
    assert fig1.data.policy_options == {"pad": 0, "random_crop": False, "flip": False}
    small = load_recipe("alexnet_small_cifar10")  # §5: batch 128, 0.01, 0.9, 5e-4
    assert (small.training.batch_size, small.optimizer.learning_rate,
            small.optimizer.momentum, small.optimizer.weight_decay) == (128, 0.01, 0.9, 5e-4)
    assert small.model.options["dropout"] == 0.5 and small.model.options["overlap"] is True
