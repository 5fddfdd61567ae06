"""BVLC's AlexNet and GoogLeNet .caffemodel files into AlexNet() and GoogLeNet().

Each test writes a real .caffemodel with protobuf (random, non-trivial blobs; the new
``layer`` encoding for AlexNet, the deprecated V1 ``layers`` encoding with legacy 4-D
blob shapes for GoogLeNet, as BVLC's 2014 files), reads it with kerascnn's reader,
maps it, and compares the model's outputs on RGB input minus (123, 117, 104) with an
independent numpy forward pass of BVLC's prototxt with Caffe's semantics on BGR
input minus (104, 117, 123) (``_caffe_reference``).
"""

import keras
import numpy as np
import pytest

import _caffe_reference as ref
from kerascnn.applications import AlexNet, GoogLeNet
from kerascnn.weights import mappers

MEAN_RGB = np.array([123.0, 117.0, 104.0], np.float32)


def read(path):
    from kerascnn.weights import readers

    return readers.read_weights_file(path)


def assert_matches(got, want):
    """float32 against a float64 reference: relative 1e-4 of the output's scale."""
    got = keras.ops.convert_to_numpy(got)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def images(n, size, seed):
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, 3)).astype(np.float32)


# -- AlexNet -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def alexnet_file(tmp_path_factory):
    """BVLC AlexNet with random blobs (``layer`` encoding), 2 images, Caffe's fc8."""
    rng = np.random.default_rng(0)
    x = images(2, 227, seed=1)
    blobs = {}
    tops = ref.forward(ref.alexnet(), ref.caffe_input(x), blobs, rng, classifiers={"fc8"})
    path = tmp_path_factory.mktemp("alexnet") / "bvlc_alexnet.caffemodel"
    ref.write_caffemodel(path, ref.alexnet(), blobs, encoding="layer", name="AlexNet")
    return path, x, tops, blobs


@pytest.fixture(scope="module")
def alexnet_convs_file(tmp_path_factory, alexnet_file):
    """The same net's conv layers only (small), for the errors."""
    _, _, _, blobs = alexnet_file
    path = tmp_path_factory.mktemp("alexnet_convs") / "convs.caffemodel"
    head = ("fc", "relu6", "relu7", "drop", "prob")
    net = [spec for spec in ref.alexnet() if not spec["name"].startswith(head)]
    convs = {name: blobs[name] for name in ("conv1", "conv2", "conv3", "conv4", "conv5")}
    ref.write_caffemodel(path, net, convs, encoding="layer")
    return path, net, convs


def test_alexnet_matches_caffe(alexnet_file):
    path, x, tops, _ = alexnet_file
    model = AlexNet(weights=str(path), classifier_activation=None)  # the documented usage
    got = model(x - MEAN_RGB, training=False)
    assert_matches(got, tops["fc8"])
    assert np.abs(tops["fc8"]).std() > 0.5  # logits that are not flat

    for name in ("norm1", "norm2"):
        config = model.get_layer(name).get_config()
        assert config["depth_radius"] == 2 and config["beta"] == 0.75
        assert config["bias"] == 1.0
        assert config["alpha"] == pytest.approx(1e-4 / 5)
    # The check is sensitive to the LRN: with the builder's (the paper's) k = 2 and
    # alpha not divided by n the same weights give other outputs.
    for name in ("norm1", "norm2"):
        model.get_layer(name).bias, model.get_layer(name).alpha = 2.0, 1e-4
    other = keras.ops.convert_to_numpy(model(x - MEAN_RGB, training=False))
    assert np.abs(other - tops["fc8"]).max() > 100 * 1e-4 * np.abs(tops["fc8"]).max()


def test_alexnet_without_top_loads_the_convolutions(alexnet_file):
    path, x, tops, _ = alexnet_file
    model = AlexNet(include_top=False)
    mappers.assign(model, read(path), origin="caffe", family="alexnet")
    got = keras.ops.convert_to_numpy(model(x - MEAN_RGB, training=False))
    assert_matches(got, tops["pool5"].transpose(0, 2, 3, 1))


def test_alexnet_one_tower_is_refused_naming_the_tensor(alexnet_convs_file):
    path, _, _ = alexnet_convs_file
    model = AlexNet(include_top=False, groups=1)
    with pytest.raises(ValueError, match=r"'conv2/0'.*\(256, 48, 5, 5\)"):
        mappers.assign(model, read(path), origin="caffe", family="alexnet")


def test_alexnet_file_without_fc_layers_is_refused_for_the_top(alexnet_convs_file):
    path, _, _ = alexnet_convs_file
    with pytest.raises(ValueError, match="'fc6'"):
        mappers.assign(AlexNet(), read(path), origin="caffe", family="alexnet")


