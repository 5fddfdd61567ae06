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
    "METHODS",
    "LocalizationReport",
    "VocAnnotation",
    "best_centered_box",
    "centered_boxes",
    "evaluate_localization",
    "ground_truth",
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
    """``(boxes (N, M, 4), valid (N, M))`` from ``(N, 4)``, ``(N, M, 4)`` or a sequence of
    per-image ``(M_i, 4)`` arrays (padded to the most boxes of an image)."""
    if isinstance(gt_boxes, tuple) and len(gt_boxes) == 2 and isinstance(gt_boxes[1], np.ndarray) \
            and gt_boxes[1].dtype == bool:
        return gt_boxes  # already padded
    if isinstance(gt_boxes, np.ndarray) and gt_boxes.ndim in (2, 3):
        gt = list(gt_boxes[:, None] if gt_boxes.ndim == 2 else gt_boxes)
    else:
        gt = list(gt_boxes)
    if len(gt) != n:
        raise ValueError(f"`gt_boxes` must have one entry per image ({n}). Received: {len(gt)}")
    rows = []
    for i, boxes in enumerate(gt):
        boxes = np.asarray(boxes, np.float64)
        boxes = boxes.reshape(-1, 4) if boxes.size and boxes.shape[-1] == 4 else boxes
        if boxes.size and (boxes.ndim != 2 or boxes.shape[-1] != 4):
            raise ValueError(f"`gt_boxes[{i}]` must be (M, 4). Received: shape={np.shape(gt[i])}")
        rows.append(boxes.reshape(-1, 4))
    m = max([len(r) for r in rows], default=0)
    padded = np.zeros((n, max(m, 1), 4))
    valid = np.zeros((n, max(m, 1)), bool)
    for i, r in enumerate(rows):
        padded[i, :len(r)] = r
        valid[i, :len(r)] = True
    return padded, valid


def _best_iou(pred_boxes, gt):
    """``(N, K)``: each guess's best IoU with its image's ground-truth boxes."""
    boxes, valid = gt
    overlaps = iou(pred_boxes[:, :, None], boxes[:, None])  # (N, K, M)
    return np.where(valid[:, None], overlaps, 0.0).max(axis=2)


