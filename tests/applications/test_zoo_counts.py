"""Full-size builds: trainable parameters against PAPERS.md, multiply-adds against an
independent count and the ResNet paper's Table 1. One model alive at a time, built
with its variables' shapes only (``rest_shapes.structure_only``: counts and shapes,
no random draws)."""

import keras
import numpy as np
import pytest

from kerascnn import applications as apps
from rest_shapes import structure_only

# PAPERS.md, trainable weights at the default input and 1000 classes.
PAPERS_PARAMS = {
    "alexnet": 60_965_224,
    "vgg11": 132_863_336,
    "vgg11_lrn": 132_863_336,
    "vgg13": 133_047_848,
    "vgg16c": 133_638_952,
    "vgg16": 138_357_544,
    "vgg19": 143_667_240,
    "googlenet": 6_998_552,
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
}
# PAPERS.md, ResNet paper Table 1, multiply-adds in 1e9.
PAPERS_GFLOPS = {"resnet18": 1.8, "resnet34": 3.6, "resnet50": 3.8, "resnet101": 7.6,
                 "resnet152": 11.3}
# PAPERS.md, §4.2: 0.27M, 0.46M, 0.66M, 0.85M, 1.7M.
PAPERS_CIFAR_M = {20: 0.27, 32: 0.46, 44: 0.66, 56: 0.85, 110: 1.7}


def trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def cifar_params(depth, classes=10, base=16, channels=3):
    """Hand count of the CIFAR nets: 3x3 conv (no bias) + BN (gamma, beta)."""
    n = (depth - 2) // 6
    total = 3 * 3 * channels * base + 2 * base
    c_in = base
    for width in (base, 2 * base, 4 * base):
        for _ in range(n):
            total += 9 * c_in * width + 2 * width + 9 * width * width + 2 * width
            c_in = width
    return total + 4 * base * classes + classes


def projection_params(c_in, c_out):
    return c_in * c_out + 2 * c_out  # 1x1 conv without bias + BN


def expected_params(name):
    if name in PAPERS_PARAMS:
        return PAPERS_PARAMS[name]
    if name == "scaled_vgg":  # D at width 8, fc 64, 32x32x3, 10 classes: by hand
        from test_vgg_scaled import hand_count

        return hand_count("D", 8, 64, 10, 3)
    if name in ("alexnet_fig1", "alexnet_small"):  # hand counts: test_alexnet_scaled.py
        from test_alexnet_scaled import fig1_params, small_params

        return fig1_params() if name == "alexnet_fig1" else small_params()
    if name == "googlenet_scaled":  # counted by hand from Table 1 there
        from test_googlenet_scaled import scaled_googlenet_params

        return scaled_googlenet_params()
    if name in ("plain18", "plain34"):  # the ResNet minus its 3 option-B projections
        resnet = PAPERS_PARAMS[name.replace("plain", "resnet")]
        return resnet - sum(projection_params(c, 2 * c) for c in (64, 128, 256))
    return cifar_params(int(name.removeprefix("plain").removeprefix("resnet")))


def check_fc_head(model):
    """The names kerascnn.evaluation's fully-convolutional conversion relies on."""
    names = [layer.name for layer in model.layers]
    assert names[-6:] == ["flatten", "fc6", "drop6", "fc7", "drop7", "fc8"]
    assert model.get_layer("fc6").activation is keras.activations.relu
    assert model.get_layer("fc7").activation is keras.activations.relu
    assert model.get_layer("drop6").rate == model.get_layer("drop7").rate == 0.5
    size = (6, 6, 256) if model.name == "alexnet" else (7, 7, 512)
    assert tuple(model.get_layer("flatten").input.shape[1:]) == size


def build_and_count(builder, **kwargs):
    with structure_only():
        model = builder(**kwargs)
    if model.name == "alexnet" or model.name.startswith("vgg"):
        check_fc_head(model)
    counts = trainable(model), apps.count_macs(model)
    del model
    # Forgets the uninitialised variables (rest_shapes). No garbage collection: a
    # structure-only model holds no weight values, and a full collection of the
    # worker's heap (TensorFlow's modules) costs 0.2 CPU-s a call.
    keras.backend.clear_session(free_memory=False)
    return counts


