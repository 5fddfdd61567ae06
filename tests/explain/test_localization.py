"""ILSVRC's localization metric against hand-computed cases, the baselines, the
PASCAL-VOC reader, and `kerascnn evaluate --protocol localization` end to end on a tiny
trained GAP network, checked against CAM boxes computed here from the paper's formula."""

import gzip
import json
import struct

import numpy as np
import pytest

from kerascnn.explain.localization import (
    best_centered_box,
    centered_boxes,
    iou,
    localization_error,
    read_voc_xml,
    whole_image_boxes,
)


# -- IoU and the error, by hand ---------------------------------------------------------
def test_iou_by_hand():
    assert iou([0, 0, 10, 10], [5, 5, 15, 15]) == pytest.approx(25 / 175)
    assert iou([0, 0, 10, 10], [0, 0, 5, 10]) == pytest.approx(0.5)
    assert iou([0, 0, 10, 10], [0, 0, 10, 10]) == 1.0
    assert iou([0, 0, 10, 10], [10, 0, 20, 10]) == 0.0  # touching: ends are exclusive
    assert iou([0, 0, 0, 0], [0, 0, 0, 0]) == 0.0
    # broadcast: one box against three
    np.testing.assert_allclose(iou([0, 0, 4, 4], [[0, 0, 2, 2], [2, 2, 6, 6], [0, 0, 4, 8]]),
                               [4 / 16, 4 / 28, 16 / 32])
    with pytest.raises(ValueError, match="Boxes"):
        iou([0, 0, 1], [0, 0, 1, 1])


def test_localization_error_by_hand():
    labels = [0, 1, 2, 3]
    guesses = [[0, 4, 5, 6, 7],   # right at 1, box IoU 1          -> top-1 and top-5 hit
               [1, 2, 3, 4, 5],   # right at 1, box IoU 1/7        -> miss
               [5, 6, 2, 7, 8],   # right at 3, box IoU exactly .5 -> top-5 hit only
               [0, 1, 2, 4, 5]]   # label 3 not guessed            -> miss
    gt = np.array([[0, 0, 10, 10]] * 4)
    boxes = np.zeros((4, 5, 4))
    boxes[0, 0] = [0, 0, 10, 10]
    boxes[1, 0] = [5, 5, 15, 15]
    boxes[2, 2] = [0, 0, 5, 10]
    boxes[3, :] = [0, 0, 10, 10]  # a perfect box cannot save a wrong class
    err = localization_error(guesses, boxes, labels, gt)
    assert err == {1: pytest.approx(75.0), 5: pytest.approx(50.0)}
    # a wrong class with the right box: an error; the right class with a good box at
    # a wrong guess's place does not count for that guess
    boxes[2, 0] = [0, 0, 10, 10]
    boxes[2, 2] = [20, 20, 30, 30]
    assert localization_error(guesses, boxes, labels, gt)[5] == pytest.approx(75.0)


def test_any_ground_truth_box_of_the_image_counts():
    gt = [np.array([[0, 0, 4, 4], [10, 10, 20, 20]]), np.array([[0, 0, 4, 4]])]
    boxes = np.array([[11, 11, 20, 20], [11, 11, 20, 20]])  # IoU 81/100 with the second
    err = localization_error([[1], [1]], boxes, [1, 1], gt, top=(1,))
    assert err == {1: pytest.approx(50.0)}


def test_baselines_by_hand():
    sizes = [(100, 200)] * 3  # (height, width)
    np.testing.assert_array_equal(whole_image_boxes(sizes), [[0, 0, 200, 100]] * 3)
    np.testing.assert_allclose(centered_boxes((100, 200), 0.5, 0.2, n=1), [[50, 40, 150, 60]])
    # every object is the centred half of its image: the best fixed box is that, error 0
    # where the class is right (2 of 3 at top-1, 3 of 3 at top-5)
    gt = np.array([[50, 25, 150, 75]] * 3)
    guesses = [[1, 0], [1, 2], [0, 1]]
    (w, h), err = best_centered_box(guesses, [1, 1, 1], gt, sizes)
    assert (w, h) == (0.5, 0.5)
    assert err == {1: pytest.approx(100 / 3), 5: pytest.approx(0.0)}
    # the whole image: IoU 1/4 with the half-size box, a miss everywhere
    assert localization_error(guesses, whole_image_boxes(sizes), [1, 1, 1], gt) == {1: 100.0, 5: 100.0}


