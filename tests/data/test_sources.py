import gzip
import logging
import os
import struct

import numpy as np
import pytest
import tensorflow as tf
from imagegen import encode, smooth_image

from kerascnn.data import decode_image, load_source
from kerascnn.data import _fashion_mnist


# -- Fashion-MNIST ------------------------------------------------------------
def _write_idx(path, array):
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_from_idx_dir(tmp_path, monkeypatch, rng):
    images = rng.integers(0, 256, (7, 28, 28), dtype=np.uint8)
    labels = np.array([0, 9, 3, 3, 1, 2, 8], np.uint8)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels)
    monkeypatch.setenv("KERASCNN_FASHION_MNIST_DIR", str(tmp_path))
    src = load_source("fashion_mnist", split="test")
    assert (src.num_examples, src.channels, src.num_classes) == (7, 1, 10)
    assert src.class_names[9] == "Ankle boot" and not src.encoded
    got = list(src.dataset.as_numpy_iterator())
    np.testing.assert_array_equal(np.stack([x for x, _ in got])[..., 0], images)
    np.testing.assert_array_equal([y for _, y in got], labels)


def test_fashion_mnist_debian_files():
    # ./dev installs Debian's dataset-fashion-mnist before the tests: its absence is a failure.
    assert _fashion_mnist.load_arrays("test", _fashion_mnist.DEBIAN_DIR) is not None, (
        "dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)")
    src = load_source("fashion_mnist", split="test",
                      data_dir=_fashion_mnist.DEBIAN_DIR)
    assert src.images.shape == (10000, 28, 28, 1) and src.images.dtype == np.uint8
    # the test split is balanced: 1,000 images per class
    np.testing.assert_array_equal(np.bincount(src.labels), [1000] * 10)


