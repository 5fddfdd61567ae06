"""Image folders: ``<root>/<class>/<image>``, the layout users have on disk.

A folder of splits, ``<root>/<split>/<class>/<image>`` (``train/``, ``val/``,
``test/``...), gives split ``s`` from ``<root>/<s>``; a split it lacks is refused in
one line naming the missing folder (:func:`resolve_split`), before any file is read.
A folder without split folders is its class folders, one split.

Listing validates every file cheaply and in parallel (size, magic bytes, and for
JPEG/PNG the end marker that a truncated file lacks), so that bad files are skipped
*before* training: each is named in a warning and a count closes the listing. With
``validate="decode"`` every file is also fully decoded once (slower, catches
corruption in the middle of a file). The pipelines add ``ignore_errors`` after
decoding as a last safety net, so one bad file never kills a long run; the skip is
reported by TensorFlow's C++ logger as a warning with the decode error (e.g. "Invalid
PNG data, size 12420"; it cannot name the file), which the ``kerascnn`` command leaves
visible (``TF_CPP_MIN_LOG_LEVEL=1``); ``validate="decode"`` names such files up front.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os

import numpy as np
import tensorflow as tf

from kerascnn.data.sources import Source
from kerascnn.data._graph import plain

logger = logging.getLogger("kerascnn.data")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp")
_MAGIC = {
    "jpeg": (b"\xff\xd8\xff",),
    "png": (b"\x89PNG\r\n\x1a\n",),
    "gif": (b"GIF87a", b"GIF89a"),
    "bmp": (b"BM",),
}


_SOF = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # start-of-frame markers


def _jpeg_size(head):
    """``(height, width)`` from the SOF segment in the first bytes of a JPEG, or
    None when it is not there (e.g. behind a very large EXIF block)."""
    i = 2
    while i + 9 <= len(head):
        if head[i] != 0xFF:
            return None
        marker = head[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _SOF:
            return int.from_bytes(head[i + 5:i + 7], "big"), int.from_bytes(head[i + 7:i + 9], "big")
        if marker in (0xD9, 0xDA):  # end of image / start of scan
            return None
        i += 2 + int.from_bytes(head[i + 2:i + 4], "big")
    return None


def _image_size(kind, head):
    """``(height, width)`` from a file's first bytes, or None."""
    if kind == "jpeg":
        return _jpeg_size(head)
    if kind == "png" and len(head) >= 24:
        return int.from_bytes(head[20:24], "big"), int.from_bytes(head[16:20], "big")
    if kind == "gif" and len(head) >= 10:
        return int.from_bytes(head[8:10], "little"), int.from_bytes(head[6:8], "little")
    if kind == "bmp" and len(head) >= 26:
        return (abs(int.from_bytes(head[22:26], "little", signed=True)),
                int.from_bytes(head[18:22], "little", signed=True))
    return None


def sniff_file(path):
    """``(kind, reason, size)``: the format (``jpeg``, ``png``, ``gif``, ``bmp``),
    None when ``path`` looks like a complete image (else the reason), and its
    ``(height, width)`` read from the header (None when unknown)."""
    try:
        size = os.path.getsize(path)
        if size == 0:
            return None, "empty file (0 bytes)", None
        with open(path, "rb") as f:
            head = f.read(65536)
            if size > len(head):
                f.seek(max(0, size - 4096))
                tail = f.read()
            else:
                tail = head[-4096:]
    except OSError as err:
        return None, f"unreadable ({err.strerror or err})", None
    kind = next(
        (k for k, magics in _MAGIC.items() if any(head.startswith(m) for m in magics)),
        None,
    )
    if kind is None:
        return None, "not a JPEG/PNG/GIF/BMP image", None
    if kind == "jpeg" and b"\xff\xd9" not in tail:
        return kind, "truncated JPEG (no end-of-image marker)", None
    if kind == "png" and b"IEND" not in tail[-64:]:
        return kind, "truncated PNG (no IEND chunk)", None
    return kind, None, _image_size(kind, head)


def _decode_check(paths, channels):
    """Indices of ``paths`` that fail a full decode (tf.data, parallel)."""
    from kerascnn.data.decode import decode_image

    ds = tf.data.Dataset.from_tensor_slices(
        (np.arange(len(paths), dtype=np.int64), paths)
    )
    ds = ds.map(plain(
        lambda i, p: (i, tf.shape(decode_image(tf.io.read_file(p), channels))[0])),
        num_parallel_calls=tf.data.AUTOTUNE,
    ).ignore_errors()
    ok = {int(i) for i, _ in ds.as_numpy_iterator()}
    return [i for i in range(len(paths)) if i not in ok]


