"""Evaluation views: the crops the papers' test protocols feed to the network.

Every function maps ONE decoded image ``(H, W, C)`` (uint8 or float, 0-255 scale) to a
float32 tensor ``(views, h, w, C)`` built by one batch-level op: a ``tf.gather`` of index
grids for :func:`ten_crop`, one ``tf.image.crop_and_resize`` over a box tensor for
:func:`googlenet_144_crops` and :func:`vgg_grid_crops`; :func:`center_crop` is the ``center``
view of :class:`~kerascnn.data.preprocessing.Preprocessing` itself. There is no Python
loop over crops at run time; the functions are graph-safe and run inside ``Dataset.map``.
A rank-4 batch of equally-sized images gives ``(batch, views, h, w, C)``.

Resizing is bilinear with half-pixel centres. The views made from a resized image
(:func:`center_crop`, :func:`ten_crop`, :func:`dense_view`) use
:func:`~kerascnn.data.preprocessing.resize_image`, the one resize of evaluation and
serving: by default the shorter side to S with the longer truncated and a downscale
antialiased (PIL's and torchvision's), or a warp to S x S without antialiasing
(Caffe's), as the :class:`~kerascnn.data.preprocessing.Preprocessing` says; values
rounded to the 0-255 grid, as the image they come from. The multi-scale views (144
crops, VGG's grid) sample the original with ``crop_and_resize``, which has no
antialiasing; their geometry is the same "shorter side" arithmetic. The multi-scale views sample the *original* image once per crop: a crop of the
image rescaled to scale ``s`` is the box of the original image it covers, sampled with the
same coordinates ``tf.image.resize`` would use (the image is edge-padded by one pixel so
the border clamps the same way), so ``crop(resize(image))`` is reproduced without
materialising one resized image per scale. GoogLeNet's "square resized to 224" view is
likewise one bilinear sampling of the square (the paper resizes twice; one interpolation
is the closer to the original pixels).

Papers: AlexNet (Krizhevsky et al., 2012) and ResNet (He et al.,
2016) 10 crops; GoogLeNet (Szegedy et al., 2015) 144 crops; VGG (Simonyan & Zisserman,
2015) 5x5 grid x flips x 3 scales = 150 crops and dense evaluation on the whole image
rescaled to Q.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from kerascnn.data.preprocessing import (
    Preprocessing,
    resize_image,
    resize_shorter,
    shorter_side_shape,
)
from kerascnn.data.sizes import hw

__all__ = [
    "resize_shorter",
    "center_crop",
    "ten_crop",
    "googlenet_144_crops",
    "googlenet_144_regions",
    "vgg_grid_crops",
    "vgg_grid_regions",
    "dense_view",
    "sample_regions",
]

GOOGLENET_SCALES = (256, 288, 320, 352)
VGG_SCALES = (256, 384, 512)


def _check_scales(scales, crop, arg="scales"):
    scales = tuple(int(s) for s in scales)
    if not scales:
        raise ValueError(f"`{arg}` must name at least one scale. Received: {arg}={scales}")
    if min(scales) < max(crop):
        raise ValueError(
            f"Every scale must be at least the crop size {max(crop)} (a crop cannot be larger "
            f"than the rescaled image). Received: {arg}={scales}"
        )
    return scales


def _batched(fn, image, **kwargs):
    """Apply a one-image view function to a rank-3 image or a rank-4 batch."""
    image = tf.convert_to_tensor(image)
    if image.shape.rank == 3:
        return fn(image, **kwargs)
    if image.shape.rank == 4:
        return tf.map_fn(
            lambda im: fn(im, **kwargs), image, fn_output_signature=tf.float32
        )
    raise ValueError(f"`image` must be (H, W, C) or (B, H, W, C). Received: image.shape={image.shape}")


def _prepare(image, resize, square, pad=0, resize_rule="shorter", antialias=True):
    """Resize to ``resize`` by ``resize_rule`` (:func:`resize_image`, the ``center``
    view's), ``pad`` zero pixels around (the ``center`` view's order), then the centre
    square if asked."""
    image = tf.convert_to_tensor(image)
    if resize is not None:
        image = resize_image(image, resize, resize_rule, antialias=antialias)
    else:
        image = tf.cast(image, tf.float32)
    if pad:
        image = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]])
    if square:
        shape = tf.shape(image)
        side = tf.minimum(shape[0], shape[1])
        top = (shape[0] - side) // 2
        left = (shape[1] - side) // 2
        image = image[top : top + side, left : left + side]
    return image


def _gather_crops(image, tops, lefts, crop, flips):
    """Crops at integer offsets in one gather: ``(V,)`` offsets -> ``(V, ch, cw, C)``."""
    ch, cw = crop
    rows = tops[:, None] + tf.range(ch)[None, :]  # (V, ch)
    cols = lefts[:, None] + tf.range(cw)[None, :]  # (V, cw)
    cols = tf.where(flips[:, None], tf.reverse(cols, axis=[1]), cols)
    patches = tf.gather(image, rows)  # (V, ch, W, C)
    return tf.gather(patches, cols, axis=2, batch_dims=1)  # (V, ch, cw, C)


def center_crop(image, crop_size, *, resize=None, pad=0, resize_rule="shorter", antialias=True,
                crop_offset="floor"):
    """The ``center`` view without the mean, ``(1, h, w, C)`` (``(B, 1, h, w, C)`` for a
    batch): exactly :meth:`Preprocessing.crop_uint8
    <kerascnn.data.preprocessing.Preprocessing.crop_uint8>` (resize to ``resize`` by
    ``resize_rule``, ``pad``, centre crop or centred zero padding to ``crop_size``), the
    one centre view that ``eval_dataset``, the export and every evaluation share. The
    keywords after ``pad`` are the Preprocessing's (``Preprocessing.transform()``)."""
    image = tf.convert_to_tensor(image)
    if image.shape.rank not in (3, 4):
        raise ValueError(f"`image` must be (H, W, C) or (B, H, W, C). Received: image.shape={image.shape}")
    prep = Preprocessing(hw(crop_size, "crop_size"), int(image.shape[-1]), resize=resize, pad=pad,
                         resize_rule=resize_rule, antialias=antialias, crop_offset=crop_offset)
    return tf.expand_dims(prep.crop_uint8(image), -4)


