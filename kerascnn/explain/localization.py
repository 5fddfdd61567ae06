"""ILSVRC's localization metric, its two trivial baselines, and PASCAL-VOC box files.

The ILSVRC localization task (Russakovsky et al., IJCV 2015, §4.1; the 2012-2014
classification+localization task the VGG paper won and the CAM paper, Zhou et al. CVPR
2016 §4.1, reports): an algorithm gives up to five ``(class, box)`` guesses per image; an
image counts as localized at ``k`` when one of the first ``k`` guesses has the image's
class *and* a box whose intersection over union with a ground-truth box of that class is
at least 0.5. The top-``k`` localization error is the fraction of images not localized.
The classification is part of it: a perfect box with a wrong class is an error.

Boxes are ``(x0, y0, x1, y1)`` with the ends exclusive (``kerascnn.explain.boxes``), so the
area is ``(x1 - x0) * (y1 - y0)``. ILSVRC's devkit reads its XML boxes as inclusive pixel
indices (``xmax - xmin + 1`` wide); :func:`read_voc_xml` turns them into this convention
(``x1 = xmax + 1``), so the IoU is the devkit's.

Baselines, beside any method (both use the same classifier's guesses, so only the box
differs): the whole image as the box, and the best fixed centred box -- the one size
(width and height as fractions of the image) that scores best *on the evaluated set
itself*, an oracle choice, so an upper bound of what any fixed box can do there.
"""

from __future__ import annotations

import dataclasses
import os
import xml.etree.ElementTree as ElementTree

import numpy as np

__all__ = [
    "VocAnnotation",
    "best_centered_box",
    "centered_boxes",
    "iou",
    "localization_error",
    "read_voc_xml",
    "whole_image_boxes",
]


def iou(a, b):
    """Intersection over union of boxes ``(..., 4)`` (broadcast): ``float64 (...)``.

    ``(x0, y0, x1, y1)``, ends exclusive. An empty union (two empty boxes) gives 0.
    """
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape[-1:] != (4,) or b.shape[-1:] != (4,):
        raise ValueError("Boxes must be (..., 4) arrays of (x0, y0, x1, y1). "
                         f"Received: shapes {a.shape} and {b.shape}")
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = w * h
    area = lambda z: np.clip(z[..., 2] - z[..., 0], 0, None) * np.clip(z[..., 3] - z[..., 1], 0, None)  # noqa: E731
    union = area(a) + area(b) - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _ground_truth(gt_boxes, n):
    """A list of ``(M_i, 4)`` float arrays, one per image, from ``(N, 4)``, ``(N, M, 4)``
    or a sequence of per-image arrays."""
    if isinstance(gt_boxes, np.ndarray) and gt_boxes.ndim in (2, 3):
        gt = list(gt_boxes[:, None] if gt_boxes.ndim == 2 else gt_boxes)
    else:
        gt = list(gt_boxes)
    if len(gt) != n:
        raise ValueError(f"`gt_boxes` must have one entry per image ({n}). Received: {len(gt)}")
    out = []
    for i, boxes in enumerate(gt):
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4) if np.size(boxes) else np.zeros((0, 4))
        if np.asarray(boxes).shape[-1] != 4:
            raise ValueError(f"`gt_boxes[{i}]` must be (M, 4). Received: shape={np.shape(boxes)}")
        out.append(boxes)
    return out


def _hits(guesses, pred_boxes, labels, gt_boxes, iou_threshold):
    """``bool (N, K)``: guess ``j`` of image ``i`` has the right class and a box with
    IoU >= ``iou_threshold`` against a ground-truth box of the image."""
    guesses = np.asarray(guesses)
    if guesses.ndim == 1:
        guesses = guesses[:, None]
    n, k = guesses.shape
    labels = np.asarray(labels).reshape(-1)
    if len(labels) != n:
        raise ValueError(f"`labels` must have one entry per image ({n}). Received: {len(labels)}")
    boxes = np.asarray(pred_boxes, np.float64)
    if boxes.shape == (n, 4):  # one box for every guess (the baselines)
        boxes = np.repeat(boxes[:, None], k, axis=1)
    if boxes.shape != (n, k, 4):
        raise ValueError(f"`pred_boxes` must be (N, 4) or (N, K, 4) with N={n}, K={k}. "
                         f"Received: shape={boxes.shape}")
    right = guesses == labels[:, None]
    overlap = np.zeros((n, k), bool)
    for i, gt in enumerate(_ground_truth(gt_boxes, n)):
        if len(gt):
            overlap[i] = (iou(boxes[i][:, None], gt[None]) >= iou_threshold).any(axis=1)
    return right & overlap


