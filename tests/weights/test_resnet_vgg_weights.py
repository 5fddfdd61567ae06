"""ResNet and VGG weights from their publishers' files, through the builders'
``weights=<path>``: each loaded model's outputs equal an independent reference on
the publisher's own input convention.

- torchvision files (``torch.save`` of small PyTorch models with torchvision's module
  names, :mod:`_torch_references`) against a PyTorch forward on ``(x/255 - mean)/std``;
- keras.applications files (keras.applications' own ResNet50/VGG16, random weights,
  Keras' legacy HDF5 writer) against keras.applications' model on BGR minus the
  caffe mean, what its ``preprocess_input`` feeds.

Our models get RGB, 0-255, minus the set's mean RGB. Random weights, non-trivial
batch-norm statistics; small inputs (64x64) where the network allows.
"""

from __future__ import annotations

import numpy as np
import pytest

from _torch_references import (
    VGG_CFGS,
    close,
    keras_caffe_input,
    randomize_keras,
    randomize_torch,
    save_keras_legacy_h5,
    torch_forward,
    torch_modules,
)

pytest.importorskip("torch")

SIZE = 64
TV_MEAN_RGB = 255.0 * np.array([0.485, 0.456, 0.406], np.float32)
KERAS_MEAN_RGB = np.array([123.68, 116.779, 103.939], np.float32)


def _infer(model, x):
    """``model(x, training=False)`` as numpy: eager, one batch (``predict`` would trace
    a function for it, several seconds for a ResNet-50)."""
    import keras

    return keras.ops.convert_to_numpy(model(x, training=False))


def _images(n=2, size=SIZE, seed=3):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 255, size=(n, size, size, 3)).astype(np.float32)


def _torch_resnet(block, layers, seed=0, num_classes=1000):
    m = torch_modules()
    return randomize_torch(m["ResNet"](m[block], layers, num_classes), seed)


def _save_torch(model, path, **kwargs):
    import torch

    torch.save(model.state_dict(), str(path), **kwargs)
    return str(path)


@pytest.fixture(scope="module")
def resnet18_torch(tmp_path_factory):
    model = _torch_resnet("BasicBlock", [2, 2, 2, 2])
    path = _save_torch(model, tmp_path_factory.mktemp("rn18") / "resnet18.pth")
    return model, path


@pytest.fixture(scope="module")
def resnet50_torch(tmp_path_factory):
    model = _torch_resnet("Bottleneck", [3, 4, 6, 3], seed=1)
    path = _save_torch(model, tmp_path_factory.mktemp("rn50") / "resnet50.pth")
    return model, path


# -- torchvision ResNets --------------------------------------------------------------------
def test_torchvision_resnet18_equals_pytorch(resnet18_torch):
    from kerascnn.applications import ResNet18

    torch_model, path = resnet18_torch
    x = _images()
    ours = ResNet18(weights=path, input_shape=(SIZE, SIZE, 3), classifier_activation=None)
    got = _infer(ours, x - TV_MEAN_RGB)
    want = torch_forward(torch_model, x)
    assert close(got, want), np.abs(got - want).max()


def test_torchvision_resnet18_safetensors_and_notop(resnet18_torch, tmp_path):
    """timm's ``*.tv_in1k`` copies are safetensors with torchvision's names; with
    ``include_top=False`` the file's ``fc`` is left out."""
    import torch
    from safetensors.numpy import save_file

    from kerascnn.applications import ResNet18

    torch_model, _ = resnet18_torch
    path = str(tmp_path / "resnet18.tv_in1k.safetensors")
    save_file({k: v.numpy() for k, v in torch_model.state_dict().items()}, path)
    x = _images()
    features = _infer(ResNet18(include_top=False, pooling="avg", weights=path,
                               input_shape=(SIZE, SIZE, 3)), x - TV_MEAN_RGB)

    def trunk(t):
        m = torch_model
        t = m.maxpool(m.relu(m.bn1(m.conv1(t))))
        t = m.layer4(m.layer3(m.layer2(m.layer1(t))))
        return torch.flatten(m.avgpool(t), 1)

    want = torch_forward(torch_model, x, trunk)
    assert close(features, want)


@pytest.mark.slow
def test_torchvision_resnet50_v15_equals_pytorch(resnet50_torch):
    from kerascnn.applications import ResNet50

    torch_model, path = resnet50_torch
    x = _images(n=1)
    ours = ResNet50(weights=path, stride_in_1x1=False, input_shape=(SIZE, SIZE, 3),
                    classifier_activation=None)
    got = _infer(ours, x - TV_MEAN_RGB)
    assert close(got, torch_forward(torch_model, x))


