"""The papers' test protocols: one table of small entries, validated per network.

==================  ==========================================================  ===========
name                views of one image                                          paper
==================  ==========================================================  ===========
``center``          the ``center`` view of the preprocessing (shorter side to   all (1 crop)
                    ``resize``, centre crop)
``10crop``          four corners + centre, and mirrors (AlexNet: of the square)  AlexNet, ResNet
``144crop``         4 scales x 3 squares x (4 corners, centre, square) x 2      GoogLeNet
``multicrop``       5x5 grid x 2 flips x 3 scales Q = 150                       VGG
``dense``           whole image at each Q and its mirror, fully-convolutional   VGG, ResNet
``dense+multicrop`` average of the ``dense`` and ``multicrop`` posteriors       VGG Table 5
==================  ==========================================================  ===========

Each row is one :class:`ProtocolSpec` in :data:`TABLE`: its views of one image, how many,
which options it takes (``resize``/``square`` before its crops, a set of ``scales``,
``dense_scales``) and what it needs of the network (``dense``: a network that runs on whole
images). A new protocol is one entry here and its name in :mod:`kerascnn._protocols`
(:data:`PROTOCOLS`; with :data:`PAPER_PROTOCOLS`, the registry's ``paper_results`` keys, it
sits below the registry's floor; a test checks that the two agree). The evaluation and the
command line read the table.

Softmax posteriors are averaged over the views of an image (and, for ``dense``, over the
scales). Defaults are the papers' (the sections cited per protocol) for 224/227 crops: resize 256;
GoogLeNet scales 256, 288, 320, 352; VGG Q = {256, 384, 512} (or {S-32, S, S+32} for a
single training scale S); ResNet dense scales {224, 256, 384, 480, 640}. For other crop
sizes (e.g. 32x32 CIFAR-style nets) every default size is scaled by ``crop / 224`` -- a
convention of ours, the papers only test at ImageNet sizes.

Padding (``pad``, Fashion-MNIST's 28 -> 32) follows the ``center`` view of
:class:`~kerascnn.data.preprocessing.Preprocessing` for the one-scale protocols (resize,
then pad, then crop); the multi-scale ones pad the original image before rescaling it.
``center`` is exactly the preprocessing's view, bit for bit, so ``square`` (AlexNet's
"centre-crop the square first") changes only the ``10crop`` corners: the centre crop of
the centre square is the centre crop of the image, up to one pixel of rounding.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from kerascnn import _protocols as _names
from kerascnn.data.sizes import hw

__all__ = [
    "PAPER_PROTOCOLS",
    "PROTOCOLS",
    "TABLE",
    "Protocol",
    "ProtocolSpec",
    "default_scales",
    "make_protocol",
]

RESNET_DENSE_SCALES = (224, 256, 384, 480, 640)  # GoogLeNet's and VGG's: kerascnn.data.views
PAPER_RESIZE = 256
CIFAR_FAMILIES = ("resnet_cifar", "plain_cifar")
RESNET_FAMILIES = ("resnet", "plain", "resnet_cifar", "plain_cifar")


def _padded(image, pad):
    import tensorflow as tf

    image = tf.convert_to_tensor(image)
    return tf.pad(image, [[pad, pad], [pad, pad], [0, 0]]) if pad else image


def _center(p, image):
    from kerascnn.data import views

    return views.center_crop(image, p.crop_size, resize=p.resize, pad=p.pad, **dict(p.transform))


def _ten(p, image):
    from kerascnn.data import views

    return views.ten_crop(image, p.crop_size, resize=p.resize, square=p.square, pad=p.pad,
                          **dict(p.transform))


def _googlenet(p, image):
    from kerascnn.data import views

    return views.googlenet_144_crops(_padded(image, p.pad), p.crop_size, scales=p.scales, flip=p.flip)


def _vgg_grid(p, image):
    from kerascnn.data import views

    return views.vgg_grid_crops(_padded(image, p.pad), p.crop_size, scales=p.scales, grid=p.grid, flip=p.flip)


def _flips(p):
    return 2 if p.flip else 1


@dataclasses.dataclass(frozen=True)
class ProtocolSpec:
    """One row of the table.

    Attributes:
        name: the protocol's name.
        views: one line: the views of one image.
        paper: where it comes from.
        crops: ``(protocol, image) -> (V, h, w, C)`` float32 fixed-size views on the
            0-255 scale (no mean), or None (whole images only).
        count: ``protocol -> V``, the number of fixed-size views.
        resize: takes ``resize`` (shorter side before its crops) and ``square``.
        scale_set: takes ``scales`` with these paper defaults: ``"googlenet"`` or
            ``"vgg"`` (None: no scales).
        dense: adds the whole image (and mirror) at each of ``dense_scales``: the
            network must run on whole images (fully convolutional).
        paper_names: the keys of a registry entry's ``paper_results`` that hold the
            paper's figure for this protocol, first match wins (the CIFAR nets' single
            view is the paper's ``test`` error).
    """

    name: str
    views: str
    paper: str
    crops: Callable | None
    count: Callable
    resize: bool = False
    scale_set: str | None = None
    dense: bool = False
    paper_names: tuple[str, ...] = ()

    def __post_init__(self):
        if not self.paper_names:
            object.__setattr__(self, "paper_names", (self.name,))


TABLE = {
    spec.name: spec
    for spec in (
        ProtocolSpec("center", "the centre crop", "all", _center, lambda p: 1, resize=True,
                     paper_names=("center", "test")),
        ProtocolSpec("10crop", "4 corners + centre, and mirrors", "AlexNet, ResNet", _ten,
                     lambda p: 10, resize=True),
        ProtocolSpec("144crop", "scales x 3 squares x (4 corners, centre, square) x flips",
                     "GoogLeNet", _googlenet, lambda p: len(p.scales) * 3 * 6 * _flips(p),
                     scale_set="googlenet"),
        ProtocolSpec("multicrop", "grid x grid x flips x scales", "VGG", _vgg_grid,
                     lambda p: len(p.scales) * p.grid**2 * _flips(p), scale_set="vgg"),
        ProtocolSpec("dense", "whole image at each Q, and its mirror", "VGG, ResNet", None,
                     lambda p: 0, dense=True),
        ProtocolSpec("dense+multicrop", "dense and multicrop posteriors averaged",
                     "VGG Table 5", _vgg_grid, lambda p: len(p.scales) * p.grid**2 * _flips(p),
                     scale_set="vgg", dense=True),
    )
}
PROTOCOLS = _names.PROTOCOLS  # tuple(TABLE), named below the registry's floor
PAPER_PROTOCOLS = _names.PAPER_PROTOCOLS


@dataclasses.dataclass(frozen=True)
class Protocol:
    """A validated test protocol. Build with :func:`make_protocol`.

    Attributes:
        name: one of :data:`PROTOCOLS`.
        crop_size: ``(h, w)`` of a crop (the network's input size).
        resize: shorter side before the ``center``/``10crop`` crops (None: as is).
        square: centre-crop the square before ``10crop`` (AlexNet).
        scales: shorter sides of ``144crop`` and ``multicrop``.
        dense_scales: shorter sides Q of ``dense`` (and of ``dense+multicrop``).
        grid: grid size of ``multicrop`` (5 in VGG).
        flip: add the mirrored views.
        pad: zero pixels around each image (see the module docstring for where).
        transform: the network's resize and crop rules for ``center``/``10crop``
            (``Preprocessing.transform()`` as ``(key, value)`` pairs; empty: the defaults).
    """

    name: str
    crop_size: tuple[int, int]
    resize: int | None = None
    square: bool = False
    scales: tuple[int, ...] = ()
    dense_scales: tuple[int, ...] = ()
    grid: int = 5
    flip: bool = True
    pad: int = 0
    transform: tuple = ()

    @property
    def spec(self) -> ProtocolSpec:
        return TABLE[self.name]

    @property
    def uses_dense(self) -> bool:
        return self.spec.dense

    @property
    def uses_crops(self) -> bool:
        return self.spec.crops is not None

    @property
    def num_views(self) -> int:
        """Network inputs per image (crops, plus 1 or 2 whole images per dense scale)."""
        return self.spec.count(self) + (len(self.dense_scales) * _flips(self) if self.uses_dense else 0)

    def crops(self, image):
        """The fixed-size views of one image, ``(V, h, w, C)`` float32 (0-255)."""
        if not self.uses_crops:
            raise ValueError(f"Protocol {self.name!r} has no fixed-size crops.")
        return self.spec.crops(self, image)

    def dense(self, image):
        """One ``(2, Q', Q'', C)`` tensor per dense scale (image and mirror)."""
        from kerascnn.data import views

        image = _padded(image, self.pad)
        return tuple(views.dense_view(image, q, flip=self.flip) for q in self.dense_scales)

    def describe(self) -> str:
        bits = [f"crop {self.crop_size[0]}x{self.crop_size[1]}"]
        if self.spec.resize and self.resize:
            bits.append(f"resize {self.resize}" + (" square" if self.square and self.name != "center" else ""))
        if self.spec.scale_set:
            bits.append("scales " + ",".join(map(str, self.scales)))
        if self.uses_dense:
            bits.append("Q " + ",".join(map(str, self.dense_scales)))
        if self.pad:
            bits.append(f"pad {self.pad}")
        return f"{self.name} ({self.num_views} views; {'; '.join(bits)})"


def _scaled(sizes, crop):
    """Paper sizes for 224/227 crops; scaled by crop/224 otherwise (never below the crop)."""
    if crop in (224, 227):
        return tuple(sizes)
    return tuple(max(crop, int(round(s * crop / 224))) for s in sizes)


def default_scales(name, family=None, crop=224, train_scale=None):
    """The papers' default scales of protocol ``name`` for a model ``family``.

    ``name`` is a protocol name or a scale set (``"googlenet"``, ``"vgg"``, ``"dense"``).
    ``train_scale`` (VGG's S): an int S gives Q = {S-32, S, S+32}; a ``(lo, hi)`` range gives
    {lo, (lo+hi)/2, hi} (the paper's {256, 384, 512} for [256, 512]).
    """
    from kerascnn.data.views import GOOGLENET_SCALES, VGG_SCALES

    kind = "dense" if name == "dense" else TABLE[name].scale_set if name in TABLE else name
    if kind == "googlenet":
        return _scaled(GOOGLENET_SCALES, crop)
    if train_scale is not None:
        if isinstance(train_scale, (int, float)):
            s = int(train_scale)
            return (s - 32, s, s + 32)
        lo, hi = (int(v) for v in train_scale)
        return (lo, (lo + hi) // 2, hi)
    if kind == "dense" and family in RESNET_FAMILIES:
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
    pad=0,
    min_dense_size=None,
    transform=None,
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
        square: centre-crop the square first for ``10crop`` (default: AlexNet).
        grid: ``multicrop`` grid size.
        flip: add mirrored views.
        pad: zero pixels around each image (see the module docstring).
        min_dense_size: smallest image the dense network accepts (the training size for a
            converted AlexNet/VGG); a smaller Q is an error.
        transform: the network's resize and crop rules for ``center``/``10crop``, a dict
            as ``Preprocessing.transform()`` gives it (None: the defaults).
    """
    if name not in TABLE:
        raise ValueError(f"Unknown protocol. Expected one of {list(PROTOCOLS)}. Received: protocol={name!r}")
    spec = TABLE[name]
    crop = hw(crop_size, "crop_size")
    c = max(crop)
    if resize == "default":
        # CIFAR nets are tested on the whole 32x32 image (He et al. 2016, §4.2).
        resize = None if family in CIFAR_FAMILIES else _scaled((PAPER_RESIZE,), c)[0]
    if isinstance(pad, bool) or int(pad) < 0:
        raise ValueError(f"`pad` must be an int >= 0. Received: pad={pad!r}")
    if resize is not None:
        resize = int(resize)
        if resize + 2 * int(pad) < min(crop):  # resize, pad, crop: a run's 28 + 2 * 2 -> 32
            raise ValueError(
                f"`resize` (the shorter side before padding by {int(pad)} and cropping) plus "
                f"twice the pad must be at least the crop size {min(crop)}. Received: "
                f"resize={resize}")
    if square is None:
        square = family == "alexnet"
    if int(grid) < 1:
        raise ValueError(f"`grid` must be a positive int. Received: grid={grid}")
    kwargs = dict(name=name, crop_size=crop, resize=resize, square=bool(square), grid=int(grid), flip=bool(flip),
                  pad=int(pad), transform=tuple(sorted(dict(transform or {}).items())))
    if spec.scale_set:
        s = default_scales(spec.scale_set, family, c, train_scale) if scales is None else _positive_ints(scales, "scales")
        if min(s) < c:
            raise ValueError(
                f"Protocol {name!r}: every scale must be at least the crop size {c} (a crop "
                f"cannot be larger than the rescaled image). Received: scales={s}"
            )
        kwargs["scales"] = s
    if spec.dense:
        d = default_scales("dense", family, c, train_scale) if dense_scales is None else _positive_ints(dense_scales, "dense_scales")
        if min_dense_size is not None and min(d) < int(min_dense_size):
            raise ValueError(
                f"Protocol {name!r}: the fully-convolutional network needs images of at least "
                f"{int(min_dense_size)} pixels (its training size). Received: dense_scales={d}"
            )
        kwargs["dense_scales"] = d
    return Protocol(**kwargs)
