"""End to end: the protocols on a small net trained briefly on the offline default data
(Fashion-MNIST from Debian's dataset-fashion-mnist, padded 28 -> 32)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerascnn.data import Preprocessing, from_arrays, load_source
from kerascnn.evaluation import PROTOCOLS, Member, evaluate, top_k_error

from evalnets import MEAN, small_cnn, small_fc_net  # noqa: E402

SMALL = dict(resize=36, scales=(32, 36, 40, 44), dense_scales=(32, 40, 48))
# the 28x28 images padded by 2 to the nets' 32x32, minus the training mean (or none)
FMNIST = Preprocessing(32, channels=1, pad=2, mean=[MEAN])
FMNIST_NO_MEAN = FMNIST.replace(mean=None)


def _pad(images):
    return np.pad(images, [(0, 0), (2, 2), (2, 2), (0, 0)])


@pytest.fixture(scope="module")
def fashion():
    train = load_source("fashion_mnist", "train")
    test = load_source("fashion_mnist", "test")
    return train, test


@pytest.fixture(scope="module")
def trained(fashion):
    """small_cnn after one epoch on 6000 images, with flips and 4-pixel shifts."""
    train, _ = fashion
    rng = np.random.RandomState(0)
    x = _pad(train.images[:6000]).astype(np.float32)
    y = train.labels[:6000]
    flip = rng.rand(len(x)) < 0.5
    x[flip] = x[flip, :, ::-1]
    padded = np.pad(x, [(0, 0), (4, 4), (4, 4), (0, 0)])
    dy, dx = rng.randint(0, 9, (2, len(x)))
    x = np.stack([p[a : a + 32, b : b + 32] for p, a, b in zip(padded, dy, dx)])
    model = small_cnn()
    model.compile(keras.optimizers.SGD(0.05, momentum=0.9), "sparse_categorical_crossentropy")
    model.fit(x - MEAN, y, batch_size=64, epochs=1, verbose=0)
    return model


def _source(test, n):
    return from_arrays(test.images[:n], test.labels[:n], test.class_names, name="fmnist_head")


def test_every_protocol_runs_and_reports_sane_errors(trained, fashion):
    _, test = fashion
    weights_before = [w.numpy().copy() for w in trained.weights]  # BN moving stats included
    report = evaluate(trained, _source(test, 48), list(PROTOCOLS), preprocessing=FMNIST, batch_size=16, verbose=0, **SMALL)
    assert [r.protocol for r in report.results] == list(PROTOCOLS)
    for r in report.results:
        assert r.examples == 48
        assert np.isfinite(r.top1) and 0.0 <= r.top5 <= r.top1 <= 100.0, r
        assert r.top1 < 60.0, r  # trained: far better than chance (90 %)
    assert report["144crop"].views == 144 and report["multicrop"].views == 4 * 25 * 2
    for w, before in zip(trained.weights, weights_before):
        np.testing.assert_array_equal(w.numpy(), before)
    text = report.to_text()
    assert "dense+multicrop" in text and "144crop" in text


def test_ten_crop_no_worse_than_center(trained, fashion):
    _, test = fashion
    report = evaluate(trained, _source(test, 600), ["center", "10crop"], preprocessing=FMNIST, resize=36, batch_size=100, verbose=0)
    center, ten = report["center"].top1, report["10crop"].top1
    # Noise: the standard error of a 600-image error rate near 20 % is ~1.6 points.
    assert ten <= center + 3.0, (center, ten)


def test_center_and_dense_match_a_numpy_reference(trained, fashion):
    _, test = fashion
    n = 64
    probs = trained.predict(_pad(test.images[:n]).astype(np.float32) - MEAN, verbose=0)
    want = top_k_error(test.labels[:n], probs, 1), top_k_error(test.labels[:n], probs, 5)
    source = _source(test, n)
    center = evaluate(trained, source, "center", preprocessing=FMNIST, resize=None, verbose=0)["center"]
    dense = evaluate(trained, source, "dense", preprocessing=FMNIST, dense_scales=(32,), flip=False, verbose=0)["dense"]
    for r in (center, dense):
        assert (r.top1, r.top5) == pytest.approx(want, abs=1e-6)


def test_fusion_averages_posteriors_of_networks_with_their_own_preprocessing(trained, fashion):
    _, test = fashion
    n = 64
    other = small_cnn(seed=5, name="other")  # untrained, fed without mean subtraction
    x = _pad(test.images[:n]).astype(np.float32)
    fused = 0.5 * (trained.predict(x - MEAN, verbose=0) + other.predict(x, verbose=0))
    want = top_k_error(test.labels[:n], fused, 1), top_k_error(test.labels[:n], fused, 5)
    members = [Member(trained, preprocessing=FMNIST), Member(other, preprocessing=FMNIST_NO_MEAN)]
    report = evaluate(members, _source(test, n), "center", resize=None, batch_size=20, verbose=0)
    assert (report["center"].top1, report["center"].top5) == pytest.approx(want, abs=1e-6)
    assert report.models == ["small_cnn", "other"]


def test_dense_through_the_fully_convolutional_head(fashion):
    _, test = fashion
    model = small_fc_net()
    n = 32
    probs = model.predict(_pad(test.images[:n]).astype(np.float32), verbose=0)
    source = _source(test, n)
    dense = evaluate(model, source, "dense", preprocessing=FMNIST_NO_MEAN, dense_scales=(32,), flip=False, verbose=0)["dense"]
    assert dense.top1 == pytest.approx(top_k_error(test.labels[:n], probs, 1), abs=1e-6)
    both = evaluate(model, source, "dense+multicrop", preprocessing=FMNIST_NO_MEAN, verbose=0, **SMALL)["dense+multicrop"]
    assert 0.0 <= both.top5 <= both.top1 <= 100.0


def _untouchable_source():
    """A source whose images must never be read."""
    read = []

    def gen():
        read.append(True)
        yield np.zeros((28, 28, 1), np.uint8), np.int64(0)

    ds = tf.data.Dataset.from_generator(
        gen, output_signature=(tf.TensorSpec((28, 28, 1), tf.uint8), tf.TensorSpec((), tf.int64))
    )
    return ds, read


def test_bad_protocols_fail_before_any_image_is_read():
    ds, read = _untouchable_source()
    with pytest.raises(ValueError, match="scales"):
        evaluate(small_cnn(), ds, "multicrop", scales=(24, 32), verbose=0)
    with pytest.raises(ValueError, match="protocol"):
        evaluate(small_cnn(), ds, "12crop", verbose=0)
    flat = keras.Sequential([keras.Input((32, 32, 1)), keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")], name="flat")
    with pytest.raises(ValueError, match="whole images"):
        evaluate(flat, ds, ["center", "dense"], dense_scales=(32, 40), verbose=0)
    with pytest.raises(ValueError, match="dense_scales"):
        evaluate(small_fc_net(), ds, "dense", dense_scales=(24, 32), verbose=0)
    assert read == []
