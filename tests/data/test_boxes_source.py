"""fashion_mnist_boxes: items placed on textured canvases, each with its known box."""

import gzip
import struct

import numpy as np
import pytest

from kerascnn.data import _boxes, load_source


def _write_idx(path, array):
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def _items(rng, n):
    """28x28 items on zero: a bright rectangle at a random place, a dim fringe pixel."""
    items = np.zeros((n, 28, 28), np.uint8)
    for i in range(n):
        y0, x0 = rng.integers(0, 14, 2)
        h, w = rng.integers(4, 14, 2)
        items[i, y0:y0 + h, x0:x0 + w] = rng.integers(60, 256)
        items[i, y0 + h, x0] = 9  # faint, but nonzero: inside the box all the same
    return items


@pytest.fixture
def idx_dir(tmp_path):
    rng = np.random.default_rng(0)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", _items(rng, 40))
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", rng.integers(0, 10, 40))
    return tmp_path


def _tight_box(image):
    ys, xs = np.nonzero(image)
    return [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


def test_boxes_are_the_tight_boxes_of_the_items_pixels():
    items = _items(np.random.default_rng(1), 60)
    plain, boxes = _boxes.place(items, canvas=40, scale=(12, 30), seed=3, background=False)
    assert plain.shape == (60, 40, 40, 1) and boxes.dtype == np.int64
    for image, box in zip(plain[..., 0], boxes):
        assert box.tolist() == _tight_box(image)  # every nonzero pixel inside; no slack
    # scaled, not just moved: the item frames take several sizes
    sizes = boxes[:, 2:] - boxes[:, :2]
    assert len(np.unique(sizes)) > 10 and sizes.max() > 14


def test_texture_is_behind_the_item_and_the_boxes_do_not_depend_on_it():
    items = _items(np.random.default_rng(2), 30)
    plain, boxes = _boxes.place(items, canvas=40, scale=(12, 30), seed=5, background=False)
    textured, same = _boxes.place(items, canvas=40, scale=(12, 30), seed=5)
    np.testing.assert_array_equal(boxes, same)
    opaque = plain >= _boxes.OPAQUE
    np.testing.assert_array_equal(textured[opaque], plain[opaque])
    background = plain == 0
    assert textured[background].std() > 5  # a texture, not a flat field
    assert (textured[background] > 0).mean() > 0.9


def test_source_carries_boxes_deterministic_per_seed(idx_dir):
    a = load_source("fashion_mnist_boxes", "test", data_dir=str(idx_dir), canvas=32, scale=(10, 24))
    b = load_source("fashion_mnist_boxes", "test", data_dir=str(idx_dir), canvas=32, scale=(10, 24))
    assert (a.num_examples, a.channels, a.num_classes, a.images.shape[1:]) == (40, 1, 10, (32, 32, 1))
    assert a.class_names[9] == "Ankle boot" and a.split == "test"
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.boxes, b.boxes)
    assert ((a.boxes[:, :2] >= 0) & (a.boxes[:, 2:] <= 32) & (a.boxes[:, 2:] > a.boxes[:, :2])).all()
    # the images are the placed items: the source's own labels, and its boxes are those of
    # the same placement without a background
    items = np.stack([x for x, _ in
                      load_source("fashion_mnist", "test", data_dir=str(idx_dir)).dataset.as_numpy_iterator()])
    _, plain_boxes = _boxes.place(items, canvas=32, scale=(10, 24), seed=0, stream=2, background=False)
    np.testing.assert_array_equal(a.boxes, plain_boxes)
    other = load_source("fashion_mnist_boxes", "test", data_dir=str(idx_dir), canvas=32,
                        scale=(10, 24), seed=1)
    assert (other.boxes != a.boxes).any() and (other.images != a.images).any()
    first = a.take(5)
    np.testing.assert_array_equal(first.boxes, a.boxes[:5])
    assert first.images.shape[0] == 5


def test_bad_options_are_one_line_errors(idx_dir):
    for kwargs, match in (({"canvas": 4}, "canvas"), ({"scale": (30, 20)}, "scale"),
                          ({"scale": (10, 99)}, "scale"), ({"seed": -1}, "seed"),
                          ({"scale": "big"}, "scale"), ({"colour": 1}, "colour")):
        with pytest.raises(ValueError, match=match):
            load_source("fashion_mnist_boxes", "test", data_dir=str(idx_dir), **kwargs)
    with pytest.raises(ValueError, match="splits 'train' and 'test'"):
        load_source("fashion_mnist_boxes", "validation", data_dir=str(idx_dir))