def test_fashion_mnist_missing_names_the_package(tmp_path, monkeypatch):
    monkeypatch.setenv("KERASCNN_FASHION_MNIST_DIR", str(tmp_path))
    monkeypatch.setattr(_fashion_mnist, "DEBIAN_DIR", str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_source("fashion_mnist", split="train", download=False)
    with pytest.raises(ValueError, match="data_dir"):
        load_source("fashion_mnist", data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="split='validation'"):
        load_source("fashion_mnist", split="validation")


# -- image folders ------------------------------------------------------------
def test_image_folder(image_folder):
    src = load_source(str(image_folder))
    assert src.class_names == ["cat", "dog", "eel"] and src.encoded
    items = list(src.dataset.as_numpy_iterator())
    assert len(items) == src.num_examples == 12
    assert sorted({int(y) for _, y in items}) == [0, 1, 2]
    assert decode_image(items[0][0]).shape[-1] == 3


def test_header_sizes_and_max_short_side(image_folder, rng):
    from PIL import Image

    from kerascnn.data import _folder

    # a JPEG with a large APP1 (EXIF-like) block before its frame header, and the
    # other formats; sizes are checked against PIL's reading of the same files
    exif = Image.Exif()
    exif[0x010E] = "x" * 20000  # ImageDescription
    rgb = smooth_image(rng, 61, 90)
    files = {"big_exif.jpg": encode(rgb, "JPEG", exif=exif.tobytes()),
             "p.png": encode(rgb, "PNG"), "g.gif": encode(rgb, "GIF"),
             "b.bmp": encode(rgb, "BMP"), "gray.jpg": encode(rgb, "JPEG", mode="L")}
    for name, data in files.items():
        path = image_folder / "cat" / name
        path.write_bytes(data)
        kind, reason, size = _folder.sniff_file(str(path))
        assert reason is None, name
        with Image.open(path) as im:
            assert size == (im.height, im.width), name
    src = load_source(str(image_folder))
    want = 0
    for path in src.paths:
        with Image.open(path) as im:
            want = max(want, min(im.size))
    assert src.max_short_side == want


def test_dct_scaling_needed_only_for_large_images():
    from kerascnn.data import get_policy
    from kerascnn.data.policies import needs_dct_scaling

    resnet, alexnet = get_policy("resnet"), get_policy("alexnet")
    assert needs_dct_scaling(None, resnet, (224, 224))  # unknown sizes: keep it
    assert not needs_dct_scaling(447, resnet, (224, 224))
    assert needs_dct_scaling(448, resnet, (224, 224))
    assert not needs_dct_scaling(511, alexnet, (227, 227))  # window -> 256 first
    assert needs_dct_scaling(512, alexnet, (227, 227))


def test_image_folder_split_subdir(image_folder, tmp_path):
    (tmp_path / "ds").mkdir()
    image_folder.rename(tmp_path / "ds" / "train")
    assert load_source(str(tmp_path / "ds"), split="train").num_examples == 12


def test_missing_split_folder_is_refused_before_listing(image_folder, tmp_path,
                                                       monkeypatch):
    """``imgs/train/{cat,dog,eel}`` asked for ``val`` is refused in
    one line naming the missing folder; it never lists ``imgs`` itself (the split
    folders as classes, every training image as validation)."""
    from kerascnn.data import _folder
    from kerascnn.data.sources import folder_split

    root = tmp_path / "imgs"
    root.mkdir()
    image_folder.rename(root / "train")
    listed = []
    real = _folder.list_folder
    monkeypatch.setattr(_folder, "list_folder",
                        lambda folder, *a, **k: listed.append(folder) or real(folder, *a, **k))
    for split in ("val", "test", "validation"):
        with pytest.raises(ValueError) as err:
            load_source(str(root), split=split)
        message = str(err.value)
        assert "\n" not in message
        assert os.path.join(str(root), split) in message and "train" in message
        with pytest.raises(ValueError):
            folder_split(str(root), split)
    assert listed == []  # refused before any file was read
    src = load_source(str(root), split="train")
    assert src.class_names == ["cat", "dog", "eel"] and src.num_examples == 12
    assert src.split == "train"
    assert folder_split(str(root), "train") == os.path.join(str(root), "train")


def test_folder_of_class_folders_is_one_split(image_folder):
    src = load_source(str(image_folder), split="train")
    assert src.class_names == ["cat", "dog", "eel"] and src.split is None
    from kerascnn.data.sources import folder_split

    assert folder_split(str(image_folder), "val") == str(image_folder)
    assert folder_split("fashion_mnist", "val") is None


def test_hold_out_is_seeded_stratified_and_disjoint(image_folder):
    from kerascnn.data.sources import hold_out

    src = load_source(str(image_folder))
    rest, held = hold_out(src, 0.25, seed=3)
    assert (rest.num_examples, held.num_examples) == (9, 3)
    assert sorted(held.labels.tolist()) == [0, 1, 2]  # one per class
    assert not set(rest.paths) & set(held.paths)
    assert sorted(rest.paths + held.paths) == sorted(src.paths)
    again = hold_out(src, 0.25, seed=3)[1]
    assert again.paths == held.paths
    other = {hold_out(src, 0.25, seed=s)[1].paths for s in range(8)}
    assert len(other) > 1  # the seed chooses
    items = list(held.dataset.as_numpy_iterator())
    assert [int(y) for _, y in items] == held.labels.tolist()
    with open(held.paths[0], "rb") as f:
        assert items[0][0] == f.read()
    with pytest.raises(ValueError, match="fraction"):
        hold_out(src, 1.0, seed=0)


def test_bad_files_skipped_with_warnings(image_folder, rng, caplog):
    rgb = smooth_image(rng, 30, 40)
    cat = image_folder / "cat"
    good_jpeg = encode(rgb, "JPEG")
    bad = {
        "zero.jpg": b"",
        "text.jpg": b"this is not an image at all",
        "truncated.jpg": good_jpeg[: len(good_jpeg) // 2],
        "truncated.png": encode(rgb, "PNG")[:200],
    }
    good = {
        "png_named.jpg": encode(rgb, "PNG"),
        "gray.png": encode(rgb[..., 0], "PNG"),
        "cmyk.jpg": encode(rgb, "JPEG", mode="CMYK"),
        "rgba.png": encode(np.dstack([rgb, rgb[..., :1]]), "PNG"),
        "g16.png": encode(rgb[..., 0].astype(np.uint16) * 257, "PNG"),
        "large.jpg": encode(smooth_image(rng, 2400, 3000), "JPEG", quality=60),
    }
    for name, data in {**bad, **good}.items():
        (cat / name).write_bytes(data)
    (cat / "notes.txt").write_text("ignored: not an image extension")
    with caplog.at_level(logging.WARNING, logger="kerascnn.data"):
        src = load_source(str(image_folder))
    for name in bad:
        assert any(name in r.getMessage() for r in caplog.records), name
    assert any("skipped 4 bad image file(s)" in r.getMessage() for r in caplog.records)
    assert src.num_examples == 12 + len(good)
    shapes = [decode_image(x).shape for x, _ in src.dataset]
    assert all(s[-1] == 3 for s in shapes) and (2400, 3000, 3) in shapes


def test_validate_decode_catches_corrupt_middle(image_folder, rng, caplog):
    data = bytearray(encode(smooth_image(rng, 64, 64), "PNG"))
    data[60:200] = b"\x00" * 140  # header and IEND intact, IDAT broken
    (image_folder / "dog" / "corrupt.png").write_bytes(bytes(data))
    assert load_source(str(image_folder)).num_examples == 13  # header check passes
    with caplog.at_level(logging.WARNING, logger="kerascnn.data"):
        src = load_source(str(image_folder), validate="decode")
    assert src.num_examples == 12
    assert any("corrupt.png" in r.getMessage() for r in caplog.records)


def test_folder_errors(tmp_path, image_folder):
    with pytest.raises(ValueError, match="no such path"):
        load_source(str(tmp_path / "missing"))
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "a.jpg").write_bytes(b"")
    with pytest.raises(ValueError, match="No class sub-folders"):
        load_source(str(tmp_path / "flat"))
    (image_folder / "fox").mkdir()
    with pytest.raises(ValueError, match=r"no image files.*\['fox'\]"):
        load_source(str(image_folder))
    (image_folder / "fox" / "x.jpg").write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"no usable image left: \['fox'\]"):
        load_source(str(image_folder))


