"""``fashion_mnist_boxes``: an offline localization task whose boxes are known.

Nothing here has ImageNet's boxes, so this source makes a task with them (for weakly supervised localization): each
Fashion-MNIST item (Xiao, Rasul & Vollgraf 2017) is scaled to a random side of
``scale = (20, 44)`` pixels (its 28x28 frame, aspect kept, bilinear) and placed at a random
position on a ``canvas = 64`` pixel square gray canvas with a textured background (smooth
blotches plus pixel noise), so that where the item is must be found, as in ILSVRC's
localization task (Russakovsky et al. 2015), and the box is *not* the whole image (the
item frames cover 10 % to 47 % of the canvas; a trivial box scores poorly: see
``docs/localization.md`` for the two baselines measured on it). The label is the item's
class, as in Fashion-MNIST; the box is carried beside it (:attr:`Source.boxes`), for
evaluation only -- training sees the labels alone (weakly supervised, as the CAM paper).

The box is the tight box around the placed item's nonzero pixels, ``(x0, y0, x1, y1)`` with
the ends exclusive (``kerascnn.explain.boxes``' convention). The item is blended over the
background with opacity ``min(1, value / 48)``, so its dark fringe shows the texture through.

Everything is seeded and deterministic per example: the placements of a split are drawn
from one stream keyed by ``(seed, split)`` over the whole split, the backgrounds from
streams keyed by ``(seed, split, block of 1024 examples)``, so example ``i`` is the same
whatever else is read (``Source.take``, a held-out validation tail).

The issue suggests items of 28-64 pixels on a 96- or 112-pixel canvas; the default is that
scaled by 2/3 (20-44 on 64), because the recipe that trains on it must finish in 10 minutes
on a 2-core CPU and a ResNet-20 costs 2.25 times as much at 96 as at 64 pixels (the
``canvas`` and ``scale`` options give the larger task).
"""

from __future__ import annotations

import numpy as np

from kerascnn.data import _fashion_mnist
from kerascnn.data.sources import from_arrays

__all__ = ["CANVAS", "SCALE", "load", "place"]

CANVAS = 64
SCALE = (20, 44)
OPAQUE = 48  # item values at or above this hide the background completely
_SPLITS = {"train": 1, "test": 2}
_BLOCK = 1024


