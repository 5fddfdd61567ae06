import numpy as np
import pytest
import tensorflow as tf
from imagegen import encode, smooth_image

from kerascnn.data import decode_image
from kerascnn.data.decode import decode_and_crop, image_shape


def _pil_rgb(data):
    import io

    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


@pytest.mark.parametrize("kind", ["jpeg", "gray_jpeg", "cmyk_jpeg", "png", "rgba_png",
                                  "la_png", "palette_png", "png16", "gif", "bmp"])
def test_decode_matches_pillow(kind, rng):
    rgb = smooth_image(rng, 21, 30)
    data = {
        "jpeg": lambda: encode(rgb, "JPEG", quality=95, subsampling=0),
        "gray_jpeg": lambda: encode(rgb[..., 0], "JPEG", quality=95),
        "cmyk_jpeg": lambda: encode(rgb, "JPEG", mode="CMYK", quality=95, subsampling=0),
        "png": lambda: encode(rgb, "PNG"),
        "rgba_png": lambda: encode(np.dstack([rgb, rgb[..., :1]]), "PNG"),
        "la_png": lambda: encode(rgb[..., 0], "PNG", mode="LA"),
        "palette_png": lambda: encode(rgb, "PNG", mode="P"),
        "png16": lambda: encode(rgb[..., 0].astype(np.uint16) * 257, "PNG"),
        "gif": lambda: encode(rgb, "GIF", mode="P"),
        "bmp": lambda: encode(rgb, "BMP"),
    }[kind]()
    out = decode_image(tf.constant(data)).numpy()
    assert out.dtype == np.uint8 and out.shape == (21, 30, 3)
    if kind == "png16":  # 16-bit -> 8-bit: v*257 -> v, replicated to RGB
        expected = np.repeat(rgb[..., :1], 3, -1)
    else:
        expected = _pil_rgb(data)
    # TF decodes with the fast integer IDCT, Pillow with the accurate one.
    diff = np.abs(out.astype(int) - expected.astype(int))
    if "jpeg" in kind:
        assert diff.max() <= 10 and diff.mean() < 2.5
    else:
        assert diff.max() == 0


def test_png_named_jpg_and_gray_output(rng, tmp_path):
    rgb = smooth_image(rng, 12, 9)
    path = tmp_path / "x.jpg"
    path.write_bytes(encode(rgb, "PNG"))
    out = decode_image(tf.io.read_file(str(path))).numpy()
    np.testing.assert_array_equal(out, rgb)
    gray = decode_image(tf.io.read_file(str(path)), channels=1).numpy()
    luma = np.round(rgb.astype(np.float64) @ [0.2989, 0.587, 0.114])
    assert gray.shape == (12, 9, 1)
    assert np.abs(gray[..., 0].astype(int) - luma).max() <= 1


def test_decode_is_graph_safe_in_a_saved_function(rng, tmp_path):
    data = encode(smooth_image(rng, 8, 8), "PNG")
    module = tf.Module()
    module.f = tf.function(lambda s: tf.shape(decode_image(s)),
                           input_signature=[tf.TensorSpec([], tf.string)])
    tf.saved_model.save(module, str(tmp_path / "m"))
    loaded = tf.saved_model.load(str(tmp_path / "m"))
    assert loaded.f(tf.constant(data)).numpy().tolist() == [8, 8, 3]


def test_bad_channels_raise():
    with pytest.raises(ValueError, match="channels=4"):
        decode_image(tf.constant(b""), channels=4)


@pytest.mark.parametrize("fmt,mode", [("JPEG", None), ("PNG", None), ("PNG", "I;16"),
                                      ("GIF", "P"), ("BMP", None)])
def test_decode_and_crop_equals_crop_of_decode(fmt, mode, rng):
    rgb = smooth_image(rng, 40, 50)
    if mode == "I;16":
        rgb = rgb[..., 0].astype(np.uint16) * 257
    data = tf.constant(encode(rgb, fmt, mode=mode if mode == "P" else None,
                              quality=95))
    full = decode_image(data).numpy()
    assert image_shape(data).numpy().tolist() == [40, 50]  # from the header
    crop = decode_and_crop(data, lambda shape: tf.stack([3, 5, 20, shape[1] - 10])
                           ).numpy()
    assert crop.shape == (20, 40, 3)
    assert np.abs(crop.astype(int) - full[3:23, 5:45].astype(int)).max() <= 2


def test_large_jpeg_crop_decodes_at_reduced_dct_scale(rng):
    img = smooth_image(rng, 480, 640)
    data = tf.constant(encode(img, "JPEG", quality=95))
    # a 400x400 window resized later to 100x100: decoded at 1/4 scale (100x100)
    out = decode_and_crop(data, lambda s: tf.constant([40, 80, 400, 400]),
                          min_size=(100, 100)).numpy()
    assert out.shape == (100, 100, 3)
    ref = img[40:440, 80:480].astype(np.float32).reshape(100, 4, 100, 4, 3).mean((1, 3))
    assert np.abs(out - ref).mean() < 3
    # never below min_size: a 150x150 window for a 100x100 output stays full scale
    same = decode_and_crop(data, lambda s: tf.constant([0, 0, 150, 150]),
                           min_size=(100, 100), jpeg_only=True).numpy()
    assert same.shape == (150, 150, 3)
    # the other two scales: 1/2 (a 250x250 window for 100x100) and 1/8 (the whole
    # image for 50x50)
    half = decode_and_crop(data, lambda s: tf.constant([0, 0, 250, 250]),
                           min_size=(100, 100), jpeg_only=True).numpy()
    assert half.shape == (125, 125, 3)
    eighth = decode_and_crop(data, lambda s: tf.constant([0, 0, 480, 640]),
                             min_size=(50, 50)).numpy()
    assert eighth.shape == (60, 80, 3)
    ref = img.astype(np.float32).reshape(60, 8, 80, 8, 3).mean((1, 3))
    assert np.abs(eighth - ref).mean() < 3
