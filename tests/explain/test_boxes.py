"""boxes_from_map: the CAM paper's box (Zhou et al. 2016, §3/§4.1) on maps whose
answer is known by construction, and against scipy's connected components."""

import numpy as np
import pytest

from kerascnn.explain.boxes import boxes_from_map, resize_bilinear


def _map(shape, *blobs):
    m = np.zeros(shape, np.float32)
    for (y0, y1, x0, x1), v in blobs:
        m[y0:y1, x0:x1] = v
    return m


def test_one_component_box_is_its_bounding_box():
    m = _map((10, 12), ((2, 5, 3, 9), 1.0))
    assert boxes_from_map(m).tolist() == [3, 2, 9, 5]  # x0, y0, x1, y1; ends exclusive


def test_the_largest_component_wins_not_the_brightest():
    # a small bright blob (4 pixels at 1.0) and a larger dim one (12 pixels at 0.5 > 20 %)
    m = _map((10, 10), ((1, 3, 1, 3), 1.0), ((5, 8, 4, 8), 0.5))
    assert boxes_from_map(m).tolist() == [4, 5, 8, 8]
    # below 20 % of the max the large blob is background
    m = _map((10, 10), ((1, 3, 1, 3), 1.0), ((5, 8, 4, 8), 0.15))
    assert boxes_from_map(m).tolist() == [1, 1, 3, 3]


def test_diagonal_neighbours_are_connected():
    m = np.eye(6, dtype=np.float32)  # one 8-connected component of 6 pixels
    m[0, 5] = m[1, 5] = 1.0  # a 4-connected pair elsewhere: smaller
    assert boxes_from_map(m).tolist() == [0, 0, 6, 6]


def test_threshold_edges():
    m = _map((8, 8), ((0, 8, 0, 8), 0.2), ((2, 4, 2, 4), 1.0))
    assert boxes_from_map(m, threshold=0.2).tolist() == [0, 0, 8, 8]  # 0.2 >= 0.2 * max
    assert boxes_from_map(m, threshold=0.21).tolist() == [2, 2, 4, 4]
    assert boxes_from_map(m, threshold=1.0).tolist() == [2, 2, 4, 4]  # the maxima only
    assert boxes_from_map(m, threshold=0.0).tolist() == [0, 0, 8, 8]


def test_flat_zero_and_negative_maps_give_the_whole_image():
    assert boxes_from_map(np.zeros((5, 7))).tolist() == [0, 0, 7, 5]
    assert boxes_from_map(-np.ones((5, 7)), image_size=(20, 28)).tolist() == [0, 0, 28, 20]
    assert boxes_from_map(np.full((5, 7), 3.0)).tolist() == [0, 0, 7, 5]


def test_negative_values_are_below_any_positive_threshold():
    m = _map((6, 6), ((0, 6, 0, 6), -5.0), ((1, 3, 2, 5), 2.0))
    assert boxes_from_map(m).tolist() == [2, 1, 5, 3]


def test_upsampled_to_the_image_in_image_pixels():
    # one hot cell of a 4x4 map, upsampled to 32x32: bilinear with half-pixel centres
    # makes it a separable tent, tx(x) * ty(y) with t(d) = max(0, 1 - |d|) and d the
    # distance in cells from the cell's centre to the pixel's centre. The box's columns are
    # those where tx * max(ty) >= 0.2 * max(tx) * max(ty), i.e. tx >= 0.2 * max(tx).
    m = _map((4, 4), ((1, 2, 2, 3), 1.0))
    x0, y0, x1, y1 = boxes_from_map(m, image_size=32)
    centres = (np.arange(32) + 0.5) / 8 - 0.5  # pixel centres in map cells
    tx, ty = (np.clip(1 - np.abs(centres - c), 0, None) for c in (2, 1))
    inside_x = np.flatnonzero(tx >= 0.2 * tx.max())
    inside_y = np.flatnonzero(ty >= 0.2 * ty.max())
    assert (x0, x1) == (inside_x[0], inside_x[-1] + 1) == (13, 27)
    assert (y0, y1) == (inside_y[0], inside_y[-1] + 1) == (5, 19)
    # a non-square image: x follows the width (12 pixels a cell), y the height (4)
    def extent(size, cell):
        t = np.clip(1 - np.abs((np.arange(size) + 0.5) * 4 / size - 0.5 - cell), 0, None)
        inside = np.flatnonzero(t >= 0.2 * t.max())
        return inside[0], inside[-1] + 1

    x0, y0, x1, y1 = boxes_from_map(m, image_size=(16, 48))
    assert ((x0, x1), (y0, y1)) == (extent(48, 2), extent(16, 1))


