"""Impossible arguments raise ValueError naming the argument, before any layer is
built; ``weights`` loads a file after building."""

import numpy as np
import pytest

from kerascnn import applications as apps


@pytest.mark.parametrize(
    "builder,kwargs,received",
    [
        (apps.AlexNet, {"input_shape": (224, 224, 3)}, "input_shape=(224, 224, 3)"),
        (apps.VGG16, {"input_shape": (64, 64, 3)}, "input_shape=(64, 64, 3)"),
        (apps.VGG11, {"include_top": False, "input_shape": (16, 16, 3)}, "input_shape="),
        (apps.AlexNet, {"include_top": False, "input_shape": (66, 66, 3)}, "input_shape="),
        (apps.GoogLeNet, {"aux_logits": True, "input_shape": (48, 48, 3)}, "input_shape="),
        (apps.GoogLeNet, {"aux_logits": True, "include_top": False}, "aux_logits=True"),
        (apps.GoogLeNet, {"dropout": 1.0}, "dropout=1.0"),
        (apps.GoogLeNet, {"aux_loss_weight": -0.3}, "aux_loss_weight=-0.3"),
        (apps.ResNet18, {"shortcut": "D"}, "shortcut='D'"),
        (apps.ResNet50, {"stride_in_1x1": "yes"}, "stride_in_1x1='yes'"),
        (apps.ResNet20, {"classes": 0}, "classes=0"),
        (apps.ResNet20, {"classes": 2.5}, "classes=2.5"),
        (apps.ResNet20, {"weights": "imagenet"}, "weights='imagenet'"),
        (apps.ResNet20, {"weights": "/nonexistent/w.weights.h5"}, "weights='/nonexistent"),
        (apps.ResNet20, {"pooling": "mean", "include_top": False}, "pooling='mean'"),
        (apps.ResNet20, {"input_shape": (32, 32, 4)}, "input_shape=(32, 32, 4)"),
        (apps.ResNet20, {"input_shape": (32, 32)}, "input_shape=(32, 32)"),
        (apps.ResNet20, {"input_tensor": np.zeros((1, 32, 32, 3))}, "input_tensor="),
        (apps.ResNet20, {"width": 0}, "width=0"),
        (apps.ResNet20, {"width": 8.0}, "width=8.0"),
        (apps.Plain20, {"output_stride": 8}, "output_stride=8"),
        (apps.ResNet20, {"blocks": 0}, "blocks=0"),
        (apps.Plain32, {"blocks": 2.0}, "blocks=2.0"),
        (apps.AlexNet, {"groups": 3}, "groups=3"),
        (apps.VGG, {"config": "F"}, "config='F'"),
    ],
)
def test_bad_arguments_raise_before_building(builder, kwargs, received):
    with pytest.raises(ValueError) as info:
        builder(**kwargs)
    assert f"Received: {received}" in str(info.value)


def test_include_top_size_error_says_why():
    with pytest.raises(ValueError, match="227x227.*fc6"):
        apps.AlexNet(input_shape=(224, 224, 3))
    with pytest.raises(ValueError, match="224x224.*fc6"):
        apps.VGG19(input_shape=(256, 256, 3))


def test_plain_nets_take_no_shortcut_arguments():
    with pytest.raises(TypeError):
        apps.Plain20(shortcut="A")


def test_weights_path_is_loaded(tmp_path):
    model = apps.ResNet20(classes=3, input_shape=(16, 16, 1))
    path = str(tmp_path / "r20.weights.h5")
    model.save_weights(path)
    again = apps.ResNet20(classes=3, input_shape=(16, 16, 1), weights=path)
    for a, b in zip(model.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)
