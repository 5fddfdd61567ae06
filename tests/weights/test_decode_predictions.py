"""``decode_predictions`` and the shipped ImageNet class index; ``preprocess_input``.

The class index is checked against two published sources, neither of them ours:
keras.applications' md5 of its ``imagenet_class_index.json`` (read from the installed
keras' own source) and tensorflow_datasets' ``imagenet2012/labels.txt`` (the WordNet
ids in class order).
"""

from __future__ import annotations

import hashlib
import inspect
import os
import re

import numpy as np
import pytest

from kerascnn.applications import decode_predictions, preprocess_input
from kerascnn.weights import classes


def test_class_index_is_keras_file_byte_for_byte():
    from keras.src.applications import imagenet_utils

    source = inspect.getsource(imagenet_utils.decode_predictions)
    keras_md5 = re.search(r'file_hash="([0-9a-f]{32})"', source)[1]
    with open(classes.CLASS_INDEX_FILE, "rb") as f:
        assert hashlib.md5(f.read()).hexdigest() == keras_md5


def test_wordnet_ids_in_tfds_imagenet2012_order():
    import tensorflow_datasets as tfds

    root = os.path.dirname(tfds.__file__)
    path = os.path.join(root, "datasets", "imagenet2012", "labels.txt")
    with open(path) as f:
        wnids = f.read().split()
    assert [w for w, _ in classes.imagenet_classes()] == wnids
    assert len(wnids) == 1000 and wnids == sorted(wnids)


def test_decode_predictions_top_k_highest_first():
    probs = np.zeros((2, 1000), np.float32)
    probs[0, [0, 1, 999]] = [0.2, 0.7, 0.1]
    probs[1, 207] = 1.0
    out = decode_predictions(probs, top=3)
    assert [(w, n) for w, n, _ in out[0]] == [
        ("n01443537", "goldfish"), ("n01440764", "tench"), ("n15075141", "toilet_tissue")]
    np.testing.assert_allclose([s for *_, s in out[0]], [0.7, 0.2, 0.1], rtol=1e-6)
    assert out[1][0][:2] == ("n02099601", "golden_retriever") and len(out[1]) == 3
    assert len(decode_predictions(probs)[0]) == 5


@pytest.mark.parametrize("probs, top, match", [
    (np.zeros((2, 10)), 5, r"shape \(samples, 1000\)"),
    (np.zeros(1000), 5, r"shape \(samples, 1000\)"),
    (np.zeros((1, 1000)), 0, r"top=0"),
])
def test_decode_predictions_errors(probs, top, match):
    with pytest.raises(ValueError, match=match):
        decode_predictions(probs, top=top)


def test_preprocess_input_subtracts_the_set_mean():
    images = np.full((1, 2, 2, 3), 200.0, np.float32)
    keras_mean = np.array([123.68, 116.779, 103.939])
    tv_mean = 255 * np.array([0.485, 0.456, 0.406])
    np.testing.assert_allclose(
        preprocess_input(images, "imagenet", network="resnet50"), images - keras_mean,
        rtol=1e-6)
    np.testing.assert_allclose(
        preprocess_input(images, "imagenet", network="ResNet-18"), images - tv_mean, rtol=1e-6)
    np.testing.assert_allclose(
        preprocess_input(images, "torchvision"), images - tv_mean, rtol=1e-6)
    np.testing.assert_allclose(
        preprocess_input(images, "imagenet", network="googlenet"),
        images - np.array([123.0, 117.0, 104.0]), rtol=1e-6)
    import tensorflow as tf

    out = preprocess_input(tf.constant(images, tf.uint8), "torchvision_v2")
    np.testing.assert_allclose(np.asarray(out), images - tv_mean, rtol=1e-6)


def test_preprocess_input_ambiguous_or_unknown():
    images = np.zeros((1, 2, 2, 3))
    with pytest.raises(ValueError, match=r"pass network="):
        preprocess_input(images, "imagenet")
    with pytest.raises(ValueError, match=r"weights='nope'"):
        preprocess_input(images, "nope")
    with pytest.raises(ValueError, match=r"no weight set 'torchvision'"):
        preprocess_input(images, "torchvision", network="vgg11")
