"""Protocol defaults are the papers' (PAPERS.md); bad configurations fail early."""

import numpy as np
import pytest

from kerascnn.evaluation import PROTOCOLS, default_scales, make_protocol


def test_paper_defaults():
    assert make_protocol("10crop", crop_size=227, family="alexnet").resize == 256
    assert make_protocol("10crop", crop_size=227, family="alexnet").square is True
    assert make_protocol("10crop", crop_size=224, family="resnet").square is False
    g = make_protocol("144crop", crop_size=224, family="googlenet")
    assert g.scales == (256, 288, 320, 352) and g.num_views == 144
    m = make_protocol("multicrop", crop_size=224, family="vgg")
    assert m.scales == (256, 384, 512) and m.num_views == 150
    assert make_protocol("dense", crop_size=224, family="resnet").dense_scales == (224, 256, 384, 480, 640)
    assert make_protocol("dense", crop_size=224, family="vgg").dense_scales == (256, 384, 512)
    assert make_protocol("dense", crop_size=224, family="vgg", train_scale=384).dense_scales == (352, 384, 416)
    assert make_protocol("dense", crop_size=224, family="vgg", train_scale=(256, 512)).dense_scales == (256, 384, 512)
    both = make_protocol("dense+multicrop", crop_size=224, family="vgg")
    assert both.num_views == 150 + 6 and both.uses_crops and both.uses_dense
    assert make_protocol("center", crop_size=32, family="resnet_cifar").resize is None
    assert make_protocol("10crop", crop_size=224).num_views == 10


def test_scaled_defaults_for_small_crops():
    assert default_scales("144crop", crop=32) == tuple(int(round(s * 32 / 224)) for s in (256, 288, 320, 352))
    assert min(default_scales("multicrop", crop=32)) >= 32
    assert make_protocol("center", crop_size=32).resize == round(256 * 32 / 224)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(name="multicrop", crop_size=224, scales=(192, 256)), "scales"),
        (dict(name="144crop", crop_size=32, scales=(24, 40)), "scales"),
        (dict(name="10crop", crop_size=224, resize=200), "resize"),
        (dict(name="dense", crop_size=224, dense_scales=(192,), min_dense_size=224), "dense_scales"),
        (dict(name="5crop", crop_size=224), "protocol"),
        (dict(name="multicrop", crop_size=224, grid=0), "grid"),
    ],
)
def test_bad_configs_raise(kwargs, match):
    name = kwargs.pop("name")
    with pytest.raises(ValueError, match=match):
        make_protocol(name, **kwargs)


def test_views_per_protocol_have_the_right_count():
    img = np.random.RandomState(0).randint(0, 256, (40, 48, 3)).astype(np.uint8)
    for name in PROTOCOLS:
        p = make_protocol(name, crop_size=32, resize=36, scales=(32, 36, 40, 44) if name == "144crop" else (32, 40, 48), dense_scales=(32, 40))
        n = 0
        if p.uses_crops:
            crops = p.crops(img)
            assert crops.shape[1:] == (32, 32, 3)
            n += crops.shape[0]
        if p.uses_dense:
            dense = p.dense(img)
            assert [tuple(d.shape[1:3]) for d in dense] == [(32, 38), (40, 48)]
            n += sum(d.shape[0] for d in dense)
        assert n == p.num_views, name