def test_caffenet_order_is_refused(alexnet_convs_file, tmp_path):
    # bvlc_reference_caffenet: same names and shapes, pooling before LRN.
    _, net, convs = alexnet_convs_file
    names = [spec["name"] for spec in net]
    for norm, pool in (("norm1", "pool1"), ("norm2", "pool2")):
        i, j = names.index(norm), names.index(pool)
        net[i], net[j] = net[j], net[i]
        names[i], names[j] = names[j], names[i]
    path = tmp_path / "caffenet.caffemodel"
    ref.write_caffemodel(path, net, convs, encoding="layer")
    with pytest.raises(ValueError, match="CaffeNet"):
        mappers.assign(AlexNet(include_top=False), read(path), origin="caffe", family="alexnet")


def test_other_origin_is_refused(alexnet_convs_file):
    path, _, _ = alexnet_convs_file
    from kerascnn.weights.mappers import alexnet as alexnet_mapper

    with pytest.raises(ValueError, match="origin='torchvision'"):
        alexnet_mapper.assign(AlexNet(include_top=False), read(path), origin="torchvision")


# -- GoogLeNet ---------------------------------------------------------------------------

CLASSIFIERS = ("loss3/classifier", "loss1/classifier", "loss2/classifier")


@pytest.fixture(scope="module")
def googlenet_file(tmp_path_factory):
    """BVLC GoogLeNet with random blobs, V1 ``layers`` encoding and legacy shapes."""
    rng = np.random.default_rng(2)
    x = images(1, 224, seed=3)
    blobs = {}
    tops = ref.forward(
        ref.googlenet(), ref.caffe_input(x), blobs, rng, classifiers=set(CLASSIFIERS)
    )
    path = tmp_path_factory.mktemp("googlenet") / "bvlc_googlenet.caffemodel"
    ref.write_caffemodel(path, ref.googlenet(), blobs, encoding="layers", name="GoogleNet")
    return path, x, tops, blobs


def test_googlenet_with_aux_heads_matches_caffe(googlenet_file):
    path, x, tops, _ = googlenet_file
    model = GoogLeNet(weights=path, aux_logits=True, classifier_activation=None)
    outputs = model.with_aux_outputs()(x - MEAN_RGB, training=False)
    for got, name in zip(outputs, CLASSIFIERS):
        assert np.abs(tops[name]).std() > 0.5, name
        assert_matches(got, tops[name])


def test_googlenet_without_aux_heads_and_keras_round_trip(googlenet_file, tmp_path):
    path, x, tops, _ = googlenet_file
    model = GoogLeNet()  # softmax, no auxiliary heads: the file's loss1/loss2 go unused
    mappers.assign(model, read(path), origin="caffe", family="googlenet")
    probs = ref.softmax(tops["loss3/classifier"])
    assert probs.max() < 0.99  # not saturated: the comparison means something
    assert_matches(model(x - MEAN_RGB, training=False), probs)

    saved = tmp_path / "googlenet.keras"
    model.save(saved)
    loaded = keras.saving.load_model(saved)
    for name in ("pool1_norm1", "conv2_norm2"):
        config = loaded.get_layer(name).get_config()
        assert config["bias"] == 1.0 and config["alpha"] == pytest.approx(1e-4 / 5)
    assert_matches(loaded(x - MEAN_RGB, training=False), probs)  # eager: no traced predict


def test_googlenet_file_into_alexnet_is_refused(googlenet_file):
    path, _, _, _ = googlenet_file
    with pytest.raises(ValueError, match="not BVLC's AlexNet.*GoogLeNet file"):
        mappers.assign(AlexNet(include_top=False), read(path), origin="caffe", family="alexnet")


def test_alexnet_file_into_googlenet_is_refused(alexnet_convs_file):
    path, _, _ = alexnet_convs_file
    with pytest.raises(ValueError, match="not BVLC's GoogLeNet.*AlexNet"):
        mappers.assign(
            GoogLeNet(include_top=False), read(path), origin="caffe", family="googlenet"
        )


def test_googlenet_file_without_aux_heads_is_refused_for_aux_logits(googlenet_file, tmp_path):
    # A deploy-style file (no loss1/loss2 heads) cannot fill GoogLeNet(aux_logits=True).
    _, _, _, blobs = googlenet_file
    net = [spec for spec in ref.googlenet() if not spec["name"].startswith(("loss1/", "loss2/"))]
    path = tmp_path / "deploy.caffemodel"
    ref.write_caffemodel(path, net, blobs, encoding="layers")
    with pytest.raises(ValueError, match="'loss1/conv'"):
        mappers.assign(GoogLeNet(aux_logits=True), read(path), origin="caffe", family="googlenet")
