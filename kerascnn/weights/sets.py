"""The table of weight sets: per network, the publishers' files and what they report.

Every value is copied from the publisher's own source (never from our code's output),
named in ``_SOURCES``:

- keras.applications: URLs and md5 hashes from ``keras/src/applications/resnet.py``,
  ``vgg16.py``, ``vgg19.py`` (keras-team/keras, 2026); top-1/top-5 accuracy from the
  keras.io "Available models" table (keras-team/keras-io,
  ``templates/api/applications/index.md``); keras-applications' README says these are
  "single center crop" figures on the ILSVRC-2012 validation set at 224x224.
- torchvision: URLs and accuracies (``acc@1``/``acc@5`` of the ``*_Weights`` enums)
  from ``torchvision/models/resnet.py`` and ``vgg.py``; the hash is the sha256 prefix
  in the file name that ``torch.hub`` checks (``check_hash``); the preprocessing is
  the enum's ``ImageClassification`` preset (``resize_size`` 256 unless given, 232
  for the V2 ResNets; ``crop_size`` 224; mean/std of ``_presets.py``).
- BVLC: URLs, sha1 and the center-crop accuracies from ``models/bvlc_alexnet/readme.md``
  and ``models/bvlc_googlenet/readme.md`` (BVLC/caffe).

Hashes: ``get_file`` checks md5 and sha256 only, so :mod:`kerascnn.weights.loading`
checks every file itself after ``get_file`` has fetched it (md5, sha1, sha256, or
the sha256 prefix of torchvision's file names) and refuses a file that differs.

Accuracies are in %, as the publisher reports them (not errors): ``top1``/``top5``
with ``protocol`` (a ``kerascnn.evaluation`` protocol name) and ``setting`` (the
publisher's own words about how it was measured).
"""

from __future__ import annotations

import dataclasses
import difflib

from kerascnn.weights.origins import CAFFE, KERAS_APPLICATIONS, TORCHVISION, get_origin

# The means of the 0-255 RGB input each publisher's networks were trained on, from
# their records (kerascnn.weights.origins): keras' "caffe" mode, torchvision's
# 255 * (0.485, 0.456, 0.406), BVLC's channel means (BGR 104, 117, 123).
KERAS_MEAN_RGB = get_origin(KERAS_APPLICATIONS).mean_rgb
TORCHVISION_MEAN_RGB = get_origin(TORCHVISION).mean_rgb
BVLC_MEAN_RGB = get_origin(CAFFE).mean_rgb

HASH_ALGORITHMS = ("md5", "sha1", "sha256", "sha256_prefix")

_SOURCES = {
    KERAS_APPLICATIONS: (
        "https://github.com/keras-team/keras/blob/master/keras/src/applications/ "
        "(resnet.py, vgg16.py, vgg19.py); accuracy: https://keras.io/api/applications/"
    ),
    TORCHVISION: (
        "https://github.com/pytorch/vision/blob/main/torchvision/models/ "
        "(resnet.py, vgg.py: the *_Weights enums)"
    ),
    CAFFE: "https://github.com/BVLC/caffe/tree/master/models (bvlc_alexnet, bvlc_googlenet)",
}


@dataclasses.dataclass(frozen=True)
class WeightFile:
    """One downloadable file: where it is and how to check it."""

    url: str
    file_name: str
    file_hash: str
    hash_algorithm: str

    def __post_init__(self):
        if self.hash_algorithm not in HASH_ALGORITHMS:
            raise ValueError(
                f"`hash_algorithm` must be one of {HASH_ALGORITHMS}. "
                f"Received: hash_algorithm={self.hash_algorithm!r}"
            )
        if "/" in self.file_name or "\\" in self.file_name or not self.file_name:
            raise ValueError(
                f"`file_name` must be a bare file name. Received: file_name={self.file_name!r}"
            )


