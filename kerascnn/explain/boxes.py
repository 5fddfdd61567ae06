"""A box from a heatmap: the CAM paper's rule.

Zhou, Khosla, Lapedriza, Oliva & Torralba (CVPR 2016), "Learning Deep Features for
Discriminative Localization", §3 / §4.1: "we first segment the regions of which the value
is above 20% of the max value of the CAM, and then we take the bounding box that covers
the largest connected component in the segmentation map". The map is first upsampled to
the input image's size (bilinear), so the box is in input-image pixels.

Where we are precise where the paper is not:

- *above 20 %* is ``value >= threshold * max`` (so ``threshold=1`` keeps the maxima);
- *connected* is 8-connected (MATLAB's ``bwlabel`` default, which the authors' release
  code used);
- ties between equally large components go to the first in raster order;
- a map with no positive value (all zero, say) has no region: its box is the whole image,
  the box that "says nothing";
- the upsampling is bilinear with half-pixel centres (``tf.image.resize``'s and OpenCV's
  convention), written here in numpy so that nothing heavier than numpy is imported.

One option departs from the paper (off by default): ``margin``, pixels taken off each side
of the box. A map is the object seen through the network's receptive field, so at a low
threshold its positive region is the object plus a halo of about the same width whatever
the object's size; a fixed threshold alone boxes small objects too large and large ones
too small (``docs/localization.md``, lead 6). A low threshold with the halo taken off
(both chosen on held-out images) follows the object's size instead.

Boxes are ``(x0, y0, x1, y1)`` ints, the pixels ``x0 <= x < x1``, ``y0 <= y < y1`` (the
end is exclusive, so the area is ``(x1 - x0) * (y1 - y0)``); ``x`` is the column.
"""

from __future__ import annotations

import numpy as np

from kerascnn.data.sizes import hw

__all__ = ["boxes_from_map", "resize_bilinear"]


def _size(image_size, default):
    return default if image_size is None else hw(image_size, "image_size")


def _interpolation_matrix(n_in, n_out):
    """``(n_out, n_in)``: bilinear weights, half-pixel centres, edges clamped."""
    src = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    src = np.clip(src, 0.0, n_in - 1)
    lo = np.floor(src).astype(np.int64)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = src - lo
    m = np.zeros((n_out, n_in), np.float64)
    rows = np.arange(n_out)
    np.add.at(m, (rows, lo), 1.0 - frac)
    np.add.at(m, (rows, hi), frac)
    return m


def resize_bilinear(maps, size):
    """Bilinear resize of ``(h, w)`` or ``(N, h, w)`` maps to ``size = (H, W)``
    (half-pixel centres, no antialiasing: ``tf.image.resize(..., "bilinear")``)."""
    maps = np.asarray(maps, np.float64)
    h, w = maps.shape[-2:]
    H, W = size
    if (H, W) == (h, w):
        return maps.copy()
    return _interpolation_matrix(h, H) @ maps @ _interpolation_matrix(w, W).T


def _runs(mask):
    """Horizontal runs of ``(N, H, W)`` bool masks, in raster order over the batch:
    ``(run, image, y, x0, x1)`` where ``run`` is each pixel's run index (valid on the
    foreground) and the rest are per run (``x1`` exclusive)."""
    n, h, w = mask.shape
    starts = mask.copy()
    starts[:, :, 1:] &= ~mask[:, :, :-1]
    ends = mask.copy()
    ends[:, :, :-1] &= ~mask[:, :, 1:]
    run = np.cumsum(starts.ravel()).reshape(mask.shape) - 1
    image, y, x0 = np.nonzero(starts)
    x1 = np.nonzero(ends)[2] + 1
    return run, image, y, x0, x1


def _components(mask, run, num_runs):
    """Connected components (8-connected) of the runs: each run's root, the least run
    index of its component. Union-find over runs (two runs on adjacent rows of one image
    touch when their columns overlap or meet diagonally), vectorised: hook every edge's
    larger root onto the smaller, then compress paths fully; a few rounds at CAM sizes,
    where a Python flood fill would visit every pixel one by one."""
    us, vs = [], []
    for dx in (-1, 0, 1):  # pixel (y, x) and pixel (y + 1, x + dx)
        top = slice(max(0, -dx), mask.shape[2] - max(0, dx))
        bottom = slice(max(0, dx), mask.shape[2] - max(0, -dx))
        both = mask[:, :-1, top] & mask[:, 1:, bottom]
        us.append(run[:, :-1, top][both])
        vs.append(run[:, 1:, bottom][both])
    u, v = np.concatenate(us), np.concatenate(vs)
    # Pixels along two touching runs give the same edge again and again, one after the
    # other (raster order): keep one.
    keep = np.ones(len(u), bool)
    keep[1:] = (u[1:] != u[:-1]) | (v[1:] != v[:-1])
    u, v = u[keep], v[keep]
    parent = np.arange(num_runs)
    while True:
        pu, pv = parent[u], parent[v]
        differ = pu != pv
        if not differ.any():
            return parent
        np.minimum.at(parent, np.maximum(pu, pv)[differ], np.minimum(pu, pv)[differ])
        while True:
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand


