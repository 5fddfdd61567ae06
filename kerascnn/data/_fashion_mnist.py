"""Fashion-MNIST from IDX files (Debian's ``dataset-fashion-mnist``), offline.

Xiao, Rasul & Vollgraf (2017), "Fashion-MNIST: a Novel Image Dataset for
Benchmarking Machine Learning Algorithms": 60,000 train / 10,000 test 28x28 gray
images, 10 classes.
"""

from __future__ import annotations

import gzip
import os

import numpy as np

from kerascnn.data.sources import from_arrays

CLASS_NAMES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]
DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"
ENV_VAR = "KERASCNN_FASHION_MNIST_DIR"
_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def read_idx(path):
    """Reads an IDX file (optionally gzipped) into a numpy array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file")
    ndim = data[3]
    dims = np.frombuffer(data, dtype=">u4", count=ndim, offset=4).astype(int)
    array = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if array.size != int(np.prod(dims)):
        raise ValueError(
            f"{path}: header says {tuple(dims)} but holds {array.size} bytes"
        )
    return array.reshape(tuple(dims))


def _find(directory, stem):
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx")):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            return path
    return None


def load_arrays(split="train", data_dir=None):
    """``(images uint8 (N, 28, 28, 1), labels int64 (N,))`` or None if not found."""
    if split not in _FILES:
        raise ValueError(
            f"Fashion-MNIST has splits 'train' and 'test'. Received: split={split!r}"
        )
    candidates = [data_dir] if data_dir else [os.environ.get(ENV_VAR), DEBIAN_DIR]
    for directory in filter(None, candidates):
        paths = [_find(directory, stem) for stem in _FILES[split]]
        if all(paths):
            images = read_idx(paths[0])[..., None]
            labels = read_idx(paths[1]).astype(np.int64)
            return images, labels
        if data_dir:
            raise ValueError(
                f"No Fashion-MNIST IDX files ({', '.join(_FILES[split])}[.gz]) in "
                f"data_dir. Received: data_dir={data_dir!r}"
            )
    return None


def load(split="train", data_dir=None, download=True):
    arrays = load_arrays(split, data_dir)
    if arrays is None and download:
        arrays = _from_tfds(split)
    if arrays is None:
        raise FileNotFoundError(
            "Fashion-MNIST not found: no IDX files in "
            f"{os.environ.get(ENV_VAR) or DEBIAN_DIR} (set {ENV_VAR} or data_dir) and "
            "tfds.load('fashion_mnist') failed (no network?). Install it with "
            "`sudo apt-get install dataset-fashion-mnist`."
        )
    source = from_arrays(*arrays, CLASS_NAMES, name="fashion_mnist")
    source.split = split
    return source


def _from_tfds(split):
    try:
        import tensorflow_datasets as tfds

        ds = tfds.load("fashion_mnist", split=split, batch_size=-1, as_supervised=True)
        images, labels = tfds.as_numpy(ds)
        return images.astype(np.uint8), labels.astype(np.int64)
    except Exception:  # noqa: BLE001 - any failure means "not available"
        return None