# -- TFRecord -----------------------------------------------------------------
def _write_shards(tmp_path, rng, labels_per_shard):
    for s, labels in enumerate(labels_per_shard):
        with tf.io.TFRecordWriter(str(tmp_path / f"train-{s:05d}-of-00002")) as w:
            for label in labels:
                ex = tf.train.Example(features=tf.train.Features(feature={
                    "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(
                        value=[encode(smooth_image(rng, 20, 24), "JPEG")])),
                    "image/class/label": tf.train.Feature(
                        int64_list=tf.train.Int64List(value=[label])),
                }))
                w.write(ex.SerializeToString())
    return str(tmp_path / "train-*")


def test_tfrecord_one_based_labels(tmp_path, rng):
    pattern = _write_shards(tmp_path, rng, [[1, 2, 3], [3, 2]])
    with pytest.raises(ValueError, match="label_offset=-1"):
        load_source("tfrecord:" + pattern, num_classes=3)
    src = load_source("tfrecord:" + pattern, num_classes=3, label_offset=-1)
    labels = sorted(int(y) for _, y in src.dataset)
    assert labels == [0, 1, 1, 2, 2] and src.num_classes == 3
    x, _ = next(iter(src.dataset))
    assert decode_image(x).shape == (20, 24, 3)


def test_tfrecord_errors(tmp_path, rng):
    with pytest.raises(ValueError, match="No TFRecord files"):
        load_source("tfrecord:" + str(tmp_path / "none-*"))
    pattern = _write_shards(tmp_path, rng, [[0, 5]])
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\)"):
        load_source("tfrecord:" + pattern, num_classes=3)


