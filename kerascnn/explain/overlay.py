"""The pictures ``kerascnn explain`` and ``kerascnn show-filters`` write.

:func:`overlay` draws one :class:`~kerascnn.explain.Explanation` on its image: the map
(scaled to its maximum) blended in matplotlib's perceptually uniform ``inferno``
colormap, the box, the class explained and the top-5 with their probabilities. The
picture has the image's own size (an image whose longer side is under 448 pixels is
enlarged by a whole factor first, so the text stays readable). Drawn with matplotlib's
Agg canvas (no display needed) and written elsewhere, then renamed
(:func:`kerascnn._io.atomic_path`).
"""

from __future__ import annotations

import math

import numpy as np

from kerascnn._io import atomic_path

__all__ = ["CMAP", "MIN_SIDE", "blend", "overlay", "save_png", "zoom_of"]

CMAP = "inferno"
ALPHA = 0.5
MIN_SIDE = 448  # smaller images are enlarged (nearest) by a whole factor to reach it
_TITLES = {"gradcam": "Grad-CAM", "cam": "CAM", "score_map": "score map"}


def zoom_of(shape) -> int:
    """The whole factor an image of ``shape = (H, W, ...)`` is enlarged by."""
    return max(1, math.ceil(MIN_SIDE / max(int(shape[0]), int(shape[1]))))


def blend(image, heatmap, alpha=ALPHA, cmap=CMAP):
    """uint8 RGB: ``(1 - alpha) * image + alpha * colormap(map / max)``."""
    from matplotlib import colormaps

    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    rgb = np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image[..., :3]
    peak = float(np.max(heatmap)) if np.size(heatmap) else 0.0
    scaled = np.clip(heatmap / peak, 0, 1) if peak > 0 else np.zeros_like(heatmap)
    colours = colormaps[cmap](scaled)[..., :3] * 255.0
    out = (1.0 - alpha) * rgb.astype(np.float64) + alpha * colours
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def save_png(path, image):
    """A uint8 ``(H, W[, 3])`` array as a PNG, atomically."""
    from PIL import Image

    with atomic_path(path, suffix=".png") as tmp:
        Image.fromarray(np.asarray(image, np.uint8)).save(tmp, format="PNG")
    return path


def overlay(path, image, explanation):
    """Writes the overlay PNG of ``explanation`` on ``image`` (uint8 ``(H, W, C)``) to
    ``path``; returns ``path``. Its size is the image's times :func:`zoom_of`."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    zoom = zoom_of(image.shape)
    picture = blend(image, explanation.map)
    picture = np.repeat(np.repeat(picture, zoom, axis=0), zoom, axis=1)
    h, w = picture.shape[:2]
    dpi = 100
    fig = Figure(figsize=(w / dpi, h / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(picture, interpolation="nearest")
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    ax.axis("off")
    x0, y0, x1, y1 = (v * zoom for v in explanation.box)
    line = max(1.5, min(h, w) / 150)
    ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False,
                           edgecolor="#00ff66", linewidth=line))
    size = float(np.clip(min(h, w) / 32, 7, 14))
    lines = [f"{i}. {name[:28]}  {p:.3f}" for i, (_, name, p) in enumerate(explanation.top, 1)]
    box = dict(facecolor="black", alpha=0.6, edgecolor="none", pad=3)
    ax.text(0.01, 0.99, "\n".join(lines), transform=ax.transAxes, va="top", ha="left",
            color="white", fontsize=size, family="monospace", bbox=box)
    title = (f"{_TITLES.get(explanation.method, explanation.method)}: "
             f"{explanation.class_name} (class {explanation.class_id}) at {explanation.layer}")
    ax.text(0.01, 0.01, title, transform=ax.transAxes, va="bottom", ha="left",
            color="white", fontsize=size, bbox=box)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    return path
