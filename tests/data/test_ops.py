"""Batch ops against numpy, and every policy's batch step compiled by XLA."""

import numpy as np
import pytest
import tensorflow as tf

from kerascnn.data import list_policies, ops, stats
from kerascnn.data.pipeline import compiled_batch_fn
from kerascnn.data.policies import get_policy

SEED = tf.constant([3, 4], tf.int64)


def _ids(b, h, w):
    return np.arange(b * h * w, dtype=np.float32).reshape(b, h, w, 1)


def test_random_crop_takes_windows_of_each_image():
    x = _ids(64, 9, 11)
    out = tf.function(lambda x: ops.random_crop(x, (4, 5), SEED),
                      jit_compile=True)(x).numpy()
    assert out.shape == (64, 4, 5, 1)
    offsets = set()
    for i in range(64):
        oy, ox = np.argwhere(x[i, ..., 0] == out[i, 0, 0, 0])[0]
        np.testing.assert_array_equal(out[i], x[i, oy:oy + 4, ox:ox + 5])
        offsets.add((oy, ox))
    assert len(offsets) > 10  # each image draws its own offset
    assert max(o[0] for o in offsets) <= 5 and max(o[1] for o in offsets) <= 6


@pytest.mark.parametrize("shape,size", [((7, 9, 2), (4, 12)), ((2, 5, 6, 3), (8, 3)),
                                        ((6, 6, 1), (6, 6)), ((1, 3, 10, 1), (3, 5)),
                                        ((8, 5, 1), (9, 2))])
def test_pad_to_is_resize_with_crop_or_pad_static_and_dynamic(shape, size):
    # the centre crop/pad by slicing, against TensorFlow's own op, with shapes known
    # when traced and unknown until run time
    x = np.arange(np.prod(shape), dtype=np.float32).reshape(shape) + 1
    want = tf.image.resize_with_crop_or_pad(x, *size).numpy()
    np.testing.assert_array_equal(ops.pad_to(tf.constant(x), size).numpy(), want)
    spec = tf.TensorSpec([None] * len(shape), tf.float32)
    fn = tf.function(lambda t: ops.pad_to(t, size), input_signature=[spec])
    out = fn(x)
    assert out.shape == want.shape
    np.testing.assert_array_equal(out.numpy(), want)
    assert fn.get_concrete_function().structured_outputs.shape[-3:-1] == size


def test_random_flip_mirrors_about_half():
    x = _ids(200, 3, 4)
    out = ops.random_flip(x, SEED).numpy()
    flipped = np.array([np.array_equal(o, i[:, ::-1]) for o, i in zip(out, x)])
    kept = np.array([np.array_equal(o, i) for o, i in zip(out, x)])
    assert (flipped ^ kept).all()
    assert 60 < flipped.sum() < 140


def test_pca_lighting_matches_alexnet_formula():
    eigval = np.asarray(stats.IMAGENET_PCA_EIGVAL, np.float32)
    eigvec = np.asarray(stats.IMAGENET_PCA_EIGVEC, np.float32)
    x = np.full((4000, 2, 3, 3), 100.0, np.float32)
    out = ops.pca_lighting(x, eigval, eigvec, 0.1, SEED).numpy()
    shift = out[:, 0, 0, :] - 100.0
    np.testing.assert_allclose(out - 100.0, np.broadcast_to(shift[:, None, None],
                                                            out.shape), atol=1e-4)
    # shift = P (alpha * lambda): recover alpha with the (near-orthonormal) P
    alpha = np.linalg.solve(eigvec, shift.T).T / eigval
    np.testing.assert_allclose(alpha.std(0), 0.1, rtol=0.08)
    np.testing.assert_allclose(alpha.mean(0), 0.0, atol=0.01)


def test_photometric_varies_per_image_and_stays_in_range():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (16, 8, 8, 3)).astype(np.float32)
    x[1] = x[0]
    out = tf.function(lambda x: ops.photometric(x, SEED), jit_compile=True)(x).numpy()
    assert out.min() >= 0 and out.max() <= 255 and np.isfinite(out).all()
    assert not np.allclose(out[0], out[1])  # same image, different draws