@dataclasses.dataclass(frozen=True)
class WeightSet:
    """A network's weight set: the publisher's file(s) and everything known about it.

    Attributes:
        network: registry name (``"resnet50"``).
        name: the set's name, the builders' ``weights=`` value (``"imagenet"``).
        file: the file with the classifier.
        notop: the file without it (keras.applications), or None: then
            ``include_top=False`` reads ``file`` and leaves out the head's tensors.
        origin: the publisher's conventions, a key of
            :data:`kerascnn.weights.origins.ORIGINS` (the record of its formats, input
            and evaluation transform).
        publisher: who publishes the file.
        provenance: where the weights come from.
        licence: the licence the publisher states.
        top1, top5: reported accuracy, %.
        protocol: the ``kerascnn.evaluation`` protocol of that figure.
        setting: the publisher's words on how it was measured.
        mean_rgb: the mean RGB the model's input has subtracted (0-255); None
            (the default): the origin's.
        resize: the size the publisher resizes to before the crop (the shorter side,
            or the side of Caffe's warp: the origin's ``resize_rule``).
        crop: the crop (the network's input size).
        requires: builder arguments the set needs (its architecture), e.g.
            ``{"stride_in_1x1": False}``.
        source: where the values above were copied from.
    """

    network: str
    name: str
    file: WeightFile
    notop: WeightFile | None
    origin: str
    publisher: str
    provenance: str
    licence: str
    top1: float
    top5: float
    protocol: str
    setting: str
    mean_rgb: tuple | None
    resize: int
    crop: int
    requires: dict = dataclasses.field(default_factory=dict)
    source: str = ""

    def __post_init__(self):
        origin = get_origin(self.origin)
        if self.mean_rgb is None:
            object.__setattr__(self, "mean_rgb", origin.mean_rgb)

    @property
    def origin_record(self):
        """The :class:`~kerascnn.weights.origins.Origin` of the set's publisher."""
        return get_origin(self.origin)

    def weight_file(self, include_top=True) -> WeightFile:
        """The file to read for ``include_top``."""
        return self.file if include_top or self.notop is None else self.notop

    def preprocessing(self, image_size=None):
        """The publisher's evaluation transform as a
        :class:`kerascnn.data.preprocessing.Preprocessing`: its origin's resize rule
        (torchvision: shorter side to ``resize``, antialiased, torchvision's crop
        offsets; BVLC: a warp to ``resize x resize``), centre crop, minus ``mean_rgb``.
        At another ``image_size`` the resize keeps the set's ratio ``resize / crop``."""
        from kerascnn.data.preprocessing import Preprocessing

        size = Preprocessing(image_size or (self.crop, self.crop)).image_size
        resize = self.resize if size == (self.crop, self.crop) else \
            int(round(min(size) * self.resize / self.crop))
        return self.origin_record.preprocessing(size, resize=resize, mean_rgb=self.mean_rgb)

    def describe(self) -> str:
        return (
            f"{self.network} weights={self.name!r}: {self.publisher} {self.file.file_name} "
            f"({self.provenance}); top-1 {self.top1:g}% / top-5 {self.top5:g}% "
            f"({self.setting})"
        )


_SETS: dict[str, dict[str, WeightSet]] = {}


def register_weight_set(weight_set: WeightSet) -> WeightSet:
    """Adds a set to the table (a network's set name registered twice is an error).

    Public so that a project can add its own published files (and so tests can add
    a set whose file they wrote)."""
    if not isinstance(weight_set, WeightSet):
        raise ValueError(
            f"Expected a WeightSet. Received: weight_set={type(weight_set).__name__}"
        )
    sets = _SETS.setdefault(weight_set.network, {})
    if weight_set.name in sets:
        raise ValueError(
            f"Weight set {weight_set.name!r} of {weight_set.network!r} is already registered."
        )
    sets[weight_set.name] = weight_set
    return weight_set


def unregister_weight_set(network: str, name: str) -> None:
    """Removes a set added with :func:`register_weight_set`."""
    sets = _SETS.get(network, {})
    if name not in sets:
        raise ValueError(f"No weight set {name!r} of {network!r}. Received: name={name!r}")
    del sets[name]


def lookup_key(name: str) -> str:
    """The key a network name is looked up by, here and in the registry
    (:mod:`kerascnn.applications.registry`): case, ``-`` and ``_`` ignored, so
    ``"ResNet-50"`` is ``"resnet50"``."""
    return str(name).strip().lower().replace("-", "").replace("_", "")


def network_name(network: str) -> str:
    """The table's name of ``network`` (``"ResNet-18"`` -> ``"resnet18"``); a network
    without sets keeps its name (:func:`get_weight_set` then says it has none)."""
    if not isinstance(network, str):
        raise ValueError(f"`network` must be a registry name. Received: network={network!r}")
    return {lookup_key(n): n for n in _SETS}.get(lookup_key(network), network)


def weight_sets(network: str) -> dict[str, WeightSet]:
    """``{set name: WeightSet}`` of a registry network (empty when it has none)."""
    return dict(_SETS.get(network, {}))


