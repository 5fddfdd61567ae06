"""Figure 7's measurement against a direct numpy computation from the layer outputs."""

import keras
import numpy as np
import pytest

from kerascnn.applications import get_model
from kerascnn.reproduce.responses import measure_responses, response_layers


@pytest.fixture(scope="module")
def net():
    keras.utils.set_random_seed(0)
    model = get_model("resnet20", input_shape=(8, 8, 1), classes=3, shortcut="B")
    rng = np.random.default_rng(0)
    for layer in model.layers:  # non-trivial BN statistics and affine parameters
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 2.0, gamma.shape).astype("float32"),
                               rng.normal(0, 1, beta.shape).astype("float32"),
                               rng.normal(0, 0.5, mean.shape).astype("float32"),
                               rng.uniform(0.5, 3.0, var.shape).astype("float32")])
    return model


def test_layers_are_the_3x3_batch_norms(net):
    names = response_layers(net)
    # ResNet-20: conv1 and two 3x3 convs in each of 9 blocks; option B's 1x1
    # projections (conv3_block1_0, conv4_block1_0) are not responses
    expected = ["conv1_bn"] + [f"conv{s}_block{b}_{i}_bn" for s in (2, 3, 4)
                               for b in (1, 2, 3) for i in (1, 2)]
    assert names == expected
    assert "conv3_block1_0_bn" in [layer.name for layer in net.layers]


def test_std_equals_numpy_from_the_conv_outputs(net):
    rng = np.random.default_rng(1)
    images = rng.normal(0, 50, (37, 8, 8, 1)).astype("float32")
    got = measure_responses(net, images, batch_size=10)  # 4 uneven batches
    assert got["examples"] == 37
    # every conv's output in one pass of a model of its own (one trace, not one per layer)
    convs = [net.get_layer(name[:-len("bn")] + "conv") for name in got["layers"]]
    outputs = keras.Model(net.inputs[0], [c.output for c in convs]).predict(images,
                                                                              verbose=0)
    assert len(outputs) == len(got["layers"]) == len(got["std"])
    for name, std, x in zip(got["layers"], got["std"], outputs):
        bn = net.get_layer(name)
        gamma, beta, mean, var = (w.astype(np.float64) for w in bn.get_weights())
        y = (x - mean) / np.sqrt(var + bn.epsilon) * gamma + beta  # BN, inference
        per_channel = y.reshape(-1, y.shape[-1]).std(axis=0)
        assert std == pytest.approx(per_channel.mean(), rel=1e-4)
    assert got["sorted"] == sorted(got["std"], reverse=True)


def test_batches_of_pairs_give_the_same_numbers(net):
    images = np.random.default_rng(2).normal(0, 50, (12, 8, 8, 1)).astype("float32")
    whole = measure_responses(net, images, batch_size=12)
    pairs = [(images[:5], np.zeros(5)), (images[5:], np.zeros(7))]
    assert measure_responses(net, pairs)["std"] == pytest.approx(whole["std"], rel=1e-9)


def test_empty_input_is_refused(net):
    with pytest.raises(ValueError, match="empty"):
        measure_responses(net, [])
