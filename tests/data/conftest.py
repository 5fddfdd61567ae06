"""Generated image files for the data tests (real encoded files, no mocks)."""

import numpy as np
import pytest
from imagegen import encode, smooth_image


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