# -- PASCAL-VOC files -------------------------------------------------------------------
VOC = """<annotation>
  <folder>val</folder><filename>ILSVRC2012_val_00000001</filename>
  <size><width>500</width><height>375</height><depth>3</depth></size>
  <object><name>n01751748</name><pose>Unspecified</pose>
    <bndbox><xmin>111</xmin><ymin>108</ymin><xmax>441</xmax><ymax>193</ymax></bndbox></object>
  <object><name>n01751748</name>
    <bndbox><xmin>0</xmin><ymin>0</ymin><xmax>9</xmax><ymax>19</ymax></bndbox></object>
  <object><name>n00000001</name>
    <bndbox><xmin>5</xmin><ymin>5</ymin><xmax>10</xmax><ymax>10</ymax></bndbox></object>
</annotation>"""


def test_voc_reader(tmp_path):
    path = tmp_path / "a.xml"
    path.write_text(VOC)
    a = read_voc_xml(path)
    assert (a.width, a.height) == (500, 375)
    # inclusive pixel indices -> exclusive ends: 111..441 is 331 pixels wide
    np.testing.assert_array_equal(a.boxes("n01751748"), [[111, 108, 442, 194], [0, 0, 10, 20]])
    assert len(a.boxes()) == 3 and len(a.boxes("n99")) == 0
    # PASCAL VOC's own files are 1-based; a 0 there is outside the image
    with pytest.raises(ValueError, match="outside"):
        read_voc_xml(path, origin=1)
    path.write_text(VOC.replace("<xmin>0</xmin><ymin>0</ymin>", "<xmin>1</xmin><ymin>1</ymin>"))
    one_based = read_voc_xml(path, origin=1)
    np.testing.assert_array_equal(one_based.boxes("n00000001"), [[4, 4, 10, 10]])
    np.testing.assert_array_equal(one_based.boxes("n01751748")[1], [0, 0, 9, 19])


