"""Images of what a network has learnt: its first kernels and one layer's activations.

:func:`first_layer_filters` draws the first convolution's kernels as an RGB mosaic, the
picture of AlexNet's Figure 3 (Krizhevsky et al., NeurIPS 2012: "96 convolutional
kernels of size 11x11x3 learned by the first convolutional layer ... The top 48 kernels
were learned on GPU 1 while the bottom 48 kernels were learned on GPU 2"). With
``groups=2`` conv1 itself is one convolution, but the next one (conv2) reads its first
48 channels on one tower and the last 48 on the other; the mosaic draws those two
towers one above the other, separated by a band, 3 rows of 16 kernels each, as the
figure does. Each kernel is scaled to the full 0-255 range on its own (min to max); the
paper does not say how its figure is scaled.

:func:`feature_maps` draws one layer's activations for one image as a grid of gray
tiles, each channel scaled on its own.
"""

from __future__ import annotations

import math

import keras
import numpy as np

__all__ = ["feature_maps", "first_layer_filters", "mosaic", "towers_of"]

COLUMNS = 16  # kernels per row: AlexNet's Figure 3 has 16
GAP = 2  # pixels between tiles
BAND = 12  # pixels between towers
BACKGROUND = 255
TILE = 44  # a tile is scaled up to at least this many pixels (11x11 -> 44x44)


def _conv_layers(model):
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]


def _conv(model, layer):
    convs = _conv_layers(model)
    if layer is None:
        if not convs:
            raise ValueError(f"Model {model.name!r} has no Conv2D layer to draw.")
        return convs[0]
    found = next((c for c in convs if c.name == layer), None)
    if found is None:
        import difflib

        names = [c.name for c in convs]
        close = difflib.get_close_matches(str(layer), names, n=5, cutoff=0.5) or names[:6]
        raise ValueError(f"`layer`: model {model.name!r} has no convolution named {layer!r}; "
                         f"convolutions: {', '.join(close)}. Received: layer={layer!r}")
    return found


def towers_of(model, conv) -> int:
    """How many towers ``conv``'s filters form: the ``groups`` of the convolution after
    it (AlexNet's conv2 splits conv1's 96 maps into the two GPUs' 48 + 48), else its own
    ``groups``; 1 for a one-tower network."""
    convs = _conv_layers(model)
    after = convs[convs.index(conv) + 1] if convs.index(conv) + 1 < len(convs) else None
    for candidate in (getattr(after, "groups", 1), conv.groups):
        if candidate > 1 and conv.filters % candidate == 0:
            return int(candidate)
    return 1


def _scale01(tiles):
    """Each tile to [0, 1] on its own (min-max); a constant tile is 0.5."""
    axes = tuple(range(1, tiles.ndim))
    lo = tiles.min(axis=axes, keepdims=True)
    hi = tiles.max(axis=axes, keepdims=True)
    span = hi - lo
    return np.where(span > 0, (tiles - lo) / np.where(span > 0, span, 1), 0.5)


def mosaic(tiles, towers=1, columns=COLUMNS, zoom=None):
    """``(n, h, w, 3)`` tiles in [0, 1] -> uint8 RGB mosaic: ``towers`` blocks one above
    the other (``BAND`` pixels apart), each of ``n / towers`` tiles in rows of
    ``columns``, tiles ``GAP`` pixels apart, each enlarged ``zoom`` times (nearest;
    default: to at least ``TILE`` pixels)."""
    tiles = np.asarray(tiles, np.float64)
    n, h, w = tiles.shape[:3]
    zoom = zoom or max(1, math.ceil(TILE / max(h, w)))
    tiles = np.repeat(np.repeat(tiles, zoom, axis=1), zoom, axis=2)
    th, tw = h * zoom, w * zoom
    per = n // towers
    cols = min(columns, per)
    rows = math.ceil(per / cols)
    block_h = rows * th + (rows - 1) * GAP
    width = cols * tw + (cols - 1) * GAP
    height = towers * block_h + (towers - 1) * BAND
    out = np.full((height, width, 3), BACKGROUND, np.uint8)
    pixels = np.clip(np.round(tiles * 255), 0, 255).astype(np.uint8)
    for i in range(n):
        tower, j = divmod(i, per)
        r, c = divmod(j, cols)
        y = tower * (block_h + BAND) + r * (th + GAP)
        x = c * (tw + GAP)
        out[y:y + th, x:x + tw] = pixels[i]
    return out


def first_layer_filters(model, layer=None) -> np.ndarray:
    """The kernels of the first convolution (or of ``layer``) as a uint8 RGB mosaic
    ``(H, W, 3)``: one tile per output filter, in order, each scaled to 0-255 on its
    own; RGB for 3 input channels, gray for 1, and for more (a deeper layer) the mean
    over the input channels in gray. Towers (:func:`towers_of`: AlexNet ``groups=2``)
    are drawn as separate blocks, the first tower's filters on top."""
    conv = _conv(model, layer)
    kernel = np.asarray(keras.ops.convert_to_numpy(conv.kernel), np.float64)  # kh, kw, cin, out
    kernel = np.transpose(kernel, (3, 0, 1, 2))  # out, kh, kw, cin
    if kernel.shape[-1] == 3:
        tiles = kernel
    else:
        tiles = np.repeat(kernel.mean(axis=-1, keepdims=True), 3, axis=-1)
    return mosaic(_scale01(tiles), towers=towers_of(model, conv))


def feature_maps(model, image, layer=None) -> np.ndarray:
    """One layer's activations for one image (``(H, W, C)`` as the model takes it:
    preprocessed) as a uint8 RGB grid of gray tiles, one per channel, each scaled to
    0-255 on its own. ``layer``: a layer with a 4-D output (default: the first
    convolution)."""
    from kerascnn.explain.maps import _check_model, _feature_tensor

    inputs = _check_model(model)
    name = _conv(model, None).name if layer is None else layer
    features = _feature_tensor(model, name)
    x = np.asarray(image, np.float32)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(f"`image` must be one image (H, W, C). Received: shape={x.shape}")
    probe = keras.Model(inputs, features)
    maps = np.asarray(keras.ops.convert_to_numpy(probe(x, training=False)), np.float64)[0]
    tiles = np.repeat(np.transpose(maps, (2, 0, 1))[..., None], 3, axis=-1)
    return mosaic(_scale01(tiles))
