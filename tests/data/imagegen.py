"""Real encoded image files for the data tests (no mocks of our own code)."""

import io

import numpy as np
from PIL import Image


def encode(array, fmt, mode=None, **kwargs):
    image = Image.fromarray(array)
    if mode:
        image = image.convert(mode)
    buf = io.BytesIO()
    image.save(buf, fmt, **kwargs)
    return buf.getvalue()


def smooth_image(rng, h, w):
    """A smooth RGB image (JPEG-friendly, so decoded values are close to these)."""
    y, x = np.mgrid[0:h, 0:w]
    c = rng.uniform(0.5, 2.0, size=3)
    img = np.stack([127 + 100 * np.sin(x / (7 * c[i]) + y / (11 * c[i]) + i)
                    for i in range(3)], -1)
    return np.clip(img, 0, 255).astype(np.uint8)
