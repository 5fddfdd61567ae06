"""The VGG nets scaled to 32x32 (kerascnn.applications.vgg_scaled): Table 1's layer
patterns at reduced widths, counted by hand here; the full-size nets' counts are
checked in test_zoo_counts.py (PAPERS.md)."""

import keras
import numpy as np
import pytest

from kerascnn import applications as apps
from kerascnn.applications import vgg_scaled
from kerascnn.reproduce import vgg_studies

# Table 1 (PAPERS.md) as (kernel, filters) per conv of the paper's nets.
_S = {1: 64, 2: 128, 3: 256, 4: 512, 5: 512}


def _table1(config):
    per_stage = {"A": (1, 1, 2, 2, 2), "A-LRN": (1, 1, 2, 2, 2), "B": (2, 2, 2, 2, 2),
                 "C": (2, 2, 3, 3, 3), "D": (2, 2, 3, 3, 3), "E": (2, 2, 4, 4, 4)}[config]
    convs = []
    for stage, n in enumerate(per_stage, start=1):
        for i in range(n):
            one_by_one = config == "C" and stage >= 3 and i == n - 1
            convs.append((1 if one_by_one else 3, _S[stage]))
    return convs


def hand_count(config, width, fc, classes, channels):
    total, c_in = 0, channels
    for kernel, filters in _table1(config):
        c_out = filters * width // 64
        total += kernel * kernel * c_in * c_out + c_out
        c_in = c_out
    return total + (c_in + 1) * fc + (fc + 1) * fc + (fc + 1) * classes


def trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_the_hand_count_is_the_papers_at_full_width():
    # the same formula at width 64, fc 4096, a 7x7 map: PAPERS.md's counts
    for config, paper in vgg_studies.PAPER_PARAMS.items():
        convs = hand_count(config, 64, 0, 0, 3)  # fc 0, 0 classes: the convs only
        head = 7 * 7 * 512 * 4096 + 4096 + 4097 * 4096 + 4097 * 1000
        assert convs + head == paper, config


@pytest.mark.parametrize("config", ["A", "A-LRN", "B", "C", "D", "E"])
def test_scaled_counts_layers_and_names(config):
    model = vgg_scaled.ScaledVGG(config, input_shape=(32, 32, 1))
    expected = hand_count(config, 8, 64, 10, 1)
    assert trainable(model) == expected == vgg_scaled.params(config)
    assert vgg_studies.SCALED_PARAMS[config] == expected
    convs = [l for l in model.layers if isinstance(l, keras.layers.Conv2D)]
    assert [(l.kernel_size[0], l.filters) for l in convs] == \
        [(k, f // 8) for k, f in _table1(config)]
    names = [l.name for l in model.layers]
    assert names[-6:] == ["flatten", "fc6", "drop6", "fc7", "drop7", "fc8"]
    assert ("block1_lrn" in names) == (config == "A-LRN")
    if config == "A-LRN":  # after the first conv
        assert names.index("block1_lrn") == names.index("block1_conv1") + 1
    assert sum(n.endswith("_pool") for n in names) == 5
    assert tuple(model.get_layer("flatten").input.shape[1:]) == (1, 1, 64)
    assert model.name == "scaled_" + {"A": "vgg11", "A-LRN": "vgg11_lrn", "B": "vgg13",
                                      "C": "vgg16c", "D": "vgg16", "E": "vgg19"}[config]
    label = vgg_studies.label(config)
    assert "scaled" in label and f"{expected / 1e3:.1f}k" in label
    assert f"{vgg_studies.PAPER_PARAMS[config] / 1e6:.1f}M" in label


def test_width_options_config_round_trip_and_forward():
    model = vgg_scaled.ScaledVGG("C", input_shape=(32, 32, 3), width=16, fc_width=32,
                                 classes=4)
    assert trainable(model) == hand_count("C", 16, 32, 4, 3)
    clone = keras.Model.from_config(model.get_config())
    assert [l.name for l in clone.layers] == [l.name for l in model.layers]
    x = np.random.default_rng(0).standard_normal((2, 32, 32, 3)).astype("float32") * 60
    probs = np.asarray(model(x, training=False))
    assert probs.shape == (2, 4) and np.allclose(probs.sum(-1), 1.0, atol=1e-5)
    # He/Glorot-scaled logits, not the saturated softmax of an unscaled init
    assert probs.max() < 0.99


def test_registry_entry_and_errors():
    info = apps.get_model_info("scaled_vgg")
    assert info.family == "vgg_scaled" and info.input_shape == (32, 32, 3)
    model = apps.get_model("scaled_vgg")
    assert info.params == trainable(model) == hand_count("D", 8, 64, 10, 3)
    assert info.macs == apps.count_macs(model)
    with pytest.raises(ValueError, match="width"):
        vgg_scaled.ScaledVGG("A", width=0)
    with pytest.raises(ValueError, match="config"):
        vgg_scaled.ScaledVGG("F")
    with pytest.raises(ValueError, match="1x1x64 map"):
        vgg_scaled.ScaledVGG("A", input_shape=(64, 64, 1))
    features = vgg_scaled.ScaledVGG("E", include_top=False, pooling="avg",
                                    input_shape=(48, 48, 1))
    assert features.output_shape == (None, 64)