def _half(d, crop_offset):
    """The centre crop's offset for an excess ``d`` (see ``center_crop_or_pad``)."""
    if crop_offset == "round_half_even":
        return tf.cast(tf.round(tf.cast(d, tf.float32) / 2.0), tf.int32)
    return d // 2


def _ten_crop_one(image, crop_size, resize, square, pad, resize_rule, antialias, crop_offset):
    crop = hw(crop_size, "crop_size")
    image = _prepare(image, resize, square, pad, resize_rule, antialias)
    shape = tf.shape(image)
    dy, dx = shape[0] - crop[0], shape[1] - crop[1]
    tops = tf.stack([0, 0, dy, dy, _half(dy, crop_offset)])
    lefts = tf.stack([0, dx, 0, dx, _half(dx, crop_offset)])
    tops = tf.concat([tops, tops], 0)
    lefts = tf.concat([lefts, lefts], 0)
    flips = tf.constant([False] * 5 + [True] * 5)
    return _gather_crops(image, tops, lefts, crop, flips)


def ten_crop(image, crop_size=224, *, resize=None, square=False, pad=0, resize_rule="shorter",
             antialias=True, crop_offset="floor"):
    """AlexNet's and ResNet's 10 views, ``(10, h, w, C)``.

    Order: top-left, top-right, bottom-left, bottom-right, centre, then the same five
    mirrored left-right. ``resize`` rescales the shorter side first (256 in the papers);
    ``square=True`` then centre-crops the square, as AlexNet does ("rescale the shorter side
    to 256 and centre-crop 256x256"); ResNet (fb.resnet.torch, torchvision ``TenCrop``)
    takes the corners of the whole rescaled image (``square=False``). ``pad`` zero pixels
    are added after the resize, as in the ``center`` view, and ``resize_rule``,
    ``antialias`` and ``crop_offset`` (the centre crop's) are the ``center`` view's
    (:class:`~kerascnn.data.preprocessing.Preprocessing`).
    """
    hw(crop_size, "crop_size")
    Preprocessing(hw(crop_size, "crop_size"), resize_rule=resize_rule, antialias=antialias,
                  crop_offset=crop_offset)  # checks the keywords
    return _batched(_ten_crop_one, image, crop_size=crop_size, resize=resize, square=square,
                    pad=int(pad), resize_rule=resize_rule, antialias=bool(antialias),
                    crop_offset=crop_offset)


