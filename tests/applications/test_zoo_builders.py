"""Every registered network on tiny inputs: shapes, finite outputs, a gradient for
every trainable weight, and the keras.applications behaviour of
``include_top``/``pooling``/``classes``."""

import keras
import numpy as np
import pytest

from kerascnn import applications as apps

from _zoo_helpers import assert_every_weight_has_gradient, forward, images
from rest_shapes import structure_only

# The smallest inputs with the classifier on (AlexNet/VGG: fc6 fixes the size).
TINY = {
    "alexnet": (227, 227, 3),
    "googlenet": (48, 48, 3),
}
# Same constructor and blocks as resnet50 / resnet20 / plain20 with other repeat
# counts; their full-size builds (shapes, counts) are in test_zoo_counts.py. Left out
# here to keep the suite within its time budget.
SAME_CODE_PATH = {"resnet101", "resnet152", "resnet32", "resnet44", "resnet56",
                  "resnet110", "plain32", "plain44", "plain56", "plain110"}


def tiny_shape(info):
    if info.name in TINY:
        return TINY[info.name]
    if info.family in ("resnet_cifar", "plain_cifar"):
        return (16, 16, 1)
    return (32, 32, 3)


def _cases():
    return [name for name in apps.list_models() if name not in SAME_CODE_PATH]


@pytest.fixture(autouse=True)
def _free():
    yield
    keras.backend.clear_session()  # with a garbage collection (free_memory=True)


@pytest.mark.parametrize("name", _cases())
def test_forward_and_gradients(name):
    info = apps.get_model_info(name)
    shape = tiny_shape(info)
    classes = 5
    if info.family == "vgg":
        # include_top needs 224x224; the fc head is AlexNet's (same function), whose
        # gradients are checked at 227x227 here, and its names in test_zoo_counts.
        model = apps.get_model(name, include_top=False, pooling="avg", input_shape=shape)
        features = model.output_shape[-1]
        assert features == 512
        top = keras.layers.Dense(classes, activation="softmax")
        model = keras.Model(model.inputs, top(model.outputs[0]))
    else:
        model = apps.get_model(name, input_shape=shape, classes=classes)
    x = images(shape)
    y = np.array([1, 3], "int32")
    probs = forward(model, x)
    assert probs.shape == (2, classes)
    assert np.all(np.isfinite(probs))
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
    assert_every_weight_has_gradient(model, x, y)


@pytest.mark.parametrize(
    "builder,shape,features,pooling",
    [
        (apps.AlexNet, (99, 131, 3), (2, 3, 256), "max"),
        (apps.VGG16C, (64, 96, 1), (2, 3, 512), "avg"),
        (apps.GoogLeNet, (64, 64, 3), (2, 2, 1024), "max"),
        (apps.ResNet18, (64, 40, 1), (2, 2, 512), "avg"),
        (apps.ResNet20, (28, 28, 1), (7, 7, 64), "max"),
    ],
    ids=["AlexNet", "VGG16C", "GoogLeNet", "ResNet18", "ResNet20"],
)
def test_include_top_false_and_pooling(builder, shape, features, pooling):
    model = builder(include_top=False, input_shape=shape)
    assert model.output_shape == (None, *features)
    x = images(shape, n=1)
    features_x = forward(model, x)
    assert features_x.shape == (1, *features)
    pooled = builder(include_top=False, pooling=pooling, input_shape=shape)
    assert pooled.output_shape == (None, features[-1])
    pooled.set_weights(model.get_weights())
    reduce = np.max if pooling == "max" else np.mean
    np.testing.assert_allclose(forward(pooled, x), reduce(features_x, axis=(1, 2)),
                               rtol=1e-5, atol=1e-5)


def test_pooling_is_ignored_with_the_top():  # keras.applications behaviour
    with structure_only():
        assert apps.ResNet20(classes=3, pooling="max").output_shape == (None, 3)


def test_classes_activation_input_tensor_and_dynamic_size():
    logits = apps.ResNet20(classes=4, classifier_activation=None)
    x = images((32, 32, 3), n=3)
    out = keras.ops.convert_to_numpy(logits(x))
    assert out.shape == (3, 4) and not np.allclose(out.sum(-1), 1.0)

    inputs = keras.Input((24, 24, 1))
    scaled = keras.layers.Rescaling(1.0)(inputs)
    model = apps.ResNet20(input_tensor=scaled, classes=2)
    assert model.inputs[0] is inputs and model.output_shape == (None, 2)

    any_size = apps.ResNet18(input_shape=(None, None, 3), classes=2)
    for size in (32, 45):
        assert keras.ops.convert_to_numpy(any_size(images((size, size, 3), n=1))).shape == (1, 2)