def all_weight_sets() -> list[WeightSet]:
    return [s for sets in _SETS.values() for s in sets.values()]


def get_weight_set(network: str, name: str) -> WeightSet:
    """The set ``name`` of ``network``; an unknown name lists the sets that exist."""
    sets = _SETS.get(network, {})
    if name not in sets:
        close = difflib.get_close_matches(str(name), list(sets), n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(
            f"{network} has no weight set {name!r}.{hint} {available_text(network)} "
            f"Received: weights={name!r}"
        )
    return sets[name]


def available_text(network: str) -> str:
    """One sentence listing a network's sets with the arguments each needs."""
    sets = _SETS.get(network, {})
    if not sets:
        nets = ", ".join(sorted(_SETS))
        return f"{network} has no published weights (networks with weights: {nets})."
    parts = []
    for s in sets.values():
        args = ", ".join(f"{k}={v!r}" for k, v in s.requires.items())
        parts.append(f"{s.name!r}" + (f" (with {args})" if args else ""))
    return f"Weight sets of {network}: {', '.join(parts)}."


# -- the table --------------------------------------------------------------------------
_KERAS_BASE = "https://storage.googleapis.com/tensorflow/keras-applications/"
_TV_BASE = "https://download.pytorch.org/models/"
_VAL = "ILSVRC-2012 val"


def _keras_file(subdir, name, md5):
    return WeightFile(f"{_KERAS_BASE}{subdir}{name}", name, md5, "md5")


def _tv_file(name):
    stem = name.rsplit(".", 1)[0]
    return WeightFile(f"{_TV_BASE}{name}", name, stem.rsplit("-", 1)[1], "sha256_prefix")


# keras.applications: (network, subdir, file stem, md5 top, md5 notop, top-1, top-5)
_KERAS = (
    ("resnet50", "resnet/", "resnet50", "2cb95161c43110f7111970584f804107",
     "4d473c1dd8becc155b73f8504c6f6626", 74.9, 92.1),
    ("resnet101", "resnet/", "resnet101", "f1aeb4b969a6efcfb50fad2f0c20cfc5",
     "88cf7a10940856eca736dc7b7e228a21", 76.4, 92.8),
    ("resnet152", "resnet/", "resnet152", "100835be76be38e30d865e96f2aaae62",
     "ee4c566cf9a93f14d82f913c2dc6dd0c", 76.6, 93.1),
    ("vgg16", "vgg16/", "vgg16", "64373286793e3c8b2b4e3219cbf3544b",
     "6d6bbae143d832006294945121d1f1fc", 71.3, 90.1),
    ("vgg19", "vgg19/", "vgg19", "cbe5617147190e668d6c5d5026f83318",
     "253f8cb515780f3b799900260a226db6", 71.3, 90.0),
)
for _net, _sub, _stem, _md5, _md5_notop, _top1, _top5 in _KERAS:
    _resnet = _net.startswith("resnet")
    register_weight_set(WeightSet(
        network=_net,
        name="imagenet",
        file=_keras_file(_sub, f"{_stem}_weights_tf_dim_ordering_tf_kernels.h5", _md5),
        notop=_keras_file(_sub, f"{_stem}_weights_tf_dim_ordering_tf_kernels_notop.h5",
                          _md5_notop),
        origin=KERAS_APPLICATIONS,
        publisher="keras.applications",
        provenance=("the original MSRA Caffe models (He et al.), converted by Keras"
                    if _resnet else "Oxford VGG's Caffe models (Simonyan & Zisserman), "
                    "converted by Keras"),
        licence=("MIT (KaimingHe/deep-residual-networks)" if _resnet
                 else "CC BY 4.0 (Oxford VGG)"),
        top1=_top1,
        top5=_top5,
        protocol="center",
        setting=f"{_VAL}, single center crop 224x224 (keras.io, keras-applications README)",
        mean_rgb=None,
        resize=256,
        crop=224,
        requires=({"shortcut": "B", "stride_in_1x1": True} if _resnet else {}),
        source=_SOURCES[KERAS_APPLICATIONS],
    ))

# torchvision: (network, set name, file, top-1, top-5, resize, requires, provenance)
_TV_V1 = "torchvision's IMAGENET1K_V1 (reproduces the paper's results with a simple recipe)"
_TV_V2 = "torchvision's IMAGENET1K_V2 (torchvision's new training recipe)"
_TORCHVISION = (
    ("resnet18", "imagenet", "resnet18-f37072fd.pth", 69.758, 89.078, 256, {}, _TV_V1),
    ("resnet34", "imagenet", "resnet34-b627a593.pth", 73.314, 91.420, 256, {}, _TV_V1),
    ("resnet50", "torchvision", "resnet50-0676ba61.pth", 76.130, 92.862, 256,
     {"stride_in_1x1": False}, _TV_V1),
    ("resnet50", "torchvision_v2", "resnet50-11ad3fa6.pth", 80.858, 95.434, 232,
     {"stride_in_1x1": False}, _TV_V2),
    ("resnet101", "torchvision", "resnet101-63fe2227.pth", 77.374, 93.546, 256,
     {"stride_in_1x1": False}, _TV_V1),
    ("resnet101", "torchvision_v2", "resnet101-cd907fc2.pth", 81.886, 95.780, 232,
     {"stride_in_1x1": False}, _TV_V2),
    ("resnet152", "torchvision", "resnet152-394f9c45.pth", 78.312, 94.046, 256,
     {"stride_in_1x1": False}, _TV_V1),
    ("resnet152", "torchvision_v2", "resnet152-f82ba261.pth", 82.284, 96.002, 232,
     {"stride_in_1x1": False}, _TV_V2),
    ("vgg11", "imagenet", "vgg11-8a719046.pth", 69.020, 88.628, 256, {},
     "torchvision's IMAGENET1K_V1"),
    ("vgg13", "imagenet", "vgg13-19584684.pth", 69.928, 89.246, 256, {},
     "torchvision's IMAGENET1K_V1"),
    ("vgg16", "torchvision", "vgg16-397923af.pth", 71.592, 90.382, 256, {},
     "torchvision's IMAGENET1K_V1 (a 2017 legacy-pickle file)"),
    ("vgg19", "torchvision", "vgg19-dcbb9e9d.pth", 72.376, 90.876, 256, {},
     "torchvision's IMAGENET1K_V1"),
)
for _net, _name, _file, _top1, _top5, _resize, _requires, _prov in _TORCHVISION:
    if _net.startswith("resnet"):
        _requires = {"shortcut": "B", **_requires}
    register_weight_set(WeightSet(
        network=_net,
        name=_name,
        file=_tv_file(_file),
        notop=None,
        origin=TORCHVISION,
        publisher="torchvision",
        provenance=_prov,
        licence="BSD-3-Clause (torchvision)",
        top1=_top1,
        top5=_top5,
        protocol="center",
        setting=f"{_VAL}, shorter side {_resize}, center crop 224 (torchvision's "
                "ImageClassification preset)",
        mean_rgb=None,
        resize=_resize,
        crop=224,
        requires=_requires,
        source=_SOURCES[TORCHVISION],
    ))

_BVLC_BASE = "http://dl.caffe.berkeleyvision.org/"
register_weight_set(WeightSet(
    network="alexnet",
    name="imagenet",
    file=WeightFile(f"{_BVLC_BASE}bvlc_alexnet.caffemodel", "bvlc_alexnet.caffemodel",
                    "9116a64c0fbe4459d18f4bb6b56d647b63920377", "sha1"),
    notop=None,
    origin=CAFFE,
    publisher="BVLC",
    provenance="BVLC Caffe's replication of Krizhevsky et al. (2012), iteration 360,000",
    licence="unrestricted (BVLC model zoo)",
    top1=57.1,
    top5=80.2,
    protocol="center",
    setting=f"{_VAL}, just the center crop (227 of BVLC's images warped to 256x256)",
    mean_rgb=None,
    resize=256,
    crop=227,
    requires={"groups": 2},
    source=_SOURCES[CAFFE],
))
register_weight_set(WeightSet(
    network="googlenet",
    name="imagenet",
    file=WeightFile(f"{_BVLC_BASE}bvlc_googlenet.caffemodel", "bvlc_googlenet.caffemodel",
                    "405fc5acd08a3bb12de8ee5e23a96bec22f08204", "sha1"),
    notop=None,
    origin=CAFFE,
    publisher="BVLC",
    provenance="BVLC Caffe's replication of Szegedy et al. (2015), iteration 2,400,000, "
               "auxiliary heads included",
    licence="unrestricted (BVLC model zoo)",
    top1=68.7,
    top5=88.9,
    protocol="center",
    setting=f"{_VAL}, just the center crop (224 of BVLC's images warped to 256x256)",
    mean_rgb=None,
    resize=256,
    crop=224,
    requires={},
    source=_SOURCES[CAFFE],
))