def _check(canvas, scale, seed):
    if isinstance(canvas, bool) or not isinstance(canvas, (int, np.integer)) or canvas < 8:
        raise ValueError(f"`canvas` must be an int >= 8 (pixels). Received: canvas={canvas!r}")
    try:
        lo, hi = (int(v) for v in scale)
    except (TypeError, ValueError):
        raise ValueError("`scale` must be (smallest, largest) item side in pixels. "
                         f"Received: scale={scale!r}") from None
    if not 4 <= lo <= hi <= canvas:
        raise ValueError(f"`scale` must satisfy 4 <= smallest <= largest <= canvas ({canvas}). "
                         f"Received: scale={scale!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"`seed` must be an int >= 0. Received: seed={seed!r}")
    return int(canvas), (lo, hi), int(seed)


def _background(rng, n, canvas):
    """``uint8 (n, canvas, canvas)`` gray texture in about [0, 125]: smooth blotches
    (7x7 uniform noise, bilinear) plus Gaussian pixel noise (sigma 10), the noise cut
    from one field twice the canvas at a random offset per example (drawing fresh noise
    for every pixel of 60,000 canvases took most of the source's time)."""
    import tensorflow as tf

    coarse = rng.random((n, 7, 7, 1), dtype=np.float32)
    smooth = tf.image.resize(coarse, (canvas, canvas), method="bilinear").numpy()[..., 0]
    field = rng.normal(0.0, 10.0, (2 * canvas, 2 * canvas)).astype(np.float32)
    oy, ox = rng.integers(0, canvas, (2, n))
    noise = np.lib.stride_tricks.sliding_window_view(field, (canvas, canvas))[oy, ox]
    smooth *= 80.0
    smooth += noise
    smooth += 15.5  # 15, and 0.5 to round in the cast
    return np.clip(smooth, 0, 255, out=smooth).astype(np.uint8)


def place(items, *, canvas=CANVAS, scale=SCALE, seed=0, stream=0, background=True):
    """Places 28x28 gray ``items`` on canvases: ``(images, boxes)``.

    Args:
      items: ``uint8 (N, h, w)`` or ``(N, h, w, 1)`` items on a zero background.
      canvas: side of the square canvas in pixels.
      scale: ``(smallest, largest)`` side of the scaled item frame, drawn uniformly.
      seed, stream: key of the random streams (``stream``: one per split).
      background: False gives a zero background (the item's pixels alone), for tests.

    Returns:
      ``uint8 (N, canvas, canvas, 1)`` images and ``int64 (N, 4)`` boxes ``(x0, y0, x1,
      y1)``, ends exclusive, around each placed item's nonzero pixels (the whole canvas
      for an item without any).
    """
    import tensorflow as tf

    canvas, (lo, hi), seed = _check(canvas, scale, seed)
    items = np.asarray(items)
    if items.ndim == 4 and items.shape[-1] == 1:
        items = items[..., 0]
    if items.ndim != 3 or items.dtype != np.uint8:
        raise ValueError("`items` must be uint8 (N, h, w). "
                         f"Received: shape={items.shape}, dtype={items.dtype}")
    n = len(items)
    rng = np.random.default_rng([seed, stream])
    sides = rng.integers(lo, hi + 1, n)
    x = (rng.random(n) * (canvas - sides + 1)).astype(np.int64)
    y = (rng.random(n) * (canvas - sides + 1)).astype(np.int64)
    boxes = np.tile(np.array([0, 0, canvas, canvas], np.int64), (n, 1))
    images = np.zeros((n, canvas, canvas), np.uint8)
    if background:
        for start in range(0, n, _BLOCK):
            stop = min(n, start + _BLOCK)
            images[start:stop] = _background(
                np.random.default_rng([seed, stream, start // _BLOCK]), stop - start, canvas)
    for side in np.unique(sides):
        which = np.flatnonzero(sides == side)
        scaled = tf.image.resize(items[which, :, :, None].astype(np.float32), (side, side),
                                 method="bilinear").numpy()[..., 0]
        scaled = np.clip(np.round(scaled), 0, 255)
        nonzero = scaled > 0
        # each item's window of the canvas: gathered, blended, written back
        span = np.arange(side)
        window = (which[:, None, None], (y[which, None] + span)[:, :, None],
                  (x[which, None] + span)[:, None, :])
        if background:
            alpha = np.minimum(1.0, scaled / OPAQUE)
            scaled = np.round((1.0 - alpha) * images[window] + alpha * scaled)
        images[window] = scaled.astype(np.uint8)
        # the box: the first and last rows and columns of each item with a nonzero pixel
        rows, cols = nonzero.any(axis=2), nonzero.any(axis=1)
        some = rows.any(axis=1)
        at = which[some]
        rows, cols = rows[some], cols[some]
        boxes[at, 0] = x[at] + cols.argmax(axis=1)
        boxes[at, 1] = y[at] + rows.argmax(axis=1)
        boxes[at, 2] = x[at] + side - cols[:, ::-1].argmax(axis=1)
        boxes[at, 3] = y[at] + side - rows[:, ::-1].argmax(axis=1)
    images = images[..., None]
    return images, boxes


def load(split="train", data_dir=None, download=True, canvas=CANVAS, scale=SCALE, seed=0):
    """The ``fashion_mnist_boxes`` source of ``split`` (``"train"``: 60,000, ``"test"``:
    10,000): gray ``canvas``-pixel images, Fashion-MNIST's labels and class names, and
    :attr:`Source.boxes`. ``data_dir``/``download``: where Fashion-MNIST comes from
    (:func:`kerascnn.data.load_source`'s ``"fashion_mnist"``)."""
    if split not in _SPLITS:
        raise ValueError("fashion_mnist_boxes has splits 'train' and 'test'. "
                         f"Received: split={split!r}")
    _check(canvas, scale, seed)  # before the data is read
    items = _fashion_mnist.load(split, data_dir=data_dir, download=download)
    images, boxes = place(items.images, canvas=canvas, scale=scale, seed=seed,
                          stream=_SPLITS[split])
    source = from_arrays(images, items.labels, _fashion_mnist.CLASS_NAMES,
                         name="fashion_mnist_boxes")
    source.boxes = boxes
    source.split = split
    return source