@pytest.mark.slow
def test_torchvision_bottleneck_file_refused_by_v1_model(resnet50_torch):
    """Same shapes, other function: refused by origin, naming the argument to pass."""
    from kerascnn.applications import ResNet50

    _, path = resnet50_torch
    with pytest.raises(ValueError, match=r"stride_in_1x1=False"):
        ResNet50(weights=path, input_shape=(SIZE, SIZE, 3))


def test_torch_file_into_other_depth_names_the_depth(resnet18_torch):
    """ResNet-34 has a third block in stage 2 that a ResNet-18 file lacks: the file's
    depth is named, and the builder that takes it."""
    from kerascnn.applications import ResNet34

    _, path = resnet18_torch
    with pytest.raises(ValueError, match=r"is a ResNet-18 \(basic blocks, 2/2/2/2 per stage\); "
                       r"this model is a ResNet-34 .* ResNet18\(weights=\.\.\.\)"):
        ResNet34(weights=path, input_shape=(SIZE, SIZE, 3))


def test_torch_head_of_other_classes_names_tensor_and_shape(resnet18_torch):
    from kerascnn.applications import ResNet18

    _, path = resnet18_torch
    with pytest.raises(ValueError, match=r"'fc\.weight'.*\(1000, 512\)"):
        ResNet18(weights=path, classes=10, input_shape=(SIZE, SIZE, 3))


# -- keras.applications ResNet50 ------------------------------------------------------------
@pytest.fixture(scope="module")
def keras_resnet50(tmp_path_factory):
    import keras

    folder = tmp_path_factory.mktemp("kapp_rn50")
    model = randomize_keras(keras.applications.ResNet50(
        weights=None, input_shape=(SIZE, SIZE, 3), classifier_activation=None), seed=5)
    path = save_keras_legacy_h5(model, folder / "resnet50_weights_tf_dim_ordering_tf_kernels.h5")
    notop = keras.Model(model.input, model.get_layer("conv5_block3_out").output)
    notop_path = save_keras_legacy_h5(
        notop, folder / "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5")
    return model, str(path), str(notop_path)


@pytest.mark.slow
def test_keras_applications_resnet50_equals_keras(keras_resnet50):
    """keras.applications' v1 (stride on the 1x1, conv biases before each BN) on BGR
    minus the caffe mean against ours on RGB minus the mean."""
    from kerascnn.applications import ResNet50

    ref, path, _ = keras_resnet50
    x = _images(n=1)
    want = _infer(ref, keras_caffe_input(x))
    ours = ResNet50(weights=path, input_shape=(SIZE, SIZE, 3), classifier_activation=None)
    got = _infer(ours, x - KERAS_MEAN_RGB)
    assert close(got, want), np.abs(got - want).max()


@pytest.mark.slow
def test_keras_applications_resnet50_notop_and_v15_refused(keras_resnet50):
    import keras

    from kerascnn.applications import ResNet50

    ref, _, notop_path = keras_resnet50
    x = _images(n=1)
    trunk = keras.Model(ref.input, ref.get_layer("conv5_block3_out").output)
    want = _infer(trunk, keras_caffe_input(x))
    ours = ResNet50(include_top=False, weights=notop_path, input_shape=(SIZE, SIZE, 3))
    assert close(_infer(ours, x - KERAS_MEAN_RGB), want)
    with pytest.raises(ValueError, match=r"stride_in_1x1=True"):
        ResNet50(include_top=False, weights=notop_path, stride_in_1x1=False,
                 input_shape=(SIZE, SIZE, 3))


# -- VGG ------------------------------------------------------------------------------------
def _vgg_with_small_head(builder, width, classes):
    """Our VGG trunk at 64x64 and the builders' own head (``fc_head``: flatten fc6
    drop6 fc7 drop7 fc8) of ``width``: ``include_top=True`` only builds at 224x224,
    where fc6 alone has 103M weights."""
    import keras

    from kerascnn.applications.alexnet import fc_head

    trunk = builder(include_top=False, input_shape=(SIZE, SIZE, 3))
    out = fc_head(trunk.output, classes, None, width=width, dropout=0.5, fc_bias=0.0)
    return keras.Model(trunk.input, out, name=trunk.name)


def _assign(model, path, family="vgg"):
    from kerascnn.weights import mappers
    from kerascnn.weights.loading import ORIGIN_OF_FORMAT
    from kerascnn.weights.readers import read_weights_file

    wf = read_weights_file(path)
    mappers.assign(model, wf, origin=ORIGIN_OF_FORMAT[wf.format], family=family)