def sample_regions(image, regions, size):
    """Sample ``(V, 5)`` regions ``[y0, x0, h, w, flip]`` (original-pixel edge coordinates)
    of ``image`` at ``size`` in ONE ``tf.image.crop_and_resize``.

    Output pixel ``i`` of a region samples the original at ``y0 + (i + 0.5) * h / out_h - 0.5``
    (half-pixel centres), clamped to the image like ``tf.image.resize``; ``flip`` mirrors
    the view left-right (a box with x1 > x2).
    """
    out_h, out_w = hw(size, "size")
    image = tf.cast(tf.convert_to_tensor(image), tf.float32)
    regions = tf.cast(tf.convert_to_tensor(regions), tf.float32)
    shape = tf.shape(image)
    height = tf.cast(shape[0], tf.float32)
    width = tf.cast(shape[1], tf.float32)
    padded = tf.pad(image[None], [[0, 0], [1, 1], [1, 1], [0, 0]], mode="SYMMETRIC")
    y0, x0, h, w, flip = tf.unstack(regions, axis=1)
    # +1: the one-pixel edge padding; coordinates in [-1, 0) then read the edge pixel.
    y_first = y0 + 0.5 * h / out_h - 0.5 + 1.0
    y_last = y0 + (out_h - 0.5) * h / out_h - 0.5 + 1.0
    x_first = x0 + 0.5 * w / out_w - 0.5 + 1.0
    x_last = x0 + (out_w - 0.5) * w / out_w - 0.5 + 1.0
    flip = flip > 0.5
    x_a = tf.where(flip, x_last, x_first)
    x_b = tf.where(flip, x_first, x_last)
    boxes = tf.stack([y_first / (height + 1.0), x_a / (width + 1.0), y_last / (height + 1.0), x_b / (width + 1.0)], 1)
    indices = tf.zeros(tf.shape(boxes)[:1], tf.int32)
    return tf.image.crop_and_resize(padded, boxes, indices, (out_h, out_w), method="bilinear")


def _scale_geometry(height, width, scales):
    """Per scale: resized (h, w) and the original-pixels-per-resized-pixel ratios."""
    new = tf.cast(shorter_side_shape(tf.stack([height, width]), tf.constant(scales)), tf.float32)
    new_h, new_w = new[:, 0], new[:, 1]
    return new_h, new_w, tf.cast(height, tf.float32) / new_h, tf.cast(width, tf.float32) / new_w


def googlenet_144_regions(height, width, crop_size=224, scales=GOOGLENET_SCALES, flip=True):
    """The regions (see :func:`sample_regions`) of GoogLeNet's 144 crops of an image.

    For each scale (shorter side 256, 288, 320, 352): the left, centre and right squares
    (top, centre, bottom for a portrait image); in each square the four corner crops, the
    centre crop and the whole square resized to ``crop_size``; and the mirrors of all:
    4 x 3 x 6 x 2 = 144. Order: scale, square, [tl, tr, bl, br, centre, square], flip.
    """
    crop = hw(crop_size, "crop_size")
    scales = _check_scales(scales, crop)
    new_h, new_w, ry, rx = _scale_geometry(height, width, scales)  # (S,)
    side = tf.minimum(new_h, new_w)
    portrait = new_h > new_w
    # Square offsets along the long side: start, centre, end.  (S, 3)
    long_extra = tf.abs(new_h - new_w)
    along = tf.stack([tf.zeros_like(long_extra), tf.floor(long_extra / 2), long_extra], 1)
    sq_top = tf.where(portrait[:, None], along, 0.0)
    sq_left = tf.where(portrait[:, None], 0.0, along)
    ch, cw = float(crop[0]), float(crop[1])
    dy = side[:, None] - ch  # (S, 1)
    dx = side[:, None] - cw
    # Six views in a square (top, left, height, width) in resized pixels.  (S, 6)
    zeros = tf.zeros_like(dy)
    in_top = tf.concat([zeros, zeros, dy, dy, tf.floor(dy / 2), zeros], 1)
    in_left = tf.concat([zeros, dx, zeros, dx, tf.floor(dx / 2), zeros], 1)
    in_h = tf.concat([tf.fill(tf.shape(dy), ch)] * 5 + [side[:, None]], 1)
    in_w = tf.concat([tf.fill(tf.shape(dx), cw)] * 5 + [side[:, None]], 1)
    # Broadcast to (S, 3 squares, 6 views) and map to original pixels.
    top = (sq_top[:, :, None] + in_top[:, None, :]) * ry[:, None, None]
    left = (sq_left[:, :, None] + in_left[:, None, :]) * rx[:, None, None]
    hh = tf.broadcast_to(in_h[:, None, :] * ry[:, None, None], tf.shape(top))
    ww = tf.broadcast_to(in_w[:, None, :] * rx[:, None, None], tf.shape(top))
    regions = tf.reshape(tf.stack([top, left, hh, ww], -1), [-1, 4])  # (S*18, 4)
    return _with_flips(regions, flip)


