"""A builder's ``weights=`` argument: ``None``, a weight set's name, or a file.

The builders call :func:`resolve` before they build anything: a set name that the
network (with these arguments) does not have raises ``ValueError`` naming the
argument and listing the sets that exist; a set that fits is fetched at once (so an
offline machine fails before minutes of building). :func:`apply` then reads the file
and sets the built model's weights.

Downloads (the one place kerascnn downloads anything) go through
``keras.utils.get_file`` into Keras' cache, ``$KERAS_HOME/models`` (``~/.keras/models``
when ``KERAS_HOME`` is unset), under the publisher's file name: a file placed there by
hand with the right hash is used as it is. Each file is checked against the
publisher's hash (md5, sha1, sha256, or torchvision's sha256 prefix) after it is
fetched, under a temporary name, and renamed into place only when it matches.
Offline, a quick connection check fails at once, with the URL, the file name and the
folder to put it in.

A path may be any format :func:`kerascnn.weights.readers.read_weights_file`
recognises: Keras' own (``.weights.h5``, ``.keras``: ``model.load_weights``) and the
publishers' (keras.applications' Keras-2 HDF5, PyTorch state dicts, safetensors,
Caffe), whose tensors the family's mapper folds into the model.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import os
import socket
import urllib.parse

import numpy as np

from kerascnn.weights import sets as _sets
from kerascnn.weights.origins import ORIGIN_OF_FORMAT, ORIGINS

# The reader's format -> the conventions a mapper folds for a file given by path
# (ORIGIN_OF_FORMAT), and the formats each set's publisher writes: the origins' records.
_FORMATS_OF_ORIGIN = {name: o.formats for name, o in ORIGINS.items()}
CONNECT_TIMEOUT_S = 5.0
DOWNLOAD_SOCKET_TIMEOUT_S = 60.0
IMAGENET_CLASSES = 1000


@dataclasses.dataclass(frozen=True)
class WeightsPlan:
    """What :func:`resolve` decided: the file to read and how.

    Attributes:
        network: registry name of the network being built.
        family: its registry family (``"resnet"``, ``"vgg"``...): which mapper reads a
            publisher's file. The builder passes it down.
        path: the local file.
        weight_set: the set (None for a user's file).
        include_top: whether the model has its classifier.
    """

    network: str
    family: str
    path: str
    weight_set: _sets.WeightSet | None
    include_top: bool


# -- Keras' cache ------------------------------------------------------------------------
def cache_dir(cache_root=None) -> str:
    """The folder weight sets are downloaded to: ``<root>/models``, ``<root>`` being
    ``cache_root``, else ``$KERAS_HOME``, else ``~/.keras`` (``/tmp/.keras`` when that
    is not writable), as ``keras.utils.get_file`` chooses it."""
    root = cache_root or os.environ.get("KERAS_HOME")
    if not root:
        home = os.path.expanduser("~")
        root = os.path.join(home if os.access(home, os.W_OK) else "/tmp", ".keras")
    root = os.path.expanduser(root)
    if os.path.isdir(root) and not os.access(root, os.W_OK):
        root = os.path.join("/tmp", ".keras")
    return os.path.join(root, "models")


def file_digest(path, algorithm) -> str:
    """The hex digest of ``path`` (``sha256_prefix`` hashes with sha256)."""
    name = "sha256" if algorithm == "sha256_prefix" else algorithm
    hasher = hashlib.new(name)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


def file_matches(path, weight_file: _sets.WeightFile) -> bool:
    """Whether ``path`` has the publisher's hash (torchvision's: the sha256 starts with
    the hash in the file name, the check ``torch.hub`` makes)."""
    digest = file_digest(path, weight_file.hash_algorithm)
    expected = weight_file.file_hash.lower()
    if weight_file.hash_algorithm == "sha256_prefix":
        return digest.startswith(expected)
    return digest == expected


def _hash_text(weight_file):
    if weight_file.hash_algorithm == "sha256_prefix":
        return f"sha256 starting {weight_file.file_hash}"
    return f"{weight_file.hash_algorithm} {weight_file.file_hash}"


def _unreachable(weight_set, weight_file, folder, reason):
    return OSError(
        f"Cannot download the {weight_set.network} weights={weight_set.name!r} "
        f"({weight_set.publisher}): {weight_file.url} is unreachable ({reason}). "
        f"Fetch that file on a machine with internet access and put it in {folder} as "
        f"{weight_file.file_name} ({_hash_text(weight_file)}), or pass "
        "weights=<path to the file>."
    )


def _check_reachable(weight_set, weight_file, folder):
    """A quick connection to the file's host, so that offline fails at once."""
    url = urllib.parse.urlsplit(weight_file.url)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as e:
        raise _unreachable(weight_set, weight_file, folder, e.strerror or str(e) or
                           type(e).__name__) from None


