"""Graph-safe image decoding.

Everything here is plain TensorFlow graph ops (no Python, no XLA), so it runs in a
``tf.data`` map and inside an exported SavedModel's serving signature.
"""

from __future__ import annotations

import tensorflow as tf

__all__ = ["decode_image", "decode_and_crop", "image_shape"]


def _check_channels(channels):
    if channels not in (1, 3):
        raise ValueError(f"`channels` must be 1 or 3. Received: channels={channels!r}")


def _to_channels(image, channels):
    """uint8 RGB (H, W, 3) -> (H, W, channels)."""
    if channels == 3:
        return image
    return tf.cast(
        tf.round(tf.image.rgb_to_grayscale(tf.cast(image, tf.float32))), tf.uint8
    )


def decode_image(contents, channels=3):
    """Decodes JPEG/PNG/GIF/BMP bytes to ``uint8 (H, W, channels)``.

    Grayscale (and gray+alpha) images are replicated to RGB, RGBA drops its alpha,
    CMYK JPEGs are converted by libjpeg, 16-bit PNGs are scaled to 8 bits, an
    animated GIF gives its first frame. The format is sniffed from the bytes, never
    from a file name, so a PNG named ``.jpg`` decodes. ``channels=1`` gives the
    luma (ITU-R 601) of the RGB image. Graph-safe: usable in ``tf.data`` and in a
    SavedModel's serving signature (it is not XLA-compilable: DecodeJpeg has no
    XLA kernel).

    Args:
      contents: scalar ``tf.string``, the encoded file.
      channels: 1 or 3.
    """
    _check_channels(channels)
    image = tf.io.decode_image(
        contents, channels=3, dtype=tf.uint8, expand_animations=False
    )
    image.set_shape([None, None, 3])
    return _to_channels(image, channels)


def _le(b, i, n):
    """Little-endian unsigned int of ``n`` bytes at ``i`` of an int64 byte vector."""
    return sum(b[i + k] * (256**k) for k in range(n))


def _header_shape(contents):
    """``[height, width]`` of a PNG, GIF or BMP from its header bytes (no decode)."""
    b = tf.cast(tf.io.decode_raw(tf.strings.substr(contents, 0, 26), tf.uint8), tf.int64)
    b = tf.pad(b, [[0, 26 - tf.shape(b)[0]]])
    png = tf.stack([_le(b[::-1], 26 - 24, 4), _le(b[::-1], 26 - 20, 4)])  # BE @20, @16
    gif = tf.stack([_le(b, 8, 2), _le(b, 6, 2)])
    bmp_h = _le(b, 22, 4)
    bmp_h = tf.where(bmp_h >= 2**31, 2**32 - bmp_h, bmp_h)  # negative: top-down rows
    bmp = tf.stack([bmp_h, _le(b, 18, 4)])
    shape = tf.where(tf.equal(b[0], 0x89), png, tf.where(tf.equal(b[0], 0x47), gif, bmp))
    return tf.cast(shape, tf.int32)


def image_shape(contents):
    """``int32 [height, width]`` of encoded bytes, read from the header only."""
    return tf.cond(
        tf.io.is_jpeg(contents),
        lambda: tf.io.extract_jpeg_shape(contents)[:2],
        lambda: _header_shape(contents),
    )


def _decode_jpeg_window(contents, window, min_size):
    """``decode_and_crop_jpeg`` of ``window``; when the window is at least twice
    ``min_size`` the JPEG is decoded at 1/2, 1/4 or 1/8 scale in the DCT domain
    (libjpeg's ``scale_denom``: less work, less memory for very large images)."""
    if min_size is None:
        return tf.io.decode_and_crop_jpeg(contents, window, channels=3)

    def reduced():  # the scale 1/2, 1/4 or 1/8 that keeps the window >= min_size
        side = tf.minimum(window[2] // min_size[0], window[3] // min_size[1])
        k = tf.clip_by_value(
            tf.cast(tf.math.floor(tf.math.log(tf.cast(side, tf.float32))
                                  / tf.math.log(2.0) + 1e-6), tf.int32), 1, 3)
        return tf.switch_case(k - 1, [branch(r) for r in (2, 4, 8)])

    def branch(r):
        def fn():
            w = window // r
            w = tf.concat([w[:2], tf.maximum(w[2:], 1)], 0)
            return tf.io.decode_and_crop_jpeg(contents, w, channels=3, ratio=r)
        return fn

    # The common case (a window under twice the output, e.g. ImageNet-sized images)
    # costs two comparisons and one ``cond``; a ``switch_case`` over all four scales
    # cost ~3x more per image.
    large = tf.logical_and(window[2] >= 2 * min_size[0], window[3] >= 2 * min_size[1])
    return tf.cond(large, reduced, branch(1))


def decode_and_crop(contents, window_fn, channels=3, *, min_size=None,
                    jpeg_only=False):
    """Decodes only a crop of the image when it is a JPEG (``decode_and_crop_jpeg``).

    ``window_fn(shape) -> int32 [y, x, h, w]`` chooses the crop from the image's
    ``[height, width]`` (read from the header, so the window is known before
    decoding); a JPEG decodes only the window, other formats decode whole and are
    sliced (the window clipped to the decoded size). With ``min_size = (h, w)`` (the
    size the crop will be resized to), a JPEG window at least twice that size is
    decoded at a reduced DCT scale, never below ``min_size`` (the crop then shifts
    by less than 8 source pixels). ``jpeg_only=True`` skips the format test when
    every input is known to be a JPEG.
    """
    _check_channels(channels)
    if jpeg_only:
        shape = tf.io.extract_jpeg_shape(contents)[:2]
        window = tf.cast(window_fn(shape), tf.int32)
        image = _decode_jpeg_window(contents, window, min_size)
        image.set_shape([None, None, 3])
        return _to_channels(image, channels)
    window = tf.cast(window_fn(image_shape(contents)), tf.int32)

    def jpeg():
        return _decode_jpeg_window(contents, window, min_size)

    def other():
        image = decode_image(contents, 3)
        shape = tf.shape(image)[:2]
        begin = tf.minimum(window[:2], shape - 1)
        size = tf.minimum(window[2:], shape - begin)
        return tf.slice(image, tf.concat([begin, [0]], 0), tf.concat([size, [3]], 0))

    image = tf.cond(tf.io.is_jpeg(contents), jpeg, other)
    image.set_shape([None, None, 3])
    return _to_channels(image, channels)
