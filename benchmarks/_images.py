"""A folder of ImageNet-like JPEGs for the pipeline benchmark.

Real photographs (scikit-learn's ``load_sample_images``: china.jpg and flower.jpg,
427x640) cropped at random places and sizes and rescaled to about 400x350 (the
average ImageNet image is ~400x350), saved as JPEG quality 90 into ``classes``
sub-folders. Nothing is downloaded.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image


def make_jpeg_folder(root, count=512, classes=8, seed=0, size=(400, 350)):
    """Writes ``count`` JPEGs under ``root/<class>/`` (once); returns ``root``."""
    from sklearn.datasets import load_sample_images

    marker = os.path.join(root, f".done-{count}-{classes}-{seed}")
    if os.path.exists(marker):
        return root
    photos = [Image.fromarray(a) for a in load_sample_images().images]
    rng = np.random.default_rng(seed)
    for i in range(count):
        photo = photos[i % len(photos)]
        pw, ph = photo.size
        cw = int(rng.uniform(0.5, 1.0) * pw)
        ch = int(min(ph, cw * rng.uniform(0.6, 1.0)))
        x, y = rng.integers(0, pw - cw + 1), rng.integers(0, ph - ch + 1)
        w = int(size[0] * rng.uniform(0.8, 1.2))
        h = int(size[1] * rng.uniform(0.8, 1.2))
        image = photo.crop((x, y, x + cw, y + ch)).resize((w, h), Image.BILINEAR)
        if rng.random() < 0.5:
            image = image.transpose(Image.FLIP_LEFT_RIGHT)
        folder = os.path.join(root, f"class{i % classes:02d}")
        os.makedirs(folder, exist_ok=True)
        image.save(os.path.join(folder, f"{i:05d}.jpg"), quality=90)
    open(marker, "w").close()
    return root