def fetch(weight_set: _sets.WeightSet, include_top=True, cache_root=None) -> str:
    """The local path of a set's file (the notop file with ``include_top=False``
    where there is one): from Keras' cache when it is there with the right hash,
    else downloaded with ``keras.utils.get_file`` and checked."""
    import keras

    weight_file = weight_set.weight_file(include_top)
    folder = cache_dir(cache_root)
    path = os.path.join(folder, weight_file.file_name)
    if os.path.isfile(path):
        if file_matches(path, weight_file):
            return path
        stale = f"{path} is there but its hash is not {_hash_text(weight_file)}"
    else:
        stale = None
    try:
        _check_reachable(weight_set, weight_file, folder)
    except OSError as e:
        if stale:
            raise OSError(f"{e} ({stale}: delete it or replace it.)") from None
        raise
    os.makedirs(folder, exist_ok=True)
    part = f"{weight_file.file_name}.{os.getpid()}.part"
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_SOCKET_TIMEOUT_S)
    try:
        fetched = keras.utils.get_file(
            fname=part,
            origin=weight_file.url,
            cache_dir=os.path.dirname(folder),
            cache_subdir=os.path.basename(folder),
            force_download=True,
        )
    except Exception as e:  # get_file raises a bare Exception on URL errors
        for leftover in (os.path.join(folder, part),):
            if os.path.exists(leftover):
                os.remove(leftover)
        raise _unreachable(weight_set, weight_file, folder, str(e)) from None
    finally:
        socket.setdefaulttimeout(previous)
    if not file_matches(fetched, weight_file):
        os.remove(fetched)
        raise OSError(
            f"The file downloaded from {weight_file.url} does not have the publisher's "
            f"hash ({_hash_text(weight_file)}); it was deleted. Try again, or fetch it "
            f"elsewhere and put it in {folder} as {weight_file.file_name}."
        )
    os.replace(fetched, path)
    return path


# -- resolving the argument ----------------------------------------------------------------
def _looks_like_path(text):
    return os.sep in text or "/" in text or os.path.splitext(text)[1] != ""


def resolve(weights, *, network, family, include_top, classes, input_shape=None, arch=None,
            cache_root=None):
    """Checks a builder's ``weights`` before anything is built; returns None (random
    init) or a :class:`WeightsPlan` (a set's file is fetched here).

    Args:
        weights: None, a set name of ``network`` or the path of a weights file.
        network: registry name (``"resnet50"``).
        family: the network's registry family (the mapper of a publisher's file).
        include_top, classes, input_shape: the builder's arguments.
        arch: the builder's architecture arguments (``{"shortcut": "B", ...}``),
            checked against the set's ``requires``.
        cache_root: Keras' cache root (default: as ``keras.utils.get_file``).
    """
    if weights is None:
        return None
    arch = dict(arch or {})
    if isinstance(weights, os.PathLike):
        weights = os.fspath(weights)
    if not isinstance(weights, str):
        raise ValueError(
            "`weights` must be None, the name of a weight set or the path of a weights "
            f"file. Received: weights={weights!r}"
        )
    available = _sets.weight_sets(network)
    if weights in available:
        weight_set = available[weights]
        _check_set_args(weight_set, include_top, classes, input_shape, arch)
        path = fetch(weight_set, include_top, cache_root)
        return WeightsPlan(network, family, path, weight_set, include_top)
    if os.path.isfile(weights):
        return WeightsPlan(network, family, weights, None, include_top)
    raise weights_argument_error(weights, network)


def weights_argument_error(weights, network):
    """The error for a ``weights`` string that is neither a set of ``network`` nor a
    file: "no such weights file" for a path (a folder, or nothing there), else the
    sets that exist. The builders' ``weights=`` and the CLI's ``--weights`` raise it."""
    from kerascnn.weights.readers import missing_file_error

    if _looks_like_path(weights) or os.path.exists(weights):
        return missing_file_error(weights)
    available = _sets.weight_sets(network)
    close = difflib.get_close_matches(weights, list(available), n=2, cutoff=0.6)
    hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
    return ValueError(
        "`weights` must be None, the name of a weight set or the path of a weights file."
        f"{hint} {_sets.available_text(network)} Received: weights={weights!r}"
    )