def localization_error(guesses, pred_boxes, labels, gt_boxes, *, top=(1, 5), iou_threshold=0.5):
    """ILSVRC's top-``k`` localization error, in %.

    Args:
      guesses: ``int (N, K)`` the classes guessed for each image, best first (``K >= max(top)``
        for the exact figure; fewer guesses, e.g. a 3-class task, simply count as all there are).
      pred_boxes: ``(N, K, 4)`` a box per guess (CAM/Grad-CAM: the box of that class's map)
        or ``(N, 4)`` one box for every guess.
      labels: ``int (N,)`` each image's class.
      gt_boxes: each image's ground-truth boxes of its class: ``(N, 4)``, ``(N, M, 4)`` or a
        list of ``(M_i, 4)``.
      top: the ``k`` to report.
      iou_threshold: ILSVRC's 0.5.

    Returns:
      ``{k: error %}`` for each ``k`` in ``top``.
    """
    hits = _hits(guesses, pred_boxes, labels, gt_boxes, iou_threshold)
    n = len(hits)
    if n == 0:
        raise ValueError("No images to evaluate. Received: N=0")
    return {k: 100.0 * (1.0 - hits[:, :k].any(axis=1).mean()) for k in top}


def _sizes(image_sizes, n):
    sizes = np.asarray(image_sizes, np.float64)
    if sizes.shape == (2,):
        sizes = np.tile(sizes, (n, 1))
    if sizes.shape != (n, 2):
        raise ValueError("`image_sizes` must be (height, width) or (N, 2). "
                         f"Received: shape={np.shape(image_sizes)}")
    return sizes


def whole_image_boxes(image_sizes, n=None):
    """The whole image as the box: ``(N, 4)`` from ``(N, 2)`` ``(height, width)`` sizes
    (or one size and ``n``)."""
    sizes = _sizes(image_sizes, n if n is not None else len(np.atleast_2d(image_sizes)))
    return np.stack([np.zeros(len(sizes)), np.zeros(len(sizes)), sizes[:, 1], sizes[:, 0]], axis=1)


def centered_boxes(image_sizes, width, height, n=None):
    """Boxes ``width x height`` (fractions of each image's width and height) centred in
    each image: ``(N, 4)`` floats."""
    sizes = _sizes(image_sizes, n if n is not None else len(np.atleast_2d(image_sizes)))
    h, w = sizes[:, 0], sizes[:, 1]
    return np.stack([w * (1 - width) / 2, h * (1 - height) / 2,
                     w * (1 + width) / 2, h * (1 + height) / 2], axis=1)


def best_centered_box(guesses, labels, gt_boxes, image_sizes, *, fractions=None, iou_threshold=0.5):
    """The best fixed centred box on this set: ``((width, height), {1: err, 5: err})``.

    Every ``width x height`` in ``fractions x fractions`` (default 0.05, 0.10, ..., 1.0 of
    the image's width and height: sizes and aspects) is tried as every image's box; the
    one with the least top-1 localization error wins (then top-5, then the larger box).
    """
    fractions = np.arange(1, 21) / 20 if fractions is None else np.asarray(fractions, np.float64)
    guesses = np.asarray(guesses)
    n = len(guesses)
    gt = _ground_truth(gt_boxes, n)
    best = None
    for width in fractions:
        for height in fractions:
            boxes = centered_boxes(image_sizes, width, height, n)
            err = localization_error(guesses, boxes, labels, gt, iou_threshold=iou_threshold)
            key = (err[1], err[5], -width * height)
            if best is None or key < best[0]:
                best = (key, (float(width), float(height)), err)
    return best[1], best[2]


