"""VGG's warm start: net A's first four convs and three fc layers seed a deeper net
(Simonyan & Zisserman 2015, §3.1; PAPERS.md, VGG)."""

import numpy as np
import pytest

from kerascnn.applications import VGG11, VGG11LRN, VGG16
from kerascnn.training.warm_start import warm_start_from

# PAPERS.md's table: A is 64 M 128 M 256 256 M ..., so its first four 3x3 convs are
# conv 1 of block 1, conv 1 of block 2 and convs 1-2 of block 3.
A_FIRST_FOUR = ["block1_conv1", "block2_conv1", "block3_conv1", "block3_conv2"]
D_INTERMEDIATE = ["block1_conv2", "block2_conv2", "block3_conv3", "block4_conv1", "block5_conv3"]


def _weights(model, names):
    return {n: [w.copy() for w in model.get_layer(n).get_weights()] for n in names}


def _assert_same(model, reference):
    for name, weights in reference.items():
        for got, want in zip(model.get_layer(name).get_weights(), weights):
            np.testing.assert_array_equal(got, want, err_msg=name)


@pytest.mark.parametrize("builder", [VGG11, VGG11LRN])
def test_a_seeds_d_convs_by_layer_name_from_a_keras_file(builder, tmp_path):
    a = builder(include_top=False, input_shape=(32, 32, 3))
    d = VGG16(include_top=False, input_shape=(32, 32, 3))
    a.save(path := str(tmp_path / "a.keras"))
    before = _weights(d, D_INTERMEDIATE)
    assert warm_start_from(d, path, fc_names=()) == A_FIRST_FOUR
    _assert_same(d, _weights(a, A_FIRST_FOUR))
    _assert_same(d, before)                              # the rest stays random


def test_full_size_a_seeds_d_convs_and_the_three_fc_layers():
    a = VGG11(classes=7)                                  # 224x224: fc6 takes 7x7x512
    d = VGG16(classes=7)
    before = _weights(d, D_INTERMEDIATE)
    copied = warm_start_from(d, a)
    assert copied == A_FIRST_FOUR + ["fc6", "fc7", "fc8"]
    _assert_same(d, _weights(a, copied))
    _assert_same(d, before)


def test_a_mismatched_shape_names_the_layer_and_copies_nothing():
    a = VGG11(include_top=False, input_shape=(32, 32, 3))
    d = VGG16(include_top=False, input_shape=(32, 32, 1))    # block1_conv1 takes 1 channel
    before = _weights(d, A_FIRST_FOUR)
    with pytest.raises(ValueError, match="block1_conv1"):
        warm_start_from(d, a, fc_names=())
    _assert_same(d, before)


def test_a_missing_layer_is_named():
    a = VGG11(include_top=False, input_shape=(32, 32, 3))
    d = VGG16(include_top=False, input_shape=(32, 32, 3))
    with pytest.raises(ValueError, match="'fc6'"):
        warm_start_from(d, a)
