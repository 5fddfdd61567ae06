"""Explain raw images of any size with the model's own preprocessing.

:func:`explain_images` is what ``kerascnn explain`` runs: each decoded image goes
through the network's evaluation :class:`~kerascnn.data.preprocessing.Preprocessing`
(the one the model carries -- its run's, a weight set's -- else the resolver's
fallback: shorter side to the input size, centre crop, no mean:
:func:`kerascnn.data.carried.resolve`), the map is computed on that view, and is then drawn
back onto the image's own pixels: the view is a crop of the image rescaled, so the map
is upsampled to the view (bilinear), rescaled with it and placed where the crop was;
the parts of the image the network did not see are 0. ``score_map`` (AlexNet, VGG)
takes the whole image rescaled (not cropped: the dense evaluation), zero-padded up to
the training size when smaller, so its map covers the whole image.

The box is :func:`kerascnn.explain.boxes.boxes_from_map` of the map in image pixels
(the CAM paper's 20 % rule).
"""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["METHODS", "Explanation", "check_request", "explain_images"]

METHODS = ("gradcam", "cam", "score_map")


@dataclasses.dataclass
class Explanation:
    """One image's answer.

    Attributes:
        map: ``(H, W)`` float32 in the image's pixels (0 where the network saw nothing).
        raw_map: ``(h, w)`` float32 at the network's resolution, as the method gives it.
        box: ``(x0, y0, x1, y1)`` in image pixels, ends exclusive.
        class_id, class_name: the class explained.
        top: ``[(class_id, name, probability), ...]``, the top-k, best first.
        method: ``gradcam``, ``cam`` or ``score_map``; layer: the map's layer.
    """

    map: np.ndarray
    raw_map: np.ndarray
    box: tuple
    class_id: int
    class_name: str
    top: list
    method: str
    layer: str


def _channels(image, channels):
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[-1] not in (1, 3, 4) or 0 in image.shape:
        raise ValueError("Each image must be (height, width, 1, 3 or 4 channels). "
                         f"Received: an image of shape {image.shape}")
    image = image[..., :3] if image.shape[-1] == 4 else image
    if image.shape[-1] == channels:
        return image
    if channels == 3:
        return np.repeat(image, 3, axis=-1)
    gray = image.astype(np.float32) @ np.array([0.2989, 0.587, 0.114], np.float32)
    return np.clip(np.round(gray), 0, 255).astype(image.dtype)[..., None]


def _resized_shape(shape, prep, at_least=None):
    """``(rh, rw)`` of the image after the shorter-side resize."""
    if prep.resize is None:
        return int(shape[0]), int(shape[1])
    from kerascnn.data.preprocessing import shorter_side_shape

    rh, rw = np.asarray(shorter_side_shape(list(shape[:2]), prep.resize)).tolist()
    return int(rh), int(rw)


def _offset(padded, target):
    """Where a centred ``target``-long crop-or-pad starts in a ``padded``-long side
    (``tf.image.resize_with_crop_or_pad``: crop at ``(n - t) // 2``, pad ``(t - n) // 2``
    before)."""
    return (padded - target) // 2 if padded >= target else -((target - padded) // 2)


def _to_image(view_map, offset, pad, resized, shape):
    """A map over the view (``view_map`` at the view's size) drawn on the image's
    pixels: pixel centres of the image -> the resized image -> the padded one -> the
    view (nearest); outside the view 0."""
    out_axes = []
    for axis in (0, 1):
        n = shape[axis]
        centres = (np.arange(n) + 0.5) * resized[axis] / n - 0.5 + pad - offset[axis]
        index = np.floor(centres + 0.5).astype(np.int64)
        valid = (index >= 0) & (index < view_map.shape[axis])
        out_axes.append((np.clip(index, 0, view_map.shape[axis] - 1), valid))
    (iy, vy), (ix, vx) = out_axes
    return (view_map[iy][:, ix] * (vy[:, None] & vx[None, :])).astype(np.float32)


def _dense_view(image, prep):
    """The whole image at the preprocessing's scale, padded to at least the training
    size, minus the mean: ``(view, offset)``."""
    import tensorflow as tf

    from kerascnn.data.ops import pad_to
    from kerascnn.data.preprocessing import resize_shorter, subtract_mean

    x = tf.convert_to_tensor(image)
    x = resize_shorter(x, prep.resize) if prep.resize is not None else tf.cast(x, tf.float32)
    p = prep.pad
    if p:
        x = tf.pad(x, [[p, p], [p, p], [0, 0]])
    ph, pw = int(x.shape[0]), int(x.shape[1])
    vh, vw = max(ph, prep.image_size[0]), max(pw, prep.image_size[1])
    x = pad_to(x, (vh, vw))
    return subtract_mean(x, prep.mean), (_offset(ph, vh), _offset(pw, vw))