def test_torchvision_vgg11_fc6_reordered_chw_to_hwc(tmp_path):
    """fc6 after a flatten of a 2x2x512 map: torchvision flattens CHW, Keras HWC."""
    from kerascnn.applications import VGG11

    torch_model = randomize_torch(torch_modules()["VGG"](VGG_CFGS["A"], 512 * 2 * 2, 32, 10))
    path = _save_torch(torch_model, tmp_path / "vgg11.pth")
    x = _images()
    ours = _vgg_with_small_head(VGG11, 32, 10)
    _assign(ours, path)
    got = _infer(ours, x - TV_MEAN_RGB)
    want = torch_forward(torch_model, x)
    assert close(got, want), np.abs(got - want).max()
    # Through the builder: include_top=False leaves the file's classifier out.
    trunk = VGG11(include_top=False, weights=path, input_shape=(SIZE, SIZE, 3))
    want = torch_forward(torch_model, x, torch_model.trunk)
    assert close(_infer(trunk, x - TV_MEAN_RGB), want)


def test_torchvision_vgg13_legacy_pickle_file(tmp_path):
    """torchvision's 2017 VGG files are PyTorch's legacy (non-zip) format with
    ``torch._utils._rebuild_tensor`` pickles (what ``vgg16-397923af.pth`` is)."""
    from _weights_helpers import old_style_tensor_pickles

    from kerascnn.applications import VGG13

    torch_model = randomize_torch(torch_modules()["VGG"](VGG_CFGS["B"], 512, 16, 10), seed=2)
    path = tmp_path / "vgg13.pth"
    with old_style_tensor_pickles():
        _save_torch(torch_model, path, _use_new_zipfile_serialization=False)
    x = _images(size=32)
    ours = VGG13(include_top=False, weights=str(path), input_shape=(32, 32, 3))
    want = torch_forward(torch_model, x, torch_model.trunk)
    assert close(_infer(ours, x - TV_MEAN_RGB), want)


def test_torchvision_vgg_file_into_other_configuration(tmp_path):
    from kerascnn.applications import VGG11

    torch_model = randomize_torch(torch_modules()["VGG"](VGG_CFGS["B"], 512, 16, 10))
    path = _save_torch(torch_model, tmp_path / "vgg13.pth")
    with pytest.raises(ValueError, match=r"features\.\d+\.weight"):
        VGG11(include_top=False, weights=path, input_shape=(32, 32, 3))


@pytest.fixture(scope="module")
def keras_vgg16(tmp_path_factory):
    import keras

    folder = tmp_path_factory.mktemp("kapp_vgg16")
    model = randomize_keras(keras.applications.VGG16(
        weights=None, input_shape=(SIZE, SIZE, 3), classes=10, classifier_activation=None))
    path = save_keras_legacy_h5(model, folder / "vgg16_weights_tf_dim_ordering_tf_kernels.h5")
    notop = keras.Model(model.input, model.get_layer("block5_pool").output)
    notop_path = save_keras_legacy_h5(
        notop, folder / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5")
    return model, str(path), str(notop_path)


def test_keras_applications_vgg16_equals_keras(keras_vgg16):
    """fc1 fc2 predictions -> fc6 fc7 fc8 (keras' flatten is already HWC), BGR fold."""
    import keras

    from kerascnn.applications import VGG16

    ref, path, notop_path = keras_vgg16
    x = _images(n=1)
    ours = _vgg_with_small_head(VGG16, 4096, 10)
    _assign(ours, path)
    want = _infer(ref, keras_caffe_input(x))
    assert close(_infer(ours, x - KERAS_MEAN_RGB), want)
    trunk = VGG16(include_top=False, weights=notop_path, input_shape=(SIZE, SIZE, 3))
    ref_trunk = keras.Model(ref.input, ref.get_layer("block5_pool").output)
    want = _infer(ref_trunk, keras_caffe_input(x))
    assert close(_infer(trunk, x - KERAS_MEAN_RGB), want)


@pytest.mark.parametrize("suffix", [".keras", ".weights.h5"])
def test_keras_own_files_through_the_builder(suffix, tmp_path):
    """Keras' own formats still load with ``model.load_weights`` (recognised from the
    content by the reader)."""
    from kerascnn.applications import ResNet20

    model = ResNet20(classes=3, input_shape=(16, 16, 3))
    path = str(tmp_path / f"net{suffix}")
    model.save(path) if suffix == ".keras" else model.save_weights(path)
    again = ResNet20(classes=3, input_shape=(16, 16, 3), weights=path)
    for a, b in zip(model.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)