def list_folder(root, validate="header", channels=3):
    """Lists ``root`` -> ``(paths, labels, class_names, skipped, all_jpeg,
    max_short_side)`` (the largest shorter side of the images kept, from their
    headers; None when unknown); raises
    on layouts that cannot train (missing path, no class folders, an empty class
    folder). ``all_jpeg``: every kept file is a JPEG by its magic bytes."""
    if validate not in ("header", "decode", False, None):
        raise ValueError(
            "`validate` must be 'header', 'decode' or False. "
            f"Received: validate={validate!r}"
        )
    if not os.path.isdir(root):
        raise ValueError(f"Image folder does not exist. Received: path={root!r}")
    class_names = sorted(
        d for d in os.listdir(root)
        if os.path.isdir(os.path.join(root, d)) and not d.startswith(".")
    )
    if not class_names:
        raise ValueError(
            f"No class sub-folders in the image folder {root!r}: expected "
            "<root>/<class_name>/<image files>."
        )
    paths, labels, empty, ignored = [], [], [], 0
    for label, name in enumerate(class_names):
        files = []
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, name)):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for filename in sorted(filenames):
                if filename.lower().endswith(IMAGE_EXTENSIONS):
                    files.append(os.path.join(dirpath, filename))
                else:
                    ignored += 1
        if not files:
            empty.append(name)
        paths += files
        labels += [label] * len(files)
    if empty:
        raise ValueError(
            f"Class folder(s) with no image files in {root!r}: {empty}. Every class "
            f"needs at least one {'/'.join(IMAGE_EXTENSIONS)} file."
        )
    if ignored:
        logger.info("%s: ignored %d files without an image extension", root, ignored)
    skipped = []
    all_jpeg = False
    max_short_side = None
    if validate:
        workers = min(32, (os.cpu_count() or 1) * 4)
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            sniffed = list(_progress(pool.map(sniff_file, paths, chunksize=256),
                                     len(paths), f"checking {root}"))
        reasons = [r for _, r, _ in sniffed]
        all_jpeg = all(k == "jpeg" for k, r, _ in sniffed if r is None)
        skipped = [(p, r) for p, r in zip(paths, reasons) if r]
        if validate == "decode":
            good = [i for i, r in enumerate(reasons) if r is None]
            bad = _decode_check([paths[i] for i in good], channels)
            skipped += [(paths[good[i]], "cannot be decoded") for i in bad]
        bad_paths = {p for p, _ in skipped}
        for path, reason in skipped:
            logger.warning("Skipping %s: %s", path, reason)
        keep = [i for i, p in enumerate(paths) if p not in bad_paths]
        sizes = [sniffed[i][2] for i in keep]
        if sizes and all(sizes):
            max_short_side = max(min(hw) for hw in sizes)
        paths = [paths[i] for i in keep]
        labels = [labels[i] for i in keep]
        if skipped:
            logger.warning(
                "%s: skipped %d bad image file(s) of %d.", root, len(skipped),
                len(paths) + len(skipped),
            )
    if not paths:
        raise ValueError(f"No decodable images in the image folder {root!r}.")
    counts = np.bincount(labels, minlength=len(class_names))
    if (counts == 0).any():
        names = [class_names[i] for i in np.flatnonzero(counts == 0)]
        raise ValueError(
            f"Class folder(s) in {root!r} with no usable image left: {names}."
        )
    return paths, labels, class_names, skipped, all_jpeg, max_short_side


def _progress(iterable, total, desc):
    if total < 20000:
        return iterable
    import keras

    bar = keras.utils.Progbar(total, unit_name="file")

    def gen():
        for i, item in enumerate(iterable, 1):
            if i % 1000 == 0 or i == total:
                bar.update(i)
            yield item

    return gen()


# Sub-folder names that make a folder a folder of splits (``<root>/<split>/<class>``)
# rather than a folder of classes.
SPLIT_NAMES = ("train", "training", "val", "valid", "validation", "dev", "test", "testing")


def split_folders(root):
    """The sub-folders of ``root`` named like a split (``train``, ``val``, ``test``...)."""
    try:
        names = os.listdir(root)
    except OSError:
        return []
    return sorted(d for d in names
                  if d.lower() in SPLIT_NAMES and os.path.isdir(os.path.join(root, d)))


def resolve_split(root, split):
    """The folder that holds ``split`` of the image folder ``root``, without reading
    an image:

    - ``<root>/<split>`` when it exists;
    - else, when ``root`` has split folders (``train/``, ``val/``, ``test/``...): a
      ``ValueError`` naming the missing folder (the split folders are not classes,
      and no split silently becomes another);
    - else ``root`` itself: a folder of class folders is one split (a caller that
      needs two distinct splits checks that they are not both this folder)."""
    if split:
        split_dir = os.path.join(root, split)
        if os.path.isdir(split_dir):
            return split_dir
        found = split_folders(root)
        if found:
            raise ValueError(
                f"The image folder {root!r} has split folders ({', '.join(found)}) but "
                f"no {split!r}: create {os.path.join(root, split, '<class>')}/ with that "
                f"split's images, or ask for one of {found} (a training recipe can hold "
                "out part of its training split instead: "
                "--set data.validation_fraction=0.1). Received: split=" + repr(split))
    return root


def load(root, split="train", validate="header", channels=3):
    split_dir = os.path.join(root, split) if split else root
    folder = resolve_split(root, split)
    paths, labels, class_names, skipped, all_jpeg, max_short = list_folder(
        folder, validate, channels)
    source = Source(
        dataset=None,
        encoded=True,
        class_names=class_names,
        num_examples=len(paths),
        channels=channels,
        name=os.path.basename(os.path.normpath(folder)) or "images",
        labels=np.asarray(labels, np.int64),
        paths=tuple(paths),
        all_jpeg=all_jpeg,
        max_short_side=max_short,
        skipped=skipped,
        root=folder,
        split=split if folder == split_dir else None,
    )
    read = source.example_reader()
    source.dataset = tf.data.Dataset.range(len(paths)).map(
        plain(read), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return source
