"""TensorFlow Datasets image-classification builders (``"tfds:<name>"``).

Images come out *encoded* (``tfds.decode.SkipDecoding``), so that the training
pipelines can decode only the crop they need (``decode_and_crop_jpeg``).

A dataset that is not prepared in ``data_dir`` is downloaded, unless there is no
network: one connection attempt (to tfds' download host, or to the HTTPS proxy when one
is set), made when tfds starts its download, decides that at once, instead of tfds'
retries of every file (minutes) before the same answer. Datasets prepared from a ``manual_dir`` (ImageNet) need no network.
"""

from __future__ import annotations

import os
import socket
import urllib.parse
import urllib.request

from kerascnn.data.sources import Source
from kerascnn.data._graph import plain


def load(name, split="train", data_dir=None, manual_dir=None, download=True):
    import tensorflow_datasets as tfds

    data_dir = os.path.expanduser(data_dir) if data_dir else None
    manual_dir = os.path.expanduser(manual_dir) if manual_dir else None
    if not name:
        raise ValueError("`spec` must name a tfds builder. Received: spec='tfds:'")
    download_config = tfds.download.DownloadConfig(manual_dir=manual_dir)
    builder = tfds.builder(name, data_dir=data_dir)
    if download:
        if not (manual_dir or getattr(builder, "MANUAL_DOWNLOAD_INSTRUCTIONS", None)):
            _check_network_before_downloading(builder, name)
        builder.download_and_prepare(download_config=download_config)
    info = builder.info
    image_key, label_key = info.supervised_keys or ("image", "label")
    features = info.features
    if image_key not in features or not isinstance(
        features[image_key], tfds.features.Image
    ):
        raise ValueError(
            f"tfds:{name} is not an image-classification dataset (no Image feature "
            f"{image_key!r}). Received: spec='tfds:{name}'"
        )
    image_feature = features[image_key]
    label_feature = features[label_key]
    class_names = list(getattr(label_feature, "names", None) or [])
    if not class_names:
        class_names = [str(i) for i in range(label_feature.num_classes)]
    ds = builder.as_dataset(
        split=split,
        decoders={image_key: tfds.decode.SkipDecoding()},
        shuffle_files=False,
    )
    ds = ds.map(plain(lambda ex: (ex[image_key], ex[label_key])))
    try:
        num_examples = info.splits[split].num_examples or None
    except (KeyError, ValueError, TypeError):
        num_examples = None
    channels = image_feature.shape[-1] or 3
    return Source(
        dataset=ds,
        encoded=True,
        class_names=class_names,
        num_examples=num_examples,
        channels=1 if channels == 1 else 3,
        name=name,
        split=split,
        # tfds stores these as JPEG (imagenet2012 converts its few PNG/CMYK files
        # when preparing), so the pipelines may skip the format test.
        all_jpeg=getattr(image_feature, "encoding_format", None) == "jpeg",
    )


DOWNLOAD_HOST = ("storage.googleapis.com", 443)  # where tfds downloads most datasets from


def _check_network_before_downloading(builder, name):
    """Makes ``builder`` check the network when it starts downloading: tfds creates
    its download manager only for a dataset that is not prepared yet (a prepared one,
    or tfds' own test double of ``download_and_prepare``, downloads nothing)."""
    make = getattr(builder, "_make_download_manager", None)
    if make is None:  # another tfds: its own retries decide
        return

    def make_after_checking(*args, **kwargs):
        _check_network(name, builder.data_dir)
        return make(*args, **kwargs)

    builder._make_download_manager = make_after_checking


def _check_network(name, data_dir, timeout=5.0):
    """One connection attempt to the download host (or the HTTPS proxy); an OSError
    naming the dataset and the folder when it fails."""
    host, port = DOWNLOAD_HOST
    proxy = urllib.request.getproxies().get("https")
    if proxy and not urllib.request.proxy_bypass(host):
        parsed = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        host, port = parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as err:
        raise OSError(
            f"tfds:{name} is not prepared in {data_dir} and there is no network to "
            f"download it ({host}:{port}: {err.strerror or err}). Prepare it on a "
            "machine with network and pass its folder with --data-dir.") from None