def _with_flips(regions, flip):
    n = tf.shape(regions)[0]
    plain = tf.concat([regions, tf.zeros([n, 1])], 1)
    if not flip:
        return plain
    mirrored = tf.concat([regions, tf.ones([n, 1])], 1)
    # Interleave so that each view is followed by its mirror.
    return tf.reshape(tf.stack([plain, mirrored], 1), [-1, 5])


def googlenet_144_crops(image, crop_size=224, *, scales=GOOGLENET_SCALES, flip=True):
    """GoogLeNet's 144 test crops of one image, ``(144, h, w, C)`` (Szegedy et al. 2015, §7)."""
    crop = hw(crop_size, "crop_size")
    scales = _check_scales(scales, crop)

    def one(im):
        shape = tf.shape(im)
        regions = googlenet_144_regions(shape[0], shape[1], crop, scales, flip)
        return sample_regions(im, regions, crop)

    return _batched(one, image)


def vgg_grid_regions(height, width, crop_size=224, scales=VGG_SCALES, grid=5, flip=True):
    """Regions of VGG's multi-crop views: at each scale Q (shorter side), a ``grid x grid``
    regular grid of crops spanning the whole rescaled image (first crop at the top-left
    corner, last at the bottom-right), and their mirrors: 5 x 5 x 2 x 3 = 150.
    Order: scale, row, column, flip."""
    crop = hw(crop_size, "crop_size")
    scales = _check_scales(scales, crop)
    if int(grid) < 1:
        raise ValueError(f"`grid` must be a positive int. Received: grid={grid}")
    new_h, new_w, ry, rx = _scale_geometry(height, width, scales)
    steps = tf.linspace(0.0, 1.0, int(grid)) if grid > 1 else tf.constant([0.5])
    tops = tf.round((new_h[:, None] - crop[0]) * steps[None, :])  # (S, g)
    lefts = tf.round((new_w[:, None] - crop[1]) * steps[None, :])
    top = tf.broadcast_to(tops[:, :, None] * ry[:, None, None], [len(scales), grid, grid])
    left = tf.broadcast_to(lefts[:, None, :] * rx[:, None, None], [len(scales), grid, grid])
    hh = tf.broadcast_to(crop[0] * ry[:, None, None], tf.shape(top))
    ww = tf.broadcast_to(crop[1] * rx[:, None, None], tf.shape(top))
    regions = tf.reshape(tf.stack([top, left, hh, ww], -1), [-1, 4])
    return _with_flips(regions, flip)


def vgg_grid_crops(image, crop_size=224, *, scales=VGG_SCALES, grid=5, flip=True):
    """VGG's multi-crop views of one image, ``(len(scales) * grid**2 * 2, h, w, C)``
    (Simonyan & Zisserman 2015, §3.2: 150 crops for 3 scales)."""
    crop = hw(crop_size, "crop_size")
    scales = _check_scales(scales, crop)

    def one(im):
        shape = tf.shape(im)
        regions = vgg_grid_regions(shape[0], shape[1], crop, scales, grid, flip)
        return sample_regions(im, regions, crop)

    return _batched(one, image)


def dense_view(image, scale, *, flip=True):
    """The whole image rescaled so its shorter side is ``scale`` (VGG's Q), and its mirror:
    ``(2, Q', Q'', C)`` (``(1, ...)`` with ``flip=False``), for dense evaluation."""
    if int(scale) < 1:
        raise ValueError(f"`scale` must be a positive int. Received: scale={scale}")

    def one(im):
        resized = resize_shorter(im, int(scale))
        if not flip:
            return resized[None]
        return tf.stack([resized, tf.reverse(resized, axis=[1])])

    return _batched(one, image)
