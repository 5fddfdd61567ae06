"""The papers' test protocols as named, validated view recipes.

==================  ==========================================================  ===========
name                views of one image                                          paper
==================  ==========================================================  ===========
``center``          shorter side to ``resize``, the centre crop                 all (1 crop)
``10crop``          four corners + centre, and mirrors (AlexNet: of the square)  AlexNet, ResNet
``144crop``         4 scales x 3 squares x (4 corners, centre, square) x 2      GoogLeNet
``multicrop``       5x5 grid x 2 flips x 3 scales Q = 150                       VGG
``dense``           whole image at each Q and its mirror, fully-convolutional   VGG, ResNet
``dense+multicrop`` average of the ``dense`` and ``multicrop`` posteriors       VGG Table 5
==================  ==========================================================  ===========

Softmax posteriors are averaged over the views of an image (and, for ``dense``, over the
scales). Defaults are the papers' (``../shared/PAPERS.md``) for 224/227 crops: resize 256;
GoogLeNet scales 256, 288, 320, 352; VGG Q = {256, 384, 512} (or {S-32, S, S+32} for a
single training scale S); ResNet dense scales {224, 256, 384, 480, 640}. For other crop
sizes (e.g. 32x32 CIFAR-style nets) every default size is scaled by ``crop / 224`` -- a
convention of ours, the papers only test at ImageNet sizes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import tensorflow as tf

from kerascnn.data import views

__all__ = ["PROTOCOLS", "Protocol", "make_protocol", "default_scales"]

PROTOCOLS = ("center", "10crop", "144crop", "multicrop", "dense", "dense+multicrop")

RESNET_DENSE_SCALES = (224, 256, 384, 480, 640)
VGG_SCALES = views.VGG_SCALES
GOOGLENET_SCALES = views.GOOGLENET_SCALES
PAPER_RESIZE = 256
CIFAR_FAMILIES = ("resnet_cifar", "plain_cifar")


@dataclasses.dataclass(frozen=True)
class Protocol:
    """A validated test protocol. Build with :func:`make_protocol`.

    Attributes:
        name: one of :data:`PROTOCOLS`.
        crop_size: ``(h, w)`` of a crop (the network's input size).
        resize: shorter side before the ``center``/``10crop`` crops (None: as is).
        square: centre-crop the square before ``10crop``/``center`` (AlexNet).
        scales: shorter sides of ``144crop`` and ``multicrop``.
        dense_scales: shorter sides Q of ``dense`` (and of ``dense+multicrop``).
        grid: grid size of ``multicrop`` (5 in VGG).
        flip: add the mirrored views.
    """

    name: str
    crop_size: tuple[int, int]
    resize: int | None = None
    square: bool = False
    scales: tuple[int, ...] = ()
    dense_scales: tuple[int, ...] = ()
    grid: int = 5
    flip: bool = True

    @property
    def uses_dense(self) -> bool:
        return self.name in ("dense", "dense+multicrop")

    @property
    def uses_crops(self) -> bool:
        return self.name != "dense"

    @property
    def num_views(self) -> int:
        """Network inputs per image (crops, plus 2 whole images per dense scale)."""
        f = 2 if self.flip else 1
        n = {
            "center": 1,
            "10crop": 10,
            "144crop": len(self.scales) * 3 * 6 * f,
            "multicrop": len(self.scales) * self.grid**2 * f,
            "dense": 0,
            "dense+multicrop": len(self.scales) * self.grid**2 * f,
        }[self.name]
        return n + (len(self.dense_scales) * f if self.uses_dense else 0)

    def crops(self, image):
        """The fixed-size views of one image, ``(V, h, w, C)`` float32 (0-255)."""
        if self.name == "center":
            return views.center_crop(image, self.crop_size, resize=self.resize, square=self.square)
        if self.name == "10crop":
            return views.ten_crop(image, self.crop_size, resize=self.resize, square=self.square)
        if self.name == "144crop":
            return views.googlenet_144_crops(image, self.crop_size, scales=self.scales, flip=self.flip)
        if self.name in ("multicrop", "dense+multicrop"):
            return views.vgg_grid_crops(image, self.crop_size, scales=self.scales, grid=self.grid, flip=self.flip)
        raise ValueError(f"Protocol {self.name!r} has no fixed-size crops.")

    def dense(self, image):
        """One ``(2, Q', Q'', C)`` tensor per dense scale (image and mirror)."""
        return tuple(views.dense_view(image, q, flip=self.flip) for q in self.dense_scales)

    def describe(self) -> str:
        bits = [f"crop {self.crop_size[0]}x{self.crop_size[1]}"]
        if self.name in ("center", "10crop") and self.resize:
            bits.append(f"resize {self.resize}" + (" square" if self.square else ""))
        if self.name in ("144crop", "multicrop", "dense+multicrop"):
            bits.append("scales " + ",".join(map(str, self.scales)))
        if self.uses_dense:
            bits.append("Q " + ",".join(map(str, self.dense_scales)))
        return f"{self.name} ({self.num_views} views; {'; '.join(bits)})"


def _scaled(sizes, crop):
    """Paper sizes for 224/227 crops; scaled by crop/224 otherwise (never below the crop)."""
    if crop in (224, 227):
        return tuple(sizes)
    return tuple(max(crop, int(round(s * crop / 224))) for s in sizes)


def default_scales(name, family=None, crop=224, train_scale=None):
    """The papers' default scales of protocol ``name`` for a model ``family``.

    ``train_scale`` (VGG's S): an int S gives Q = {S-32, S, S+32}; a ``(lo, hi)`` range gives
    {lo, (lo+hi)/2, hi} (the paper's {256, 384, 512} for [256, 512]).
    """
    if name == "144crop":
        return _scaled(GOOGLENET_SCALES, crop)
    if train_scale is not None:
        if isinstance(train_scale, (int, float)):
            s = int(train_scale)
            return (s - 32, s, s + 32)
        lo, hi = (int(v) for v in train_scale)
        return (lo, (lo + hi) // 2, hi)
    if name == "dense" and family in ("resnet", "plain", "resnet_cifar", "plain_cifar"):
        return _scaled(RESNET_DENSE_SCALES, crop)
    return _scaled(VGG_SCALES, crop)


def _positive_ints(values, arg):
    if isinstance(values, int):
        values = (values,)
    try:
        values = tuple(int(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(f"`{arg}` must be a sequence of positive ints. Received: {arg}={values!r}") from None
    if not values or min(values) < 1:
        raise ValueError(f"`{arg}` must be a non-empty sequence of positive ints. Received: {arg}={values!r}")
    return values


def make_protocol(
    name,
    *,
    crop_size=224,
    family=None,
    resize="default",
    scales=None,
    dense_scales=None,
    train_scale=None,
    square=None,
    grid=5,
    flip=True,
    min_dense_size=None,
) -> Protocol:
    """Build and validate a :class:`Protocol`; every error is raised here, before any image.

    Args:
        name: one of :data:`PROTOCOLS`.
        crop_size: int or ``(h, w)``: the network input size.
        family: model family (``kerascnn.applications.get_model_info(name).family``); picks
            the paper defaults (AlexNet: 10 crops of the centre square; ResNet: dense
            scales {224, ..., 640}).
        resize: shorter side for ``center``/``10crop``; ``"default"``: 256 (scaled for
            other crop sizes; none for the CIFAR families), ``None``: no resize.
        scales: shorter sides for ``144crop``/``multicrop`` (default: the paper's).
        dense_scales: Q for ``dense``/``dense+multicrop`` (default: the paper's).
        train_scale: VGG's training scale S (int or ``(lo, hi)``), sets the default Q.
        square: centre-crop the square first for ``center``/``10crop`` (default: AlexNet).
        grid: ``multicrop`` grid size.
        flip: add mirrored views.
        min_dense_size: smallest image the dense network accepts (the training size for a
            converted AlexNet/VGG); a smaller Q is an error.
    """
    if name not in PROTOCOLS:
        raise ValueError(f"Unknown protocol. Expected one of {list(PROTOCOLS)}. Received: protocol={name!r}")
    crop = views._pair(crop_size)
    c = max(crop)
    if resize == "default":
        # CIFAR nets are tested on the whole 32x32 image (He et al. 2016, §4.2).
        resize = None if family in CIFAR_FAMILIES else _scaled((PAPER_RESIZE,), c)[0]
    if resize is not None:
        resize = int(resize)
        if resize < min(crop):
            raise ValueError(
                f"`resize` (the shorter side before cropping) must be at least the crop size "
                f"{min(crop)}. Received: resize={resize}"
            )
    if square is None:
        square = family == "alexnet"
    if int(grid) < 1:
        raise ValueError(f"`grid` must be a positive int. Received: grid={grid}")
    kwargs = dict(name=name, crop_size=crop, resize=resize, square=bool(square), grid=int(grid), flip=bool(flip))
    if name in ("144crop", "multicrop", "dense+multicrop"):
        crop_name = "144crop" if name == "144crop" else "multicrop"
        s = default_scales(crop_name, family, c, train_scale) if scales is None else _positive_ints(scales, "scales")
        if min(s) < c:
            raise ValueError(
                f"Protocol {name!r}: every scale must be at least the crop size {c} (a crop "
                f"cannot be larger than the rescaled image). Received: scales={s}"
            )
        kwargs["scales"] = s
    if name in ("dense", "dense+multicrop"):
        d = default_scales("dense", family, c, train_scale) if dense_scales is None else _positive_ints(dense_scales, "dense_scales")
        if min_dense_size is not None and min(d) < int(min_dense_size):
            raise ValueError(
                f"Protocol {name!r}: the fully-convolutional network needs images of at least "
                f"{int(min_dense_size)} pixels (its training size). Received: dense_scales={d}"
            )
        kwargs["dense_scales"] = d
    return Protocol(**kwargs)
