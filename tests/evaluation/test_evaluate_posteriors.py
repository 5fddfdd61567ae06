"""Per-image posteriors of the test protocols (evaluation.evaluate.posteriors), and VGG's
dense / multi-crop protocols at 32x32 (the vgg study's Table 5 claim): the same numbers
as evaluate(), and dense+multicrop is the average of the two."""

import numpy as np
import pytest
import tensorflow as tf

from kerascnn.applications.vgg_scaled import ScaledVGG
from kerascnn.data.preprocessing import Preprocessing
from kerascnn.evaluation.evaluate import evaluate, posteriors
from kerascnn.evaluation.protocols import make_protocol

N = 6


@pytest.fixture(scope="module")
def net():
    import keras

    keras.utils.set_random_seed(3)
    model = ScaledVGG("A", input_shape=(32, 32, 1), classes=4)
    prep = Preprocessing(image_size=32, channels=1, resize=32, mean=np.array([100.0]))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (N, 28, 28, 1)).astype("uint8")
    labels = rng.integers(0, 4, N).astype("int64")
    data = tf.data.Dataset.from_tensor_slices((images, labels))
    return model, prep, data, labels


def test_vgg_protocols_at_32_pixels():
    multi = make_protocol("multicrop", crop_size=32, family="vgg", train_scale=(32, 64))
    assert multi.scales == (32, 48, 64) and multi.num_views == 150
    dense = make_protocol("dense", crop_size=32, family="vgg", train_scale=(32, 64),
                          min_dense_size=32)
    assert dense.dense_scales == (32, 48, 64) and dense.num_views == 6
    # the ImageNet defaults are untouched
    assert make_protocol("multicrop", family="vgg").scales == (256, 384, 512)


def test_posteriors_are_evaluates_numbers(net):
    model, prep, data, labels = net
    options = dict(preprocessing=prep, batch_size=4, train_scale=(32, 64), grid=2)
    probs = {}
    for protocol in ("dense", "multicrop"):
        p, y = posteriors(model, data, protocol, **options)
        assert p.shape == (N, 4) and np.array_equal(y, labels)
        np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-4)
        probs[protocol] = p
    assert not np.allclose(probs["dense"], probs["multicrop"], atol=1e-4)
    # Table 5's combination is the average of the two protocols' posteriors: the
    # dense+multicrop protocol's error is that average's
    both = (probs["dense"] + probs["multicrop"]) / 2
    (result,) = evaluate(model, data, "dense+multicrop", verbose=0, **options).results
    assert result.top1 == pytest.approx(100.0 * np.mean(np.argmax(both, -1) != labels))
    with pytest.raises(ValueError, match="one protocol name"):
        posteriors(model, data, ["dense"], preprocessing=prep)