def _check_set_args(weight_set, include_top, classes, input_shape, arch):
    name = weight_set.name
    for arg, needed in weight_set.requires.items():
        if arg in arch and arch[arg] != needed:
            others = [
                s.name for s in _sets.weight_sets(weight_set.network).values()
                if s.name != name and all(arch.get(k, v) == v for k, v in s.requires.items())
            ]
            fits = (f"Sets for these arguments: {', '.join(map(repr, others))}."
                    if others else _sets.available_text(weight_set.network))
            raise ValueError(
                f"weights={name!r} of {weight_set.network} ({weight_set.publisher}) needs "
                f"{arg}={needed!r}: its architecture differs otherwise. {fits} "
                f"Received: {arg}={arch[arg]!r}"
            )
    if include_top and classes != IMAGENET_CLASSES:
        raise ValueError(
            f"With weights={name!r} and include_top=True, `classes` must be "
            f"{IMAGENET_CLASSES} (the ImageNet classifier); use include_top=False (and "
            f"your own head) for another number of classes. Received: classes={classes!r}"
        )
    if input_shape is not None and input_shape[-1] != 3:
        raise ValueError(
            f"weights={name!r} needs RGB input (3 channels). "
            f"Received: input_shape={tuple(input_shape)}"
        )


# -- applying the plan ---------------------------------------------------------------------
def apply(model, plan: WeightsPlan | None):
    """Reads ``plan``'s file and sets ``model``'s weights; returns ``model``."""
    if plan is None:
        return model
    from kerascnn.weights import mappers
    from kerascnn.weights.readers import read_weights_file

    wf = read_weights_file(plan.path)
    if plan.weight_set is not None:
        origin = plan.weight_set.origin
        if wf.format not in _FORMATS_OF_ORIGIN[origin]:
            raise ValueError(
                f"{plan.path} should be {plan.weight_set.publisher}'s file "
                f"{plan.weight_set.weight_file(plan.include_top).file_name}, but it is a "
                f"{wf.format!r} file."
            )
    elif wf.format == "keras":
        model.load_weights(plan.path)
        return model
    else:
        origin = ORIGIN_OF_FORMAT.get(wf.format)
        if origin is None:
            raise ValueError(f"Unsupported weights format {wf.format!r} of {plan.path}.")
    mappers.assign(model, wf, origin=origin, family=plan.family)
    if plan.weight_set is not None:
        _carry_set_preprocessing(model, plan)
    return model


def _carry_set_preprocessing(model, plan):
    """A model built with ``weights=<a set>`` carries the set's preprocessing (at its
    input size) and, with its classifier, the ImageNet class names
    (:mod:`kerascnn.data.carried`)."""
    from kerascnn.data.carried import attach
    from kerascnn.weights.classes import imagenet_classes

    h, w = (model.inputs[0].shape[1:3] if getattr(model, "inputs", None) else (None, None))
    size = None if h is None or w is None else (int(h), int(w))
    names = [n for _, n in imagenet_classes()] if plan.include_top else None
    attach(model, plan.weight_set.preprocessing(size), names,
           where=f"{plan.network} weights={plan.weight_set.name!r}")


# -- the set's input convention ------------------------------------------------------------
def mean_of(weights, network=None):
    """The mean RGB of a weight set: ``weights`` a :class:`~kerascnn.weights.sets.WeightSet`
    or a set name (with ``network``, or alone when every network's set of that name has
    the same mean)."""
    if isinstance(weights, _sets.WeightSet):
        return weights.mean_rgb
    if network is not None:
        return _sets.get_weight_set(_sets.network_name(network), weights).mean_rgb
    matches = [s for s in _sets.all_weight_sets() if s.name == weights]
    if not matches:
        names = sorted({s.name for s in _sets.all_weight_sets()})
        raise ValueError(
            f"No weight set is named {weights!r} (sets: {', '.join(names)}). "
            f"Received: weights={weights!r}"
        )
    means = {s.mean_rgb for s in matches}
    if len(means) > 1:
        raise ValueError(
            f"weights={weights!r} means different inputs for different networks "
            f"({', '.join(sorted({s.network for s in matches}))}); pass network=... "
            f"Received: network=None"
        )
    return means.pop()


def preprocess_input(images, weights="imagenet", network=None):
    """RGB images in 0-255 minus the weight set's mean RGB: the input the models
    loaded with that set expect (channels last).

    Args:
        images: ``(..., H, W, 3)`` RGB, 0-255 (numpy array, list or tensor).
        weights: a set name or :class:`~kerascnn.weights.sets.WeightSet`.
        network: the registry name (``"resnet50"``); needed when the set name means
            different inputs for different networks (``"imagenet"``).

    Returns:
        float32, same kind as ``images`` (numpy for numpy or lists, else a tensor).
    """
    mean = np.asarray(mean_of(weights, network), np.float32)
    if isinstance(images, (np.ndarray, list, tuple)):
        images = np.asarray(images, np.float32)
        if images.shape[-1] != 3:
            raise ValueError(
                f"`images` must be RGB, channels last. Received: shape={images.shape}"
            )
        return images - mean
    import keras

    images = keras.ops.cast(images, "float32")
    if images.shape[-1] != 3:
        raise ValueError(f"`images` must be RGB, channels last. Received: shape={images.shape}")
    return images - keras.ops.convert_to_tensor(mean)
