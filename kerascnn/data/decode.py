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


def image_shape(contents):
    """``int32 [height, width]`` of encoded bytes; reads only the header of a JPEG."""
    return tf.cond(
        tf.io.is_jpeg(contents),
        lambda: tf.io.extract_jpeg_shape(contents)[:2],
        lambda: tf.shape(decode_image(contents))[:2],
    )


def decode_and_crop(contents, window_fn, channels=3):
    """Decodes only a crop of the image when it is a JPEG (``decode_and_crop_jpeg``).

    ``window_fn(shape) -> int32 [y, x, h, w]`` chooses the crop from the image's
    ``[height, width]``; for a JPEG the shape comes from the header and only the
    window is decoded, for other formats the whole image is decoded then sliced.
    """
    _check_channels(channels)

    def jpeg():
        shape = tf.io.extract_jpeg_shape(contents)[:2]
        window = tf.cast(window_fn(shape), tf.int32)
        image = tf.io.decode_and_crop_jpeg(contents, window, channels=3)
        return image

    def other():
        image = decode_image(contents, 3)
        window = tf.cast(window_fn(tf.shape(image)[:2]), tf.int32)
        return tf.slice(image, [window[0], window[1], 0], [window[2], window[3], 3])

    image = tf.cond(tf.io.is_jpeg(contents), jpeg, other)
    image.set_shape([None, None, 3])
    return _to_channels(image, channels)