def test_alexnet_groups():
    with structure_only():
        one = apps.AlexNet(include_top=False, groups=1, input_shape=(67, 67, 3))
        assert [one.get_layer(f"conv{i}").groups for i in range(1, 6)] == [1] * 5
        two = apps.AlexNet(include_top=False, input_shape=(67, 67, 3))
        assert [two.get_layer(f"conv{i}").groups for i in range(1, 6)] == [1, 2, 1, 2, 2]
        assert [layer.name for layer in two.layers if "norm" in layer.name] == ["norm1", "norm2"]


def test_initialisation_follows_the_papers():
    alex = apps.AlexNet(include_top=False, input_shape=(67, 67, 3))
    biases = {f"conv{i}": float(np.unique(alex.get_layer(f"conv{i}").bias.numpy())[0])
              for i in range(1, 6)}
    assert biases == {"conv1": 0.0, "conv2": 1.0, "conv3": 0.0, "conv4": 1.0, "conv5": 1.0}
    kernel = alex.get_layer("conv3").kernel.numpy()
    assert abs(kernel.std() - 0.01) < 5e-4 and abs(kernel.mean()) < 5e-4

    vgg = apps.VGG11(include_top=False, input_shape=(32, 32, 3))
    kernel = vgg.get_layer("block4_conv1").kernel.numpy()
    assert abs(kernel.std() - 0.01) < 5e-4
    assert not np.any(vgg.get_layer("block4_conv1").bias.numpy())

    res = apps.ResNet18(include_top=False, input_shape=(32, 32, 3), zero_init_residual=True)
    conv = res.get_layer("conv4_block1_1_conv")
    assert conv.bias is None
    fan_in = 3 * 3 * 128
    assert conv.kernel.numpy().std() == pytest.approx(np.sqrt(2.0 / fan_in), rel=0.02)
    assert not np.any(res.get_layer("conv3_block2_2_bn").gamma.numpy())
    assert np.all(res.get_layer("conv3_block2_1_bn").gamma.numpy() == 1)


def test_shortcut_options_and_stride_placement():
    def projections(model):
        return sorted(layer.name for layer in model.layers if layer.name.endswith("_0_conv"))

    with structure_only():  # names, strides, counts: no weight values
        b = apps.ResNet18(include_top=False, input_shape=(32, 32, 3))
        assert projections(b) == ["conv3_block1_0_conv", "conv4_block1_0_conv", "conv5_block1_0_conv"]
        c = apps.ResNet18(include_top=False, input_shape=(32, 32, 3), shortcut="C")
        assert len(projections(c)) == 8
        a = apps.ResNet18(include_top=False, input_shape=(32, 32, 3), shortcut="A")
        assert projections(a) == []
        assert a.get_layer("conv3_block1_0_pad").strides == 2
        plain = apps.Plain18(include_top=False, input_shape=(32, 32, 3))
        assert not any("add" in layer.name for layer in plain.layers)

        paper = apps.ResNet50(include_top=False, input_shape=(32, 32, 3))
        assert paper.get_layer("conv3_block1_1_conv").strides == (2, 2)
        assert paper.get_layer("conv3_block1_2_conv").strides == (1, 1)
        v15 = apps.ResNet50(include_top=False, input_shape=(32, 32, 3), stride_in_1x1=False)
        assert v15.get_layer("conv3_block1_1_conv").strides == (1, 1)
        assert v15.get_layer("conv3_block1_2_conv").strides == (2, 2)
        assert paper.count_params() == v15.count_params()


def test_googlenet_structure():
    with structure_only():  # shapes and configurations: no weight values
        model = apps.GoogLeNet(input_shape=(224, 224, 3), include_top=False)
        assert model.get_layer("inception_3a_5x5").kernel_size == (5, 5)
        assert model.get_layer("inception_3a_output").output.shape[1:] == (28, 28, 256)
        assert model.get_layer("inception_4e_output").output.shape[1:] == (14, 14, 832)
        assert model.output_shape == (None, 7, 7, 1024)
        assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)
        aux = apps.GoogLeNet(aux_logits=True, classes=7, input_shape=(224, 224, 3))
        graph = aux.with_aux_outputs()
        assert [t.shape for t in graph.outputs] == [(None, 7)] * 3
        assert graph.get_layer("aux1_ave_pool").output.shape[1:] == (4, 4, 512)
        assert graph.get_layer("aux2_ave_pool").output.shape[1:] == (4, 4, 528)
        assert graph.get_layer("aux1_dropout").rate == 0.7
        assert aux.get_layer("dropout").rate == 0.4


def test_mixed_precision_heads_are_float32():
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = apps.ResNet20(input_shape=(16, 16, 1), classes=3)
        assert model.get_layer("conv1_conv").compute_dtype == "float16"
        out = forward(model, images((16, 16, 1)))
        assert out.dtype == np.float32 and np.all(np.isfinite(out))
        np.testing.assert_allclose(out.sum(-1), 1.0, rtol=1e-5)
    finally:
        keras.mixed_precision.set_global_policy(previous)
