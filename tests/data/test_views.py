"""Evaluation views (kerascnn.data.views): checked against plain numpy slicing and against
tf.image.resize followed by a slice (an independent path to the same pixels)."""

import numpy as np
import pytest
import tensorflow as tf

from kerascnn.data import views


def _rounded(x):
    """Views made by resizing the image (center, 10crop, dense) are on the 0-255 grid, as
    the center view of kerascnn.data.preprocessing."""
    return np.clip(np.round(x), 0, 255)


def _resized(img, shape):
    """The default resize of a view: bilinear, a downscale antialiased (PIL's filter),
    on the 0-255 grid."""
    return _rounded(tf.image.resize(img.astype(np.float32), shape, antialias=True).numpy())


def _image(h=40, w=50, c=3, seed=0):
    return np.random.RandomState(seed).randint(0, 256, (h, w, c)).astype(np.uint8)


def test_ten_crop_is_exactly_corners_centre_and_mirrors():
    img = _image(37, 45)
    out = views.ten_crop(img, 24).numpy()
    assert out.shape == (10, 24, 24, 3) and out.dtype == np.float32
    f = img.astype(np.float32)
    expected = [
        f[:24, :24],
        f[:24, -24:],
        f[-24:, :24],
        f[-24:, -24:],
        f[(37 - 24) // 2 : (37 - 24) // 2 + 24, (45 - 24) // 2 : (45 - 24) // 2 + 24],
    ]
    expected += [e[:, ::-1] for e in expected]
    for got, want in zip(out, expected):
        np.testing.assert_array_equal(got, want)


def test_ten_crop_resize_and_square():
    img = _image(40, 60)
    resized = _resized(img, (32, 48))
    out = views.ten_crop(img, 24, resize=32).numpy()
    np.testing.assert_array_equal(out[1], resized[:24, -24:])
    square = resized[:, 8:40]  # AlexNet: centre-crop the 32x32 square first
    out_sq = views.ten_crop(img, 24, resize=32, square=True).numpy()
    np.testing.assert_array_equal(out_sq[3], square[-24:, -24:])
    np.testing.assert_array_equal(out_sq[8], square[-24:, -24:][:, ::-1])


def test_center_crop_is_the_preprocessing_center_view():
    from kerascnn.data.preprocessing import Preprocessing

    img = _image(41, 57)
    out = views.center_crop(img, 28, resize=36).numpy()
    assert out.shape == (1, 28, 28, 3)
    resized = _resized(img, (36, 50))  # 57 * 36 / 41 = 50.05 -> 50
    np.testing.assert_array_equal(out[0], resized[4:32, 11:39])
    ref = Preprocessing((28, 28), 3, resize=36)(tf.constant(img)).numpy()
    np.testing.assert_array_equal(out[0], ref)
    # pad after the resize; smaller than the crop: centred zero padding
    small = views.center_crop(img[:20, :22], 28, pad=2).numpy()[0]
    np.testing.assert_array_equal(small[2:26, 1:27], np.pad(img[:20, :22], [(2, 2), (2, 2), (0, 0)]))
    assert small[:2].max() == 0 and small[26:].max() == 0


def test_batch_input_gives_views_per_image():
    imgs = np.stack([_image(seed=1), _image(seed=2)])
    out = views.ten_crop(imgs, 16).numpy()
    assert out.shape == (2, 10, 16, 16, 3)
    np.testing.assert_array_equal(out[1, 0], imgs[1, :16, :16].astype(np.float32))


@pytest.mark.parametrize("shape", [(40, 50), (50, 40)])
def test_googlenet_144_crops_count_sizes_and_pixels(shape):
    img = _image(*shape)
    scales = (32, 36, 40, 44)
    out = views.googlenet_144_crops(img, 24, scales=scales).numpy()
    assert out.shape == (144, 24, 24, 3)
    regions = views.googlenet_144_regions(*shape, 24, scales).numpy()
    assert regions.shape == (144, 5)
    assert regions[:, 4].sum() == 72  # half of the views are mirrors
    h, w = shape
    out = out.reshape(4, 3, 6, 2, 24, 24, 3)
    for si, s in enumerate(scales):
        if h <= w:
            rh, rw = s, int(w * s / h)
        else:
            rh, rw = int(h * s / w), s
        resized = tf.image.resize(img.astype(np.float32), (rh, rw)).numpy()
        extra = abs(rh - rw)
        for qi, off in enumerate([0, extra // 2, extra]):
            square = resized[off : off + s] if h > w else resized[:, off : off + s]
            assert square.shape[:2] == (s, s)
            c = (s - 24) // 2
            crops = [square[:24, :24], square[:24, -24:], square[-24:, :24], square[-24:, -24:], square[c : c + 24, c : c + 24]]
            for vi, want in enumerate(crops):
                np.testing.assert_allclose(out[si, qi, vi, 0], want, atol=0.02)
                np.testing.assert_allclose(out[si, qi, vi, 1], want[:, ::-1], atol=0.02)
            np.testing.assert_allclose(out[si, qi, 5, 1], out[si, qi, 5, 0][:, ::-1], atol=1e-3)
    # The whole square resized to 24 is one interpolation instead of the paper's two: on a
    # smooth image both give the same picture.
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    smooth = np.stack([127 + 100 * np.sin(yy / 7.0) * np.cos(xx / 9.0)] * 3, -1)
    sm = views.googlenet_144_crops(smooth, 24, scales=scales).numpy().reshape(4, 3, 6, 2, 24, 24, 3)
    s = scales[-1]
    rh, rw = (s, int(w * s / h)) if h <= w else (int(h * s / w), s)
    resized = tf.image.resize(smooth, (rh, rw)).numpy()
    square = resized[:s, :s]  # the left (top) square
    whole = tf.image.resize(square, (24, 24)).numpy()
    assert np.abs(sm[3, 0, 5, 0] - whole).max() < 6.0


def test_googlenet_default_scales_are_the_papers():
    regions = views.googlenet_144_regions(300, 400).numpy()
    assert regions.shape == (144, 5)
    # Side of the square views in original pixels: shorter side 300 rescaled to s -> 300.
    squares = regions[5 * 2 :: 12]  # the non-mirrored "square" views
    np.testing.assert_allclose(squares[:, 2], 300.0, atol=1e-3)
    crops = regions.reshape(4, 3, 6, 2, 5)[:, 0, 0, 0, 2]  # crop height in original pixels
    np.testing.assert_allclose(crops, [224 * 300 / s for s in (256, 288, 320, 352)], rtol=1e-5)


def test_vgg_grid_covers_the_image_and_matches_resize():
    h, w = 40, 54
    scales = (32, 40, 48)
    out = views.vgg_grid_crops(_image(h, w), 24, scales=scales).numpy()
    assert out.shape == (150, 24, 24, 3)
    regions = views.vgg_grid_regions(h, w, 24, scales).numpy().reshape(3, 5, 5, 2, 5)
    for si in range(3):
        covered = np.zeros((h, w), bool)
        for r in regions[si].reshape(-1, 5):
            y0, x0, rh, rw = r[:4]
            covered[int(np.floor(y0 + 1e-4)) : int(np.ceil(y0 + rh - 1e-4)), int(np.floor(x0 + 1e-4)) : int(np.ceil(x0 + rw - 1e-4))] = True
        assert covered.all(), f"scale {scales[si]} leaves pixels uncovered"
    # Bottom-right crop at scale 48 equals resize-then-slice (no antialiasing: the
    # multi-scale views sample the original), mirror included; 54 * 48 / 40 = 64.8 -> 64
    # (torchvision's truncation).
    img = _image(h, w)
    resized = tf.image.resize(img.astype(np.float32), (48, int(w * 48 / h))).numpy()
    grid = out.reshape(3, 5, 5, 2, 24, 24, 3)
    np.testing.assert_allclose(grid[2, 4, 4, 0], resized[-24:, -24:], atol=0.02)
    np.testing.assert_allclose(grid[2, 0, 0, 1], resized[:24, :24][:, ::-1], atol=0.02)


def test_dense_view_is_whole_rescaled_image_and_mirror():
    img = _image(30, 45)
    out = views.dense_view(img, 40).numpy()
    assert out.shape == (2, 40, 60, 3)
    resized = _resized(img, (40, 60))
    np.testing.assert_array_equal(out[0], resized)
    np.testing.assert_array_equal(out[1], resized[:, ::-1])


def test_views_run_inside_dataset_map_with_unknown_shapes():
    imgs = [_image(30, 41, seed=i) for i in range(3)] + [_image(44, 33, seed=9)]
    ds = tf.data.Dataset.from_generator(lambda: iter(imgs), output_signature=tf.TensorSpec([None, None, 3], tf.uint8))
    ds = ds.map(lambda im: views.googlenet_144_crops(im, 16, scales=(24, 28, 32, 36)))
    assert [tuple(x.shape) for x in ds] == [(144, 16, 16, 3)] * 4


def test_bad_arguments_raise_before_running():
    with pytest.raises(ValueError, match="scales"):
        views.vgg_grid_crops(_image(), 24, scales=(16, 32))
    with pytest.raises(ValueError, match="crop_size"):
        views.ten_crop(_image(), 0)
    with pytest.raises(ValueError, match="scales"):
        views.googlenet_144_regions(40, 40, 32, scales=())