def test_subtract_mean_rgb_and_per_pixel_padding():
    x = np.ones((2, 6, 6, 1), np.float32) * 10
    np.testing.assert_allclose(ops.subtract_mean(x, [4.0]).numpy(), 6.0)
    mean = np.arange(16, dtype=np.float32).reshape(4, 4, 1)
    out = ops.subtract_mean(x, mean).numpy()
    expected = np.pad(mean, [(1, 1), (1, 1), (0, 0)])  # centred zero padding
    np.testing.assert_allclose(out, 10 - expected[None].repeat(2, 0))


@pytest.mark.parametrize("name", list_policies())
def test_every_policy_batch_step_compiles_with_xla(name):
    policy = get_policy(name)
    size = policy.image_size
    stage = policy.stage_size(size)
    if policy.pad:
        stage = size
    fn = compiled_batch_fn(policy, image_size=size)
    images = tf.zeros((2, *stage, 3), tf.uint8)
    hlo = fn.experimental_get_compiler_ir(images, SEED)(stage="hlo")
    assert "HloModule" in hlo
    out = fn(images, SEED)
    assert out.shape == (2, *size, 3) and out.dtype == tf.float32


@pytest.mark.parametrize("name", list_policies())
def test_batch_step_flips_last_whatever_order_it_runs(name):
    # the compiled batch step may mirror uint8 images before the colour steps; the
    # result must be the flip-free step followed by the flip, bit for bit
    policy = get_policy(name)
    size = policy.image_size
    stage = size if policy.pad else policy.stage_size(size)
    rng = np.random.default_rng(3)
    images = tf.constant(rng.integers(0, 256, (6, *stage, 3), dtype=np.uint8))
    kwargs = dict(image_size=size, mean=np.array([120.0, 110.0, 100.0], np.float32),
                  pca=(stats.IMAGENET_PCA_EIGVAL, stats.IMAGENET_PCA_EIGVEC))
    no_flip = get_policy(name, flip=False)

    @tf.function(jit_compile=True)
    def flip_last(x, seed):  # and the flip-free step itself, in the same XLA program
        unflipped = no_flip.batch_fn(x, seed, **kwargs)
        return ops.random_flip(unflipped, seed), unflipped

    expected, unflipped = (t.numpy() for t in flip_last(images, SEED))
    mirrored = [np.array_equal(e, u[:, ::-1]) for e, u in zip(expected, unflipped)]
    assert 0 < sum(mirrored) < 6  # the seed flips some images, not all
    np.testing.assert_array_equal(compiled_batch_fn(policy, **kwargs)(images, SEED), expected)


def test_policy_windows():
    shape = tf.constant([300, 400])
    center = get_policy("alexnet").window(shape, SEED, (227, 227)).numpy()
    np.testing.assert_array_equal(center, [0, 50, 300, 300])
    # scale: the window that a 224 crop covers once the shorter side (300) is S
    sides = set()
    for i in range(200):
        y, x, h, w = get_policy("resnet").window(
            shape, tf.constant([i, 5], tf.int64), (224, 224)).numpy()
        assert h == w and 0 <= y <= 300 - h and 0 <= x <= 400 - w
        sides.add(int(h))
    # S in [256, 480] -> side 224 * 300 / S in [140, 262.5]
    assert min(sides) >= 140 and max(sides) <= 263 and max(sides) - min(sides) > 80
    y, x, h, w = get_policy("googlenet").window(shape, SEED, (224, 224)).numpy()
    assert 0.08 * 120000 - 600 <= h * w <= 120000 and y + h <= 300 and x + w <= 400
    with pytest.raises(ValueError, match="example='none'"):
        get_policy("cifar").window(shape, SEED, (32, 32))


def test_get_policy_errors_and_overrides():
    assert list_policies() == ["alexnet", "cifar", "googlenet", "resnet", "vgg"]
    assert get_policy("vgg", scale=384).scale == (384, 384)
    assert get_policy("alexnet", image_size=[224, 224]).image_size == (224, 224)
    p = get_policy("resnet")
    assert type(p).from_config(p.get_config()) == p
    with pytest.raises(ValueError, match="name='lenet'"):
        get_policy("lenet")
    with pytest.raises(ValueError, match="sigma=1"):
        get_policy("alexnet", sigma=1)