def _hits(guesses, pred_boxes, labels, gt_boxes, iou_threshold):
    """``bool (N, K)``: guess ``j`` of image ``i`` has the right class and a box with
    IoU >= ``iou_threshold`` against a ground-truth box of the image; and the IoUs."""
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
    overlap = _best_iou(boxes, _ground_truth(gt_boxes, n))
    return (guesses == labels[:, None]) & (overlap >= iou_threshold), overlap


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
    hits, _ = _hits(guesses, pred_boxes, labels, gt_boxes, iou_threshold)
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
    one with the least top-1 localization error wins (ties: the least top-5 error, then
    the highest mean IoU with the ground truth).
    """
    fractions = np.arange(1, 21) / 20 if fractions is None else np.asarray(fractions, np.float64)
    guesses = np.asarray(guesses)
    if guesses.ndim == 1:
        guesses = guesses[:, None]
    n = len(guesses)
    if n == 0:
        raise ValueError("No images to evaluate. Received: N=0")
    gt = _ground_truth(gt_boxes, n)
    right = guesses == np.asarray(labels).reshape(-1)[:, None]
    top1, top5 = right[:, :1].any(axis=1), right[:, :5].any(axis=1)
    best = None
    for width in fractions:
        for height in fractions:
            boxes = centered_boxes(image_sizes, width, height, n)
            overlap = _best_iou(boxes[:, None], gt)[:, 0]
            good = overlap >= iou_threshold
            err = {1: 100.0 * (1 - (top1 & good).mean()), 5: 100.0 * (1 - (top5 & good).mean())}
            key = (err[1], err[5], -overlap.mean())
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


# -- the localization evaluation ---------------------------------------------------------
METHODS = ("cam", "gradcam")


@dataclasses.dataclass
class LocalizationReport:
    """What :func:`evaluate_localization` measured (errors in %).

    Attributes:
      method: ``cam`` or ``gradcam``; threshold: the box rule's fraction of the maximum;
        margin: ``(vertical, horizontal)`` pixels (of the model's input) taken off each
        side of the box.
      examples: images evaluated.
      top1, top5: ILSVRC's localization error of the method's boxes.
      classification_top1, classification_top5: the classification error of the same pass.
      whole_image: ``{1: err, 5: err}`` with the whole image as every box.
      centred: ``{1: err, 5: err}`` of the best fixed centred box, ``centred_size`` its
        ``(width, height)`` as fractions of the image, and ``image_size`` the ``(height,
        width)`` all images share (None when they differ).
    """

    method: str
    threshold: float
    examples: int
    top1: float
    top5: float
    classification_top1: float
    classification_top5: float
    whole_image: dict
    centred: dict
    centred_size: tuple
    image_size: tuple | None = None
    margin: tuple = (0.0, 0.0)

    def centred_description(self) -> str:
        w, h = self.centred_size
        text = f"{w:.2f} x {h:.2f} of the image"
        if self.image_size is not None:
            text += f" ({w * self.image_size[1]:.0f}x{h * self.image_size[0]:.0f} px)"
        return text

    def _margin_text(self) -> str:
        v, h = self.margin
        if v != h:
            return f", {v:g} px off its top and bottom, {h:g} off its sides"
        return f", {v:g} px off each side" if v else ""

    def rows(self) -> list[dict]:
        """One row per method and baseline: ``{"protocol", "top1", "top5", "settings"}``."""
        name = {"cam": "CAM", "gradcam": "Grad-CAM"}[self.method]
        return [
            {"protocol": f"localization:{self.method}", "top1": self.top1, "top5": self.top5,
             "settings": f"localization:{self.method}: {name} boxes (threshold "
                         f"{self.threshold:g} of the map's maximum, largest connected component"
                         f"{self._margin_text()}), "
                         "right class and IoU >= 0.5 (ILSVRC); classification error of the same "
                         f"pass: top-1 {self.classification_top1:.2f} %, top-5 "
                         f"{self.classification_top5:.2f} %"},
            {"protocol": "localization:whole-image", "top1": self.whole_image[1],
             "top5": self.whole_image[5],
             "settings": "localization:whole-image: baseline, the whole image as the box"},
            {"protocol": "localization:centred-box", "top1": self.centred[1], "top5": self.centred[5],
             "settings": "localization:centred-box: baseline, the best fixed centred box on this "
                         f"set (an oracle choice): {self.centred_description()}"},
        ]

    def to_text(self) -> str:
        lines = [f"{'':26s} top-1 loc err %  top-5 loc err %"]
        for r in self.rows():
            lines.append(f"{r['protocol']:26s} {r['top1']:15.2f}  {r['top5']:15.2f}")
        lines.append(f"classification error: top-1 {self.classification_top1:.2f} %, top-5 "
                     f"{self.classification_top5:.2f} %; best centred box "
                     f"{self.centred_description()}")
        return "\n".join(lines)


def _voc_path(image_path):
    return os.path.splitext(image_path)[0] + ".xml"


def ground_truth(source, max_examples=None, *, origin=0):
    """Each example's ground-truth boxes of its class: ``(boxes, sizes)``, a list of
    ``(M_i, 4)`` and the ``(height, width)`` each box file states (None for a source that
    carries boxes: the image's own size then).

    From ``source.boxes`` (``fashion_mnist_boxes``) or, for an image folder, from the
    PASCAL-VOC file beside each image (``<image stem>.xml``), the objects whose ``<name>``
    is the example's class name (ILSVRC's synset folders and files agree on it). All files
    are read and checked here, before any image is.
    """
    n = source.num_examples if max_examples is None else min(source.num_examples or 0, max_examples)
    if getattr(source, "boxes", None) is not None:
        return [np.asarray(b, np.float64)[None] for b in source.boxes[:n]], None
    if source.paths is None:
        raise ValueError(
            f"{source.name}: no ground-truth boxes: the localization protocol needs a source "
            "that carries boxes (fashion_mnist_boxes) or an image folder with a PASCAL-VOC "
            ".xml file beside each image.")
    missing = [p for p in source.paths[:n] if not os.path.isfile(_voc_path(p))]
    if missing:
        raise ValueError(f"{len(missing)} of {n} images have no PASCAL-VOC box file beside "
                         f"them, e.g. {_voc_path(missing[0])}")
    boxes, sizes = [], []
    for path, label in zip(source.paths[:n], source.labels[:n]):
        annotation = read_voc_xml(_voc_path(path), origin=origin)
        name = source.class_names[int(label)]
        mine = annotation.boxes(name)
        if not len(mine):
            found = sorted({o for o, _ in annotation.objects})
            raise ValueError(f"{annotation.path}: no <object> of the image's class {name!r} "
                             f"(found {', '.join(found)})")
        boxes.append(mine)
        sizes.append((annotation.height, annotation.width))
    return boxes, sizes


def _examples(source, n):
    """``(uint8 image (H, W, C), label, path or None)`` of the first ``n`` examples."""
    if source.images is not None:
        for i in range(n):
            yield source.images[i], int(source.labels[i]), None
        return
    from kerascnn.data import decode_image

    for i in range(n):
        path = source.paths[i]
        with open(path, "rb") as f:
            data = f.read()
        image = decode_image(data, channels=source.channels or 3).numpy()
        yield image, int(source.labels[i]), path


def evaluate_localization(model, source, preprocessing=None, *, method="cam", layer=None,
                          batch_size=32, max_examples=None, threshold=0.2, margin=0,
                          origin=0, verbose=1) -> LocalizationReport:
    """ILSVRC's localization error of CAM or Grad-CAM boxes, with the two baselines.

    Each image goes through the model's evaluation view (``preprocessing``, as
    :func:`kerascnn.explain.explain_images`), its map is drawn back onto the image's
    pixels and boxed by the CAM paper's rule (:func:`~kerascnn.explain.boxes.boxes_from_map`).
    Only the box of the image's *true* class is computed: the guesses are distinct
    classes, so no other guess can have the right class, and a wrong-class guess is an
    error whatever its box -- the top-1 and top-5 errors are exactly ILSVRC's with one
    map per image (CAM: one forward pass; Grad-CAM: one forward and one backward).

    Args:
      model: a classifier whose head is global average pooling then dense (``cam``), or
        any ``kerascnn.applications`` classifier (``gradcam``).
      source: a :class:`kerascnn.data.Source` with ground-truth boxes (see
        :func:`ground_truth`).
      preprocessing: the model's evaluation :class:`~kerascnn.data.Preprocessing`;
        None: the one it carries (:func:`kerascnn.data.carried.resolve`).
      method: ``"cam"`` or ``"gradcam"``; layer: Grad-CAM's feature map.
      batch_size: images per step; max_examples: the first N only.
      threshold: the box rule's fraction of the map's maximum (the paper's 0.2).
      margin: pixels of the model's input taken off each side of each box (the map's halo;
        :func:`~kerascnn.explain.boxes.boxes_from_map`); 0, the paper's rule.
      origin: pixel origin of VOC files (see :func:`read_voc_xml`).
    """
    import keras

    from kerascnn.explain.images import check_request, explain_images

    if method not in METHODS:
        raise ValueError(f"`method` must be one of {', '.join(METHODS)}. Received: method={method!r}")
    if isinstance(batch_size, bool) or int(batch_size) < 1:
        raise ValueError(f"`batch_size` must be a positive int. Received: batch_size={batch_size!r}")
    check_request(model, method, layer=layer)  # before any image
    from kerascnn.explain.boxes import _margins

    margin = _margins(margin)
    if preprocessing is None:
        from kerascnn.data.carried import resolve

        preprocessing = resolve(model, prog="kerascnn evaluate").preprocessing
    gt, stated = ground_truth(source, max_examples, origin=origin)
    n = len(gt)
    if n == 0:
        raise ValueError(f"{source.name}: no images to evaluate.")
    guesses, boxes, labels, sizes = [], [], [], []
    bar = keras.utils.Progbar(n, unit_name="image") if verbose else None

    def flush(batch):
        images = [b[0] for b in batch]
        answers = explain_images(model, images, preprocessing, method=method,
                                 class_index=[b[1] for b in batch], layer=layer, k=5,
                                 threshold=threshold, margin=margin)
        for (image, label, path), answer in zip(batch, answers):
            size = tuple(int(s) for s in image.shape[:2])
            if stated is not None and stated[len(sizes)] != size:
                raise ValueError(f"{_voc_path(path)}: <size> says {stated[len(sizes)][1]}x"
                                 f"{stated[len(sizes)][0]} but the image is {size[1]}x{size[0]}")
            top = [c for c, _, _ in answer.top]
            guesses.append(top + [-1] * (5 - len(top)))
            boxes.append(answer.box)
            labels.append(label)
            sizes.append(size)
        if bar is not None:
            bar.update(len(labels))

    batch = []
    for example in _examples(source, n):
        batch.append(example)
        if len(batch) == int(batch_size):
            flush(batch)
            batch = []
    if batch:
        flush(batch)
    guesses, labels = np.asarray(guesses), np.asarray(labels)
    boxes, sizes = np.asarray(boxes, np.float64), np.asarray(sizes, np.float64)
    loc = localization_error(guesses, boxes, labels, gt)
    whole = localization_error(guesses, whole_image_boxes(sizes), labels, gt)
    centred_size, centred = best_centered_box(guesses, labels, gt, sizes)
    right = guesses == labels[:, None]
    same = len({tuple(s) for s in sizes.astype(int).tolist()}) == 1
    report = LocalizationReport(
        method=method, threshold=float(threshold), examples=n, top1=loc[1], top5=loc[5],
        classification_top1=100.0 * (1 - right[:, :1].any(axis=1).mean()),
        classification_top5=100.0 * (1 - right[:, :5].any(axis=1).mean()),
        whole_image=whole, centred=centred, centred_size=centred_size,
        image_size=tuple(int(s) for s in sizes[0]) if same else None,
        margin=margin)
    if verbose:
        print(report.to_text())
    return report