def _margins(margin):
    """``(vertical, horizontal)`` pixels from ``margin`` (a number or a pair), or ValueError."""
    pair = tuple(margin) if np.ndim(margin) == 1 else (margin, margin)
    ok = len(pair) == 2 and all(not isinstance(m, (bool, np.bool_)) and isinstance(m, (int, float, np.number))
                                and np.isfinite(m) and m >= 0 for m in pair)
    if not ok:
        raise ValueError("`margin` must be a number >= 0 (pixels off each side of the box) or a "
                         f"(vertical, horizontal) pair of them. Received: margin={margin!r}")
    return float(pair[0]), float(pair[1])


def _shrink(boxes, margin):
    """Takes ``margin = (vertical, horizontal)`` pixels (each rounded half up to whole
    pixels) off each side of ``(N, 4)`` boxes, in place; a box keeps at least its middle
    pixel(s)."""
    for axis, m in ((0, margin[1]), (1, margin[0])):
        lo, hi = boxes[:, axis], boxes[:, axis + 2]
        cut = np.minimum(min(int(np.floor(m + 0.5)), 2 ** 31), (hi - lo - 1) // 2)
        lo += cut
        hi -= cut
    return boxes


def boxes_from_map(heatmap, threshold=0.2, image_size=None, margin=0):
    """The box around the largest region of a heatmap (Zhou et al. 2016, §3/§4.1).

    The map is upsampled (bilinear) to ``image_size``, segmented at ``threshold`` times
    its maximum (``value >= threshold * max``), and the box is the bounding box of the
    largest 8-connected component of the segment. See the module docstring for what the
    paper leaves open.

    Args:
      heatmap: ``(h, w)`` map, or ``(N, h, w)`` maps (one box each), e.g. the output of
        :func:`kerascnn.explain.grad_cam` or :func:`kerascnn.explain.class_activation_map`.
        Any real values; only those at or above ``threshold * max`` count.
      threshold: fraction of each map's maximum, in ``[0, 1]`` (the paper's 0.2).
      image_size: int or ``(height, width)`` of the input image the map explains; the
        box is in that image's pixels. None: the map's own size (no upsampling).
      margin: pixels of the box's image taken off each side of the box, a number or a
        ``(vertical, horizontal)`` pair, each rounded half up to whole pixels (a box keeps
        at least its middle pixel): the map's halo around the object (module docstring).
        0, the default, is the paper's rule.

    Returns:
      ``int64`` array ``(x0, y0, x1, y1)`` of shape ``(4,)`` for one map, ``(N, 4)`` for
      ``N`` maps; ends exclusive. A map with no positive value gives the whole image.
    """
    maps = np.asarray(heatmap)
    if maps.ndim not in (2, 3) or min(maps.shape[-2:], default=0) < 1:
        raise ValueError("`heatmap` must be a map (h, w) or a batch of maps (N, h, w). "
                         f"Received: heatmap with shape={maps.shape}")
    if not np.issubdtype(maps.dtype, np.number) or np.issubdtype(maps.dtype, np.complexfloating):
        raise ValueError(f"`heatmap` must be real numbers. Received: dtype={maps.dtype}")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.number)) \
            or not 0.0 <= float(threshold) <= 1.0:
        raise ValueError(f"`threshold` must be a number in [0, 1]. Received: threshold={threshold!r}")
    margin = _margins(margin)
    if not np.all(np.isfinite(maps)):
        raise ValueError("`heatmap` has NaN or infinite values (a failed gradient?).")
    single = maps.ndim == 2
    if single:
        maps = maps[None]
    H, W = _size(image_size, maps.shape[-2:])
    boxes = np.tile(np.array([0, 0, W, H], np.int64), (len(maps), 1))
    if len(maps) == 0:
        return boxes
    up = resize_bilinear(maps, (H, W))
    peak = up.max(axis=(1, 2))
    mask = (up >= float(threshold) * peak[:, None, None]) & (peak > 0)[:, None, None]
    run, image, y, x0, x1 = _runs(mask)
    if not len(image):
        return boxes[0] if single else boxes
    root = _components(mask, run, len(image))
    size = np.bincount(root, weights=x1 - x0, minlength=len(image))
    # Per image, the largest component; ties go to the least root (first in raster order).
    roots = np.flatnonzero(size)
    order = np.lexsort((roots, -size[roots], image[roots]))
    firsts = roots[order][np.r_[True, np.diff(image[roots][order]) != 0]]
    lo = np.full((len(image), 2), np.iinfo(np.int64).max)
    hi = np.full((len(image), 2), -1)
    np.minimum.at(lo, root, np.stack([x0, y], axis=1))
    np.maximum.at(hi, root, np.stack([x1, y + 1], axis=1))
    boxes[image[firsts]] = _shrink(np.concatenate([lo[firsts], hi[firsts]], axis=1), margin)
    return boxes[0] if single else boxes