@pytest.mark.parametrize("text, match", [
    ("<annotation><size><width>5</width>", "not well-formed"),
    ("<notvoc/>", "root is <notvoc>"),
    ("<annotation><object/></annotation>", "no <size>"),
    ("<annotation><size><width>5</width><height>x</height></size></annotation>", "number"),
    ("<annotation><size><width>50</width><height>40</height></size></annotation>", "no <object>"),
    ("<annotation><size><width>50</width><height>40</height></size><object><name>a</name>"
     "<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>60</xmax><ymax>3</ymax></bndbox></object></annotation>",
     "outside"),
    ("<annotation><size><width>50</width><height>40</height></size><object><name>a</name>"
     "<bndbox><xmin>9</xmin><ymin>1</ymin><xmax>3</xmax><ymax>3</ymax></bndbox></object></annotation>",
     "inverted"),
    ("<annotation><size><width>50</width><height>40</height></size><object><name>a</name>"
     "</object></annotation>", "without <bndbox>"),
    ('<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "y">]><annotation>&x;</annotation>', "DOCTYPE"),
    ('<!ENTITY % e SYSTEM "file:///etc/passwd"><annotation/>', "ENTITY"),
])
def test_voc_reader_refuses_malformed_files_in_one_line(tmp_path, text, match):
    path = tmp_path / "bad.xml"
    path.write_text(text)
    with pytest.raises(ValueError, match=match) as info:
        read_voc_xml(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message


# -- kerascnn evaluate --protocol localization, end to end --------------------------------
def _write_idx(path, array):
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def _gap_net(classes=10, seed=0):
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((64, 64, 1))
    x = keras.layers.Rescaling(1 / 128.0, offset=-1.0)(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="features")(x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = keras.layers.Dense(classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="tiny_gap")


def _reference_cam_boxes(model, images, labels, threshold=0.2, margin=0):
    """CAM by the paper's formula (A @ W[:, c]), upsampled (tf.image.resize), thresholded
    at 20 % of its max, the largest 8-connected component (scipy): written here; with
    ``margin`` pixels off each side (at most as many as leave the box's middle)."""
    import keras
    import tensorflow as tf
    from scipy import ndimage

    features = keras.Model(model.inputs, model.get_layer("features").output)
    a = features.predict(images.astype(np.float32), verbose=0)
    w = model.get_layer("predictions").kernel.numpy()
    cams = np.einsum("nhwk,kn->nhw", a, w[:, labels])
    up = tf.image.resize(cams[..., None], (64, 64), method="bilinear").numpy()[..., 0]
    boxes = []
    for m in up:
        if m.max() <= 0:
            boxes.append([0, 0, 64, 64])
            continue
        lab, _ = ndimage.label(m >= threshold * m.max(), structure=np.ones((3, 3)))
        ys, xs = ndimage.find_objects(lab)[int(np.argmax(np.bincount(lab.ravel())[1:]))]
        cx = min(margin, (xs.stop - xs.start - 1) // 2)
        cy = min(margin, (ys.stop - ys.start - 1) // 2)
        boxes.append([xs.start + cx, ys.start + cy, xs.stop - cx, ys.stop - cy])
    return np.array(boxes), model.predict(images.astype(np.float32), verbose=0)


def test_evaluate_localization_end_to_end(tmp_path, capsys):
    from kerascnn.cli import main
    from kerascnn.data import load_source

    rng = np.random.default_rng(0)
    items = np.zeros((48, 28, 28), np.uint8)
    labels = rng.integers(0, 3, 48)
    for i, c in enumerate(labels):  # three shapes: a square, a bar, a column
        h, w = [(20, 20), (8, 26), (26, 8)][c]
        items[i, 14 - h // 2:14 - h // 2 + h, 14 - w // 2:14 - w // 2 + w] = 220
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", items)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels)
    source = load_source("fashion_mnist_boxes", "test", data_dir=str(tmp_path))
    model = _gap_net()
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(source.images.astype(np.float32), source.labels, epochs=3, batch_size=16, verbose=0)
    model.save(tmp_path / "tiny.keras")

    out = tmp_path / "report"
    assert main(["evaluate", "--model", str(tmp_path / "tiny.keras"), "--source", "fashion_mnist_boxes",
                 "--data-dir", str(tmp_path), "--protocol", "center,localization", "--method", "cam",
                 "--mean", "none", "--pad", "0", "--resize", "none", "--batch-size", "20", "--out", str(out),
                 "--quiet"]) == 0
    rows = {r["protocol"]: r for r in json.loads((tmp_path / "report.json").read_text())["results"]}
    assert set(rows) == {"center", "localization:cam", "localization:whole-image",
                         "localization:centred-box"}

    boxes, probs = _reference_cam_boxes(model, source.images, source.labels)
    order = np.argsort(-probs, axis=1)[:, :5]
    overlap = iou(boxes, source.boxes)
    right1 = order[:, 0] == source.labels
    right5 = (order == source.labels[:, None]).any(axis=1)
    expected1 = 100 * (1 - (right1 & (overlap >= 0.5)).mean())
    expected5 = 100 * (1 - (right5 & (overlap >= 0.5)).mean())
    assert rows["localization:cam"]["top1"] == pytest.approx(expected1)
    assert rows["localization:cam"]["top5"] == pytest.approx(expected5)
    whole = iou([0, 0, 64, 64], source.boxes) >= 0.5
    assert rows["localization:whole-image"]["top1"] == pytest.approx(100 * (1 - (right1 & whole).mean()))
    # the classification error of the same pass is the center protocol's
    assert rows["center"]["top1"] == pytest.approx(100 * (1 - right1.mean()))
    assert "centred box" in rows["localization:centred-box"]["settings"]
    assert f"top-1 {rows['center']['top1']:.2f} %" in rows["localization:cam"]["settings"]

    # a lower threshold with the map's halo taken off (lead 6 of docs/localization.md)
    assert main(["evaluate", "--model", str(tmp_path / "tiny.keras"), "--source", "fashion_mnist_boxes",
                 "--data-dir", str(tmp_path), "--protocol", "localization", "--method", "cam",
                 "--threshold", "0.05", "--margin", "3", "--mean", "none", "--pad", "0",
                 "--resize", "none", "--out", str(out), "--quiet"]) == 0
    rows = {r["protocol"]: r for r in json.loads((tmp_path / "report.json").read_text())["results"]}
    boxes, _ = _reference_cam_boxes(model, source.images, source.labels, threshold=0.05, margin=3)
    hit = right1 & (iou(boxes, source.boxes) >= 0.5)
    assert rows["localization:cam"]["top1"] == pytest.approx(100 * (1 - hit.mean()))
    assert "threshold 0.05 of the map's maximum, largest connected component, 3 px off each side" \
        in rows["localization:cam"]["settings"]
    capsys.readouterr()
    assert main(["evaluate", "--model", str(tmp_path / "tiny.keras"), "--source", "fashion_mnist_boxes",
                 "--data-dir", str(tmp_path), "--protocol", "localization", "--margin", "-1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "`--margin` must be a number of pixels >= 0" in err and "\n" not in err


def test_localization_needs_boxes_and_one_network(tmp_path, capsys):
    from kerascnn.cli import main

    model = _gap_net()
    model.save(tmp_path / "tiny.keras")
    folder = tmp_path / "images" / "cat"
    folder.mkdir(parents=True)
    from PIL import Image

    Image.fromarray(np.zeros((64, 64), np.uint8)).save(folder / "a.png")
    code = main(["evaluate", "--model", str(tmp_path / "tiny.keras"), "--source",
                 str(tmp_path / "images"), "--protocol", "localization", "--quiet"])
    err = capsys.readouterr().err
    assert code != 0 and "no PASCAL-VOC box file" in err and "a.xml" in err
    assert "Traceback" not in err
    code = main(["evaluate", "--models", str(tmp_path / "tiny.keras"), str(tmp_path / "tiny.keras"),
                 "--protocol", "localization", "--quiet"])
    assert code != 0 and "one network" in capsys.readouterr().err


def _voc(path, width, height, objects):
    body = "".join(f"<object><name>{n}</name><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin>"
                   f"<xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>" for n, b in objects)
    path.write_text(f"<annotation><size><width>{width}</width><height>{height}</height></size>"
                    f"{body}</annotation>")


def test_image_folder_with_voc_files(tmp_path):
    """ILSVRC's layout: synset folders, a VOC file beside each image naming the synset;
    images of other sizes than the network's input (the box comes back in the image's own
    pixels); only the boxes of the image's class count."""
    from PIL import Image

    from kerascnn.data import load_source
    from kerascnn.data.preprocessing import Preprocessing
    from kerascnn.explain.localization import evaluate_localization, ground_truth

    model = _gap_net(classes=2)
    for c, synset in enumerate(("n01440764", "n01443537")):
        (tmp_path / synset).mkdir()
        for i in range(3):
            w, h = 80 + 16 * i, 64 + 8 * c
            Image.fromarray(np.full((h, w), 40 * (i + 1), np.uint8)).save(tmp_path / synset / f"{i}.png")
            # the image's class covers its left half (inclusive indices); another class, all of it
            _voc(tmp_path / synset / f"{i}.xml", w, h,
                 [(synset, (0, 0, w // 2 - 1, h - 1)), ("n99999999", (0, 0, w - 1, h - 1))])
    source = load_source(str(tmp_path), "train", channels=1)
    gt, sizes = ground_truth(source)
    assert len(gt) == 6 and all(len(g) == 1 for g in gt)
    assert gt[0].tolist() == [[0, 0, 40, 64]] and sizes[0] == (64, 80)
    prep = Preprocessing((64, 64), 1, resize=64)
    report = evaluate_localization(model, source, prep, method="gradcam", batch_size=4, verbose=0)
    assert report.examples == 6 and report.image_size is None  # sizes differ
    # the whole image has IoU 1/2 with the left half: a hit wherever the class is right
    assert report.whole_image[5] == pytest.approx(0.0)
    assert report.whole_image[1] == pytest.approx(report.classification_top1)
    # the margin is in the network's input pixels: 1.5 of a 144x96 image's (resized to 96x64)
    from kerascnn.explain import explain_images

    image = np.random.default_rng(2).integers(0, 255, (96, 144, 1), np.uint8)
    plain, shrunk = (explain_images(model, [image], prep, method="gradcam", threshold=0.05,
                                    margin=m)[0].box for m in (0, 2))
    cx, cy = (min(3, (plain[i + 2] - plain[i] - 1) // 2) for i in (0, 1))
    assert plain[2] - plain[0] > 7 and plain[3] - plain[1] > 7  # room for the whole margin
    assert shrunk == (plain[0] + cx, plain[1] + cy, plain[2] - cx, plain[3] - cy)
    # a file whose <size> disagrees with the image
    _voc(tmp_path / "n01440764" / "1.xml", 33, 64, [("n01440764", (0, 0, 9, 9))])
    with pytest.raises(ValueError, match=r"1\.xml: <size> says 33x64 but the image is 96x64"):
        evaluate_localization(model, source, prep, method="cam", verbose=0)
    # a file without the image's class
    _voc(tmp_path / "n01440764" / "1.xml", 96, 64, [("n02000000", (0, 0, 9, 9))])
    with pytest.raises(ValueError, match="no <object> of the image's class 'n01440764'"):
        ground_truth(source)
