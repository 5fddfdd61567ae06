"""Protocol defaults are the papers' (PAPERS.md); bad configurations fail early."""

import numpy as np
import pytest

from kerascnn.data.preprocessing import Preprocessing
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


def test_a_new_protocol_is_one_table_entry(monkeypatch):
    """An entry of the table is all a protocol needs: validation, views, view count and
    evaluate read it (here a 5-crop protocol: four corners and the centre, no mirrors)."""
    import keras

    from kerascnn.data import from_arrays
    from kerascnn.data import views
    from kerascnn.evaluation import evaluate
    from kerascnn.evaluation.protocols import TABLE, ProtocolSpec

    spec = ProtocolSpec("5crop", "4 corners + centre", "ours",
                        lambda p, im: views.ten_crop(im, p.crop_size, resize=p.resize, pad=p.pad)[:5],
                        lambda p: 5, resize=True)
    monkeypatch.setitem(TABLE, "5crop", spec)
    p = make_protocol("5crop", crop_size=16, resize=20)
    img = np.random.RandomState(1).randint(0, 256, (20, 26, 3)).astype(np.uint8)
    crops = p.crops(img).numpy()
    assert p.num_views == 5 == crops.shape[0] and "5crop (5 views" in p.describe()
    np.testing.assert_array_equal(crops[0], img[:16, :16].astype(np.float32))
    inp = keras.Input((16, 16, 3))
    model = keras.Model(inp, keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling2D()(inp)))
    source = from_arrays(np.stack([img] * 4), [0, 1, 0, 1], ["a", "b"])
    report = evaluate(model, source, ["center", "5crop"], resize=20,
                      preprocessing=Preprocessing(16), verbose=0)
    assert report["5crop"].views == 5 and report["5crop"].examples == 4


def test_the_names_below_the_registry_are_the_tables():
    """kerascnn._protocols names the table's protocols (the registry reads the names
    there, a floor below the evaluation): a protocol added to one only fails here."""
    from kerascnn import _protocols
    from kerascnn.evaluation.protocols import TABLE

    assert _protocols.PROTOCOLS == tuple(TABLE)
    paper_names = {n for spec in TABLE.values() for n in spec.paper_names}
    assert set(_protocols.PAPER_PROTOCOLS) == paper_names
    assert len(_protocols.PAPER_PROTOCOLS) == len(paper_names)