def check_request(model, method="gradcam", class_index=None, layer=None, class_names=None):
    """Checks, before any image is read, that ``method`` applies to ``model`` and that
    ``layer`` and ``class_index`` exist: ``(class names, layer name)`` or one-line
    ValueError."""
    from kerascnn.explain import maps as _maps

    if method not in METHODS:
        raise ValueError(f"`method` must be one of {', '.join(METHODS)}. Received: method={method!r}")
    if method != "gradcam" and layer is not None:
        raise ValueError(f"`layer` is Grad-CAM's choice; {method} reads the map its head "
                         f"defines. Received: method={method!r}, layer={layer!r}")
    _maps._check_model(model)
    dense = _maps.classifier_layer(model)
    if method == "cam":
        pool, _ = _maps._gap_head(model)
        layer = _maps._producer(_maps._single(pool.input)).name
    elif method == "score_map":
        from kerascnn.evaluation.fully_convolutional import has_convertible_head

        if not has_convertible_head(model):
            _maps._score_map(model, np.zeros((1, 1, 1, 1)))  # raises the one-line error
        layer = "fc8_conv"
    else:
        layer = _maps.last_conv_layer(model) if layer is None else layer
        _maps._feature_tensor(model, layer)
    names = [str(c) for c in class_names] if class_names is not None else \
        [str(i) for i in range(dense.units)]
    if class_names is not None and len(names) != dense.units:
        raise ValueError(f"{len(names)} class names for a model of {dense.units} classes.")
    _maps.resolve_class(class_index, dense.units, names if class_names is not None else None)
    return names, layer


def explain_images(model, images, preprocessing=None, *, method="gradcam", class_index=None,
                   layer=None, class_names=None, k=5, threshold=0.2,
                   margin=0) -> list[Explanation]:
    """Explains decoded images of any size.

    Args:
        model: a classifier of ``kerascnn.applications``.
        images: uint8 images ``(H, W, C)`` (a list; sizes may differ).
        preprocessing: the model's :class:`~kerascnn.data.preprocessing.Preprocessing`;
            default: the one it carries (:func:`kerascnn.data.carried.resolve`), else
            the fallback (shorter side to the input size, centre crop, no mean).
        method: ``gradcam`` (:func:`~kerascnn.explain.grad_cam`), ``cam``
            (:func:`~kerascnn.explain.class_activation_map`) or ``score_map``
            (:func:`~kerascnn.explain.score_map`).
        class_index: the class explained (None: each image's top-1; an id or a name).
        layer: the feature map of ``gradcam`` (default: the last convolutional one).
        class_names: the model's class names (default: the ids as text).
        k: how many classes ``top`` lists.
        threshold: the box's threshold (fraction of the map's maximum).
        margin: pixels of the model's input view taken off each side of the box (the
            map's halo: :func:`~kerascnn.explain.boxes.boxes_from_map`), scaled to the
            image's pixels; 0: the CAM paper's rule.

    Returns:
        One :class:`Explanation` per image.
    """
    from kerascnn.explain import maps as _maps
    from kerascnn.explain.boxes import _margins, boxes_from_map, resize_bilinear

    if isinstance(images, np.ndarray) and images.ndim == 3:
        images = [images]
    images = list(images)
    if not images:
        raise ValueError("`images` is empty: give at least one image.")
    names, _ = check_request(model, method, class_index, layer, class_names)
    margin = _margins(margin)  # before any image
    dense = _maps.classifier_layer(model)
    if preprocessing is None:
        from kerascnn.data.carried import resolve

        preprocessing = resolve(model, prog="kerascnn explain").preprocessing
    prep = preprocessing
    images = [_channels(i, prep.channels) for i in images]
    classes = _maps.resolve_class(class_index, dense.units, names, n=len(images))
    if method == "score_map":
        raw, top_scores, layer_name, geometry = [], [], "fc8_conv", []
        for i, image in enumerate(images):
            view, offset = _dense_view(image, prep)
            m, avg, layer_name = _maps._score_map(
                model, view[None], None if classes is None else classes[i])
            raw.append(m[0])
            top_scores.append(avg[0])
            geometry.append((tuple(view.shape[:2]), offset))
        probs = np.stack(top_scores)
    else:
        import keras
        import tensorflow as tf

        views = tf.stack([prep(i) for i in images])
        fn = _maps._grad_cam if method == "gradcam" else _maps._cam
        extra = {"layer": layer} if method == "gradcam" else {}
        raw, logits, layer_name = fn(model, views, classes, **extra)
        probs = np.asarray(keras.ops.convert_to_numpy(dense.activation(logits)), np.float32)
        geometry = []
        for image in images:
            ph, pw = (s + 2 * prep.pad for s in _resized_shape(image.shape, prep))
            geometry.append((prep.image_size,
                             (_offset(ph, prep.image_size[0]), _offset(pw, prep.image_size[1]))))
    out = []
    for i, image in enumerate(images):
        view_size, offset = geometry[i]
        view_map = resize_bilinear(raw[i], view_size)
        resized = _resized_shape(image.shape, prep)
        full = _to_image(view_map, offset, prep.pad, resized, image.shape[:2])
        # the margin is in the view's pixels: the image's are larger by its resize factor
        scaled = tuple(m * s / r for m, s, r in zip(margin, image.shape[:2], resized))
        box = tuple(int(v) for v in boxes_from_map(full, threshold, margin=scaled))
        order = np.argsort(-probs[i], kind="stable")[:k]
        cid = int(order[0]) if classes is None else classes[i]
        out.append(Explanation(
            map=full, raw_map=np.asarray(raw[i], np.float32), box=box, class_id=cid,
            class_name=names[cid], top=[(int(c), names[c], float(probs[i, c])) for c in order],
            method=method, layer=layer_name))
    return out