@dataclasses.dataclass(frozen=True)
class VocAnnotation:
    """One PASCAL-VOC annotation file: the image's size and its objects.

    Attributes:
      path: the file.
      width, height: the image size it states.
      objects: ``[(name, (x0, y0, x1, y1))]``, ends exclusive (``x1 = xmax + 1``).
    """

    path: str
    width: int
    height: int
    objects: tuple

    def boxes(self, name=None) -> np.ndarray:
        """``float (M, 4)``: the boxes of class ``name`` (all when None)."""
        rows = [box for n, box in self.objects if name is None or n == name]
        return np.asarray(rows, np.float64).reshape(-1, 4)


def _text(node, tag, path):
    child = node.find(tag)
    if child is None or child.text is None or not child.text.strip():
        raise ValueError(f"{path}: not a PASCAL-VOC annotation: no <{tag}> in <{node.tag}>")
    return child.text.strip()


def _number(node, tag, path):
    text = _text(node, tag, path)
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{path}: <{tag}> must be a number. Received: {text!r}") from None
    if not np.isfinite(value):
        raise ValueError(f"{path}: <{tag}> must be a finite number. Received: {text!r}")
    return value


def read_voc_xml(path, origin=0) -> VocAnnotation:
    """Reads a PASCAL-VOC annotation (the format of ILSVRC's validation boxes):
    ``<annotation><size><width/><height/></size><object><name/><bndbox><xmin/><ymin/>
    <xmax/><ymax/></bndbox></object>...</annotation>``.

    Pixel indices are read as inclusive (ILSVRC's devkit: ``xmax - xmin + 1`` wide) and
    returned with exclusive ends, less ``origin``: 0 for ILSVRC's files (their boxes start
    at 0), 1 for PASCAL VOC's own (1-based); an ``xmax`` one past the image (a 1-based box
    read as 0-based) is clipped to the image. A file that is not such an annotation -- unparsable XML, a
    missing element, a box outside the image or inverted, a ``<!DOCTYPE>`` or ``<!ENTITY>``
    declaration (never expanded: refused before parsing) -- raises a one-line
    ``ValueError`` naming the file.
    """
    path = os.fspath(path)
    if origin not in (0, 1):
        raise ValueError(f"`origin` must be 0 or 1. Received: origin={origin!r}")
    with open(path, "rb") as f:
        data = f.read()
    head = data.upper()
    if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
        raise ValueError(f"{path}: refusing an XML file with a DOCTYPE or ENTITY declaration "
                         "(a PASCAL-VOC annotation has none)")
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as e:
        raise ValueError(f"{path}: not well-formed XML ({e})") from None
    if root.tag != "annotation":
        raise ValueError(f"{path}: not a PASCAL-VOC annotation: the root is <{root.tag}>, "
                         "not <annotation>")
    size = root.find("size")
    if size is None:
        raise ValueError(f"{path}: not a PASCAL-VOC annotation: no <size> in <annotation>")
    width, height = _number(size, "width", path), _number(size, "height", path)
    if width < 1 or height < 1 or width != int(width) or height != int(height):
        raise ValueError(f"{path}: <size> must be positive whole numbers. "
                         f"Received: width={width:g}, height={height:g}")
    objects = []
    for obj in root.findall("object"):
        name = _text(obj, "name", path)
        box = obj.find("bndbox")
        if box is None:
            raise ValueError(f"{path}: not a PASCAL-VOC annotation: an <object> ({name}) "
                             "without <bndbox>")
        x0, y0, x1, y1 = (_number(box, t, path) - origin for t in ("xmin", "ymin", "xmax", "ymax"))
        if not (0 <= x0 <= x1 <= width and 0 <= y0 <= y1 <= height):
            raise ValueError(f"{path}: the box of {name} is inverted or outside the "
                             f"{int(width)}x{int(height)} image. Received: xmin={x0 + origin:g}, "
                             f"ymin={y0 + origin:g}, xmax={x1 + origin:g}, ymax={y1 + origin:g}")
        objects.append((name, (x0, y0, min(x1 + 1, width), min(y1 + 1, height))))
    if not objects:
        raise ValueError(f"{path}: no <object> with a box in this annotation")
    return VocAnnotation(path, int(width), int(height), tuple(objects))
