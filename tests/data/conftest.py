"""Generated image files for the data tests (real encoded files, no mocks)."""

import io

import numpy as np
import pytest
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


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def image_folder(tmp_path, rng):
    """3 classes x 4 JPEGs of various sizes."""
    root = tmp_path / "images"
    for c, name in enumerate(["cat", "dog", "eel"]):
        (root / name).mkdir(parents=True)
        for i in range(4):
            h, w = 40 + 7 * i, 56 - 5 * i + c
            (root / name / f"{i}.jpg").write_bytes(
                encode(smooth_image(rng, h, w), "JPEG", quality=95))
    return root
