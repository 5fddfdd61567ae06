"""One ``center`` view: the evaluation's (``evaluate``'s views of a Member) equals
``eval_dataset`` and ``Preprocessing.__call__`` bit for bit, with a mean RGB, a
per-pixel mean of the crop's size and one of another size (its per-channel average);
a Member without one takes the model's own (kerascnn.data.carried.resolve)."""

import io

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from kerascnn.data import decode_image, eval_dataset, load_source
from kerascnn.data.preprocessing import Preprocessing
from kerascnn.evaluation.evaluate import Member, _Runner


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Two classes of real JPEG/PNG files of different sizes and aspect ratios."""
    rng = np.random.default_rng(3)
    root = tmp_path_factory.mktemp("center") / "images"
    for c, name in enumerate(["a", "b"]):
        (root / name).mkdir(parents=True)
        for i, (h, w) in enumerate([(33, 47), (52, 29), (24, 24)]):
            buf = io.BytesIO()
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(
                buf, "PNG" if (i + c) % 2 else "JPEG", quality=90)
            (root / name / f"{i}.{'png' if (i + c) % 2 else 'jpg'}").write_bytes(buf.getvalue())
    return str(root)


def _net(size):
    inp = keras.Input((size, size, 3))
    out = keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling2D()(inp))
    return keras.Model(inp, out, name="not_in_the_registry")


def _evaluation_views(member, source):
    runner = _Runner(member, "center", {})
    return np.concatenate([runner.views(decode_image(x, 3))["crops"].numpy()
                           for x, _ in source.dataset])


def _means(rng):
    return {"rgb": np.array([120.5, 110.25, 99.0], np.float32),
            "per_pixel": rng.uniform(0, 255, (24, 24, 3)).astype(np.float32),
            "per_pixel_other_size": rng.uniform(0, 255, (30, 30, 3)).astype(np.float32),
            "none": None}


@pytest.mark.parametrize("mean", ["rgb", "per_pixel", "per_pixel_other_size", "none"])
def test_evaluation_center_view_is_the_preprocessing_bit_for_bit(folder, mean):
    source = load_source(folder)
    prep = Preprocessing((24, 24), 3, resize=28, pad=1, mean=_means(np.random.default_rng(0))[mean])
    data = np.concatenate([x.numpy() for x, _ in eval_dataset(source, batch_size=4, preprocessing=prep)])
    direct = np.stack([prep(decode_image(x, 3)).numpy() for x, _ in source.dataset])
    views = _evaluation_views(Member(_net(24), preprocessing=prep), source)
    assert views.shape == (6, 24, 24, 3)
    np.testing.assert_array_equal(data, direct)
    np.testing.assert_array_equal(views, direct)
    if mean == "per_pixel_other_size":  # the one rule: its per-channel average
        plain = prep.replace(mean=None)
        avg = prep.mean.mean(axis=(0, 1))
        np.testing.assert_allclose(direct, np.stack([plain(decode_image(x, 3)).numpy() - avg
                                                     for x, _ in source.dataset]), atol=1e-4)


def test_a_member_without_preprocessing_takes_the_models_own(folder, capsys):
    """Member(model): the preprocessing the model carries (kerascnn.data.carried), else
    the resolver's one fallback (shorter side to the input size, no mean), said once on
    stderr; views equal that preprocessing's, bit for bit."""
    from kerascnn.data.carried import attach

    source = load_source(folder)
    own = Preprocessing((24, 24), 3, resize=28, mean=[120.0, 110.0, 100.0])
    runner = _Runner(Member(attach(_net(24), own)), "center", {})
    assert runner.protocol.resize == 28 and runner.mean.tolist() == [120.0, 110.0, 100.0]
    views = np.concatenate([runner.views(decode_image(x, 3))["crops"].numpy()
                            for x, _ in source.dataset])
    np.testing.assert_array_equal(
        views, np.stack([own(decode_image(x, 3)).numpy() for x, _ in source.dataset]))
    assert capsys.readouterr().err == ""
    fallback = Member(_net(24)).resolved_preprocessing()
    assert fallback == Preprocessing((24, 24), 3, resize=24)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not_in_the_registry carries no preprocessing" in err[0]


def test_the_keyword_form_is_gone(folder):
    from kerascnn.evaluation import evaluate

    source = load_source(folder)
    prep = Preprocessing((24, 24), 3)
    with pytest.raises(TypeError):
        Member(_net(24), mean=None)
    with pytest.raises(ValueError, match="preprocessing=Preprocessing"):
        evaluate(_net(24), source, "center", mean=None, pad=2, verbose=0)
    with pytest.raises(TypeError):
        eval_dataset(source, batch_size=2, preprocessing=prep, mean=False)
    assert tf.is_tensor(prep(np.zeros((5, 5, 3), np.uint8)))