@pytest.mark.slow
@pytest.mark.parametrize("name", apps.list_models())
def test_registry_params_and_macs_match_the_built_model(name):
    info = apps.get_model_info(name)
    params, macs = build_and_count(info.builder)
    assert params == expected_params(name)
    assert info.params == params
    assert info.macs == macs
    if name in PAPERS_GFLOPS:
        assert macs / 1e9 == pytest.approx(PAPERS_GFLOPS[name], rel=0.03)
    if info.family in ("resnet_cifar", "plain_cifar"):
        depth = int(name.removeprefix("plain").removeprefix("resnet"))
        assert float(f"{params / 1e6:.2g}") == PAPERS_CIFAR_M[depth]


@pytest.mark.slow
@pytest.mark.parametrize(
    "builder,kwargs,expected",
    [
        (apps.AlexNet, {"groups": 1}, 62_378_344),
        (apps.GoogLeNet, {"aux_logits": True}, 13_378_280),
    ],
)
def test_variant_params(builder, kwargs, expected):
    assert build_and_count(builder, **kwargs)[0] == expected


def test_count_macs_by_hand():
    inputs = keras.Input((10, 10, 4))
    x = keras.layers.Conv2D(8, 3, padding="same", name="a")(inputs)  # 10*10*9*4*8
    x = keras.layers.Conv2D(6, 3, strides=2, groups=2, name="b")(x)  # 4*4*9*4*6
    x = keras.layers.Dense(5, name="c")(x)  # 4*4*6*5 (per position)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(3, name="d")(x)  # 80*3
    model = keras.Model(inputs, x)
    assert apps.count_macs(model) == 10 * 10 * 9 * 4 * 8 + 4 * 4 * 9 * 4 * 6 + 16 * 6 * 5 + 80 * 3


@pytest.mark.parametrize("output_stride,side", [(4, 6), (2, 12), (1, 24)])
def test_cifar_width_and_output_stride(output_stride, side):
    """``width`` scales the three stages (w, 2w, 4w: the parameters by hand), and
    ``output_stride`` is the input side over the last feature map's; neither changes
    the parameters (option-A shortcuts and 3x3 kernels do not depend on strides)."""
    model = apps.ResNet20(input_shape=(24, 24, 1), classes=5, width=4,
                          output_stride=output_stride)
    assert trainable(model) == cifar_params(20, classes=5, base=4, channels=1)
    assert tuple(model.get_layer("avg_pool").input.shape[1:]) == (side, side, 16)
    # MACs by hand: stage 2 at (24 / s2)^2, stage 3 at (24 / (s2 s3))^2 positions
    r2, r3 = {4: (12, 6), 2: (12, 12), 1: (24, 24)}[output_stride]
    expected = (24 * 24 * 9 * 1 * 4 + 6 * 9 * 4 * 4 * 24 * 24
                + (9 * 4 * 8 + 5 * 9 * 8 * 8) * r2 * r2
                + (9 * 8 * 16 + 5 * 9 * 16 * 16) * r3 * r3 + 16 * 5)
    assert apps.count_macs(model) == expected


@pytest.mark.parametrize("builder,blocks,depth", [(apps.ResNet20, 2, 14), (apps.Plain56, 1, 8),
                                                  (apps.ResNet20, 3, 20)])
def test_cifar_blocks(builder, blocks, depth):
    """``blocks`` sets the blocks per stage: the 6b+2-layer net whatever the builder's
    depth (the parameters by hand, the conv layers counted: 1 + 2 per block)."""
    model = builder(input_shape=(16, 16, 1), classes=5, width=4, blocks=blocks)
    assert trainable(model) == cifar_params(depth, classes=5, base=4, channels=1)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == depth - 1
    assert f"conv4_block{blocks}_2_conv" in {layer.name for layer in convs}