# -- tfds -----------------------------------------------------------------------
@pytest.mark.parametrize("name,classes,channels", [("imagenet2012", 1000, 3),
                                                   ("cifar10", 10, 3),
                                                   ("fashion_mnist", 10, 1)])
def test_tfds_mock(name, classes, channels, tmp_path):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=4,
                                policy=tfds.testing.MockPolicy.USE_CODE):
        src = load_source("tfds:" + name, split="train", data_dir=str(tmp_path))
        assert src.encoded and src.num_classes == classes and src.channels == channels
        for x, y in src.dataset.take(2):
            image = decode_image(x, channels)
            assert image.dtype == tf.uint8 and image.shape[-1] == channels
            assert 0 <= int(y) < classes
    if name == "imagenet2012":
        assert src.class_names[0] == "n01440764"  # the WordNet id of class 0 (tench)


def test_bad_spec():
    with pytest.raises(ValueError, match="spec=3"):
        load_source(3)
    with pytest.raises(ValueError, match="Received: spec='tfds:'"):
        load_source("tfds:")


def test_tfrecord_sharded_by_file_across_input_pipelines(tmp_path, rng):
    from kerascnn.data import train_dataset

    pattern = _write_shards(tmp_path, rng, [[0, 0, 1, 1], [2, 2, 2, 2]])
    src = load_source("tfrecord:" + pattern, num_classes=3)
    labels = []
    for pid in range(2):
        ctx = tf.distribute.InputContext(2, pid, 2)
        ds = train_dataset(src, "cifar", batch_size=4, seed=0, image_size=(16, 16),
                           input_context=ctx)
        labels.append(sorted(int(v) for _, y in ds for v in y))
    assert labels == [[0, 0, 1, 1], [2, 2, 2, 2]]  # one file each


def test_from_arrays_checks_labels_and_shapes():
    from kerascnn.data import from_arrays

    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\)"):
        from_arrays(np.zeros((3, 4, 4, 1), np.uint8), [0, 1, 2], ["a", "b"])
    with pytest.raises(ValueError, match="dtype=float"):
        from_arrays(np.zeros((3, 4, 4, 1)), [0, 1, 1], ["a", "b"])
    src = from_arrays(np.zeros((3, 4, 4), np.uint8), [0, 1, 1], ["a", "b"])
    assert src.channels == 1 and src.images.shape == (3, 4, 4, 1)


def test_typed_source_fields_take_and_reader(image_folder, tmp_path, rng):
    src = load_source(str(image_folder))
    assert src.indexed and len(src.paths) == len(src.labels) == src.num_examples == 12
    assert src.root == str(image_folder) and src.skipped == [] and src.all_jpeg
    read = src.example_reader()
    for i in (0, 7, 11):
        data, label = read(tf.constant(i, tf.int64))
        assert data.numpy() == open(src.paths[i], "rb").read()
        assert int(label) == src.labels[i]
    few = src.take(5)
    assert few.indexed and few.num_examples == 5 and few.paths == src.paths[:5]
    assert [int(y) for _, y in few.dataset] == list(src.labels[:5])
    assert src.take(50) is src
    pattern = _write_shards(tmp_path, rng, [[0, 1], [1, 0, 1]])
    shards = load_source("tfrecord:" + pattern, num_classes=2)
    assert not shards.indexed and len(shards.files) == 2
    assert len(list(shards.read_files(shards.files[1:]))) == 3
    assert len(list(shards.take(4).dataset)) == 4


def test_download_options_are_ignored_by_files_on_disk(image_folder, tmp_path, rng):
    # a recipe's manual_dir (tfds:imagenet2012) kept when the source becomes files
    src = load_source(str(image_folder), manual_dir="~/imagenet", download=False)
    assert src.num_examples == 12
    pattern = _write_shards(tmp_path, rng, [[0, 1]])
    assert load_source("tfrecord:" + pattern, num_classes=2,
                       manual_dir="/data/manual").files
    with pytest.raises(ValueError, match="label_ofset=1"):
        load_source(str(image_folder), label_ofset=1)