def test_a_second_pipeline_of_the_same_batch_step_does_not_compile_it_again():
    """Two training pipelines with the same policy, size, mean and PCA share one
    compiled batch step (traced once: its XLA program is reused); another mean gets
    its own."""
    import dataclasses

    from kerascnn.data import Preprocessing, from_arrays, train_dataset
    from kerascnn.data.policies import Policy

    traced = []

    @dataclasses.dataclass(frozen=True)
    class Counting(Policy):
        def batch_fn(self, images, seed, **kwargs):
            traced.append(kwargs["mean"])
            return super().batch_fn(images, seed, **kwargs)

    policy = Counting(**{**get_policy("cifar", pad=0).get_config(), "image_size": (6, 6)})
    src = from_arrays(np.zeros((8, 6, 6, 3), np.uint8), np.zeros(8), ["a"])

    def first_batch(mean):
        ds = train_dataset(src, policy, batch_size=4, seed=0,
                           preprocessing=Preprocessing(6, mean=mean))
        return next(iter(ds))[0].numpy()

    ones = np.ones((4, 6, 6, 3), np.float32)
    np.testing.assert_array_equal(first_batch([1.0, 2.0, 3.0]), -np.float32([1, 2, 3]) * ones)
    assert len(traced) == 1
    np.testing.assert_array_equal(first_batch([1.0, 2.0, 3.0]), -np.float32([1, 2, 3]) * ones)
    assert len(traced) == 1, "the same batch step was traced and compiled again"
    np.testing.assert_array_equal(first_batch([4.0, 5.0, 6.0]), -np.float32([4, 5, 6]) * ones)
    assert len(traced) == 2


def test_hide_patches_hides_whole_grid_squares_with_the_probability():
    # Hide-and-Seek: each 4x4 square of the grid (the last row/column of squares 2
    # pixels: 10 = 4 + 4 + 2) is either the image or all 0, independently per image
    x = _ids(400, 10, 10) + 1  # no pixel is 0 before
    out = tf.function(lambda x: ops.hide_patches(x, 4, 0.3, SEED), jit_compile=True)(x).numpy()
    hidden = out == 0
    np.testing.assert_array_equal(out[~hidden], x[~hidden])
    squares = hidden[..., 0].reshape(400, 10, 10)
    grid = [(slice(a, a + 4), slice(b, b + 4)) for a in (0, 4, 8) for b in (0, 4, 8)]
    every = np.stack([squares[:, r, c].all(axis=(1, 2)) for r, c in grid], 1)
    some = np.stack([squares[:, r, c].any(axis=(1, 2)) for r, c in grid], 1)
    np.testing.assert_array_equal(every, some)  # a square is hidden whole or not at all
    share = every.mean()  # 3600 Bernoulli(0.3) draws: sd 0.0076
    assert 0.27 < share < 0.33, share
    assert len({tuple(p) for p in every}) > 150  # each image draws its own (512 patterns)
    again = tf.function(lambda x: ops.hide_patches(x, 4, 0.3, SEED), jit_compile=True)(x).numpy()
    np.testing.assert_array_equal(again, out)  # stateless: the same seed, the same squares


def test_hide_and_seek_policy_fills_with_the_mean_and_is_off_by_default():
    images = np.full((64, 8, 8, 1), 200, np.uint8)
    mean = np.full((8, 8, 1), 120.0, np.float32)
    plain = get_policy("cifar", pad=0, random_crop=False, flip=False)
    hide = get_policy("cifar", pad=0, random_crop=False, flip=False, hide_patch=4, hide_prob=0.5)
    assert (plain.hide_patch, plain.hide_prob) == (0, 0.0)
    a = plain.batch_fn(images, SEED, image_size=(8, 8), mean=mean).numpy()
    b = hide.batch_fn(images, SEED, image_size=(8, 8), mean=mean).numpy()
    assert (a == 80).all()
    assert set(np.unique(b)) == {0.0, 80.0} and 0.35 < (b == 0).mean() < 0.65
    assert type(hide).from_config(hide.get_config()) == hide
    with pytest.raises(ValueError, match="hide_prob"):
        get_policy("cifar", hide_prob=1.0)
    with pytest.raises(ValueError, match="hide_patch"):
        get_policy("cifar", hide_patch=-1)
    for alone in ({"hide_patch": 8}, {"hide_prob": 0.25}):  # one without the other: refused
        with pytest.raises(ValueError, match="needs both"):
            get_policy("cifar", **alone)