def test_resize_matches_tensorflow():
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(0)
    maps = rng.random((3, 5, 7))
    ours = resize_bilinear(maps, (40, 33))
    theirs = tf.image.resize(maps[..., None], (40, 33), method="bilinear").numpy()[..., 0]
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_batch_equals_one_by_one_and_scipy():
    ndimage = pytest.importorskip("scipy.ndimage")
    rng = np.random.default_rng(1)
    maps = rng.random((24, 6, 5))
    for threshold in (0.2, 0.6, 0.9):
        batch = boxes_from_map(maps, threshold, image_size=(30, 26))
        assert batch.shape == (24, 4)
        up = resize_bilinear(maps, (30, 26))
        for i, m in enumerate(maps):
            assert boxes_from_map(m, threshold, image_size=(30, 26)).tolist() == batch[i].tolist()
            labels, _ = ndimage.label(up[i] >= threshold * up[i].max(), structure=np.ones((3, 3)))
            sizes = np.bincount(labels.ravel())[1:]
            ys, xs = ndimage.find_objects(labels)[int(np.argmax(sizes))]
            assert batch[i].tolist() == [xs.start, ys.start, xs.stop, ys.stop]


def test_margin_takes_the_halo_off_whatever_the_size():
    """A map that is an object seen through a uniform (2r+1)-pixel window (the mask
    convolved with it, written here) is positive on the object grown by r pixels on every
    side, whatever the object's size: at a low threshold the box is that, and r pixels
    off each side give the object itself, small or large."""
    from scipy import ndimage

    r = 3
    for y0, y1, x0, x1 in ((20, 24, 30, 34), (8, 40, 10, 30), (5, 9, 12, 44)):
        mask = np.zeros((48, 56))
        mask[y0:y1, x0:x1] = 1.0
        m = ndimage.convolve(mask, np.ones((2 * r + 1, 2 * r + 1)), mode="constant")
        grown = [x0 - r, y0 - r, x1 + r, y1 + r]
        assert boxes_from_map(m, threshold=0.01).tolist() == grown
        assert boxes_from_map(m, threshold=0.01, margin=r).tolist() == [x0, y0, x1, y1]
        assert boxes_from_map(m, threshold=0.01, margin=(r, 0)).tolist() == [x0 - r, y0, x1 + r, y1]
        # rounded half up: 2.5 is 3, 2.49 is 2
        assert boxes_from_map(m, threshold=0.01, margin=2.5).tolist() == [x0, y0, x1, y1]
        assert boxes_from_map(m, threshold=0.01, margin=2.49).tolist() == [x0 - 1, y0 - 1, x1 + 1, y1 + 1]


def test_margin_keeps_the_middle_and_the_whole_image_fallback():
    m = _map((10, 12), ((2, 5, 3, 9), 1.0))  # 6 wide, 3 high
    # at most (side - 1) // 2 per side: 2 columns, 1 row; the middle is kept
    assert boxes_from_map(m, margin=9).tolist() == [5, 3, 7, 4]
    assert boxes_from_map(m, margin=(1, 2)).tolist() == [5, 3, 7, 4]
    assert boxes_from_map(m, margin=np.array([1.0, 2.0])).tolist() == [5, 3, 7, 4]
    assert boxes_from_map(m, margin=np.float32(1e30)).tolist() == [5, 3, 7, 4]
    assert boxes_from_map(m, margin=0).tolist() == boxes_from_map(m).tolist() == [3, 2, 9, 5]
    # a map that says nothing keeps the whole image
    assert boxes_from_map(np.zeros((2, 5, 7)), margin=2).tolist() == [[0, 0, 7, 5]] * 2
    # the batch: each box shrunk, the empty map not
    batch = np.stack([m, np.zeros_like(m)])
    assert boxes_from_map(batch, margin=1).tolist() == [[4, 3, 8, 4], [0, 0, 12, 10]]


def test_empty_batch_and_bad_arguments():
    assert boxes_from_map(np.zeros((0, 4, 4))).shape == (0, 4)
    for bad in (np.zeros(5), np.zeros((1, 2, 3, 4)), np.zeros((3, 0))):
        with pytest.raises(ValueError, match="heatmap"):
            boxes_from_map(bad)
    with pytest.raises(ValueError, match="NaN"):
        boxes_from_map(np.full((3, 3), np.nan))
    for bad in (-0.1, 1.5, "0.2", True):
        with pytest.raises(ValueError, match="threshold"):
            boxes_from_map(np.ones((3, 3)), threshold=bad)
    with pytest.raises(ValueError, match="image_size"):
        boxes_from_map(np.ones((3, 3)), image_size=(0, 4))
    for bad in (-1, float("nan"), float("inf"), "2", True, (1, 2, 3), (1, -1), None, [[1, 1]],
                np.array([True, True])):
        with pytest.raises(ValueError, match="margin"):
            boxes_from_map(np.ones((3, 3)), margin=bad)
