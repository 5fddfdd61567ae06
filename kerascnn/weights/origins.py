"""Each publisher's conventions, in one record beside its weights.

An :class:`Origin` holds everything a publisher's files imply besides their tensors
(timm's ``pretrained_cfg``, torchvision's ``Weights.transforms()``): the formats it
writes, the input the network was trained and measured on (channel order, mean and
std, the evaluation transform: resize rule, interpolation, antialiasing, size
arithmetic, crop offsets), Caffe's LRN constants, and the names of the classifier in
its files. The mappers fold the channel order and the std into the first conv, so a
kerascnn model always takes RGB, 0-255, minus ``mean_rgb``; :meth:`Origin.preprocessing`
gives the rest as a :class:`kerascnn.data.preprocessing.Preprocessing`, which
``WeightSet.preprocessing()``, evaluation, ``predict`` and the export all run.

The evaluation transforms, from the publishers' sources:

- torchvision (``torchvision/models/_api.py`` ``Weights.transforms``,
  ``transforms/_presets.py`` ``ImageClassification``): PIL image, ``Resize(256)``
  bilinear with antialiasing (PIL filters every downscale), the longer side
  ``int(256 * long / short)`` (``functional._compute_resized_output_size``),
  ``CenterCrop(224)`` at ``int(round((h - 224) / 2.0))`` (``functional.center_crop``),
  ``(x / 255 - mean) / std``.
- BVLC Caffe (``tools/convert_imageset.cpp``, ``src/caffe/util/io.cpp``
  ``ReadImageToCVMat``, ``src/caffe/data_transformer.cpp``): every image read with
  OpenCV (BGR) and warped to 256x256 with ``cv::resize`` (bilinear, no antialiasing),
  the test phase's crop at ``(256 - crop) / 2``, the BGR mean subtracted (BVLC's
  ``models/bvlc_googlenet/train_val.prototxt`` ``mean_value: 104 117 123``; the
  AlexNet prototxt subtracts the per-pixel ``imagenet_mean.binaryproto``, whose
  channel means these are -- kerascnn subtracts the channel means).
- keras.applications: its README says only "single center crop" at 224x224 on the
  ILSVRC-2012 validation set, not how the crop was made; kept as kerascnn's
  default: shorter side 256 (truncated), bilinear with antialiasing, centre crop 224
  at ``d // 2``. The mean is keras' ``imagenet_utils`` "caffe" mode (BGR ``103.939,
  116.779, 123.68``), ``kerascnn.data.stats.IMAGENET_MEAN_RGB`` (defined in
  ``kerascnn._imagenet``, which needs no TensorFlow).
"""

from __future__ import annotations

import dataclasses
import types

from kerascnn._imagenet import IMAGENET_MEAN_RGB

# The origin keys (the mappers' ``origin`` argument, ``WeightSet.origin``).
KERAS_APPLICATIONS = "keras_applications"
TORCHVISION = "torchvision"
CAFFE = "caffe"


@dataclasses.dataclass(frozen=True)
class Origin:
    """One publisher's conventions.

    Attributes:
        name: the key (``"torchvision"``).
        publisher: who publishes the files.
        formats: the :mod:`kerascnn.weights.readers` formats it writes.
        channel_order: ``"RGB"`` or ``"BGR"``: the order its first conv was trained on
            (the mapper reverses a BGR conv).
        mean_rgb: the mean its input has subtracted, RGB, 0-255.
        std_rgb: what its input is divided by after the mean, RGB, 0-255 levels
            (torchvision's ``255 * std``; folded into the first conv by the mapper),
            or None.
        resize: the shorter side (or the warp's side) of its 224 crop.
        crop: its evaluation crop (the network's input size; AlexNet's is 227, a set's
            own ``crop`` says).
        resize_rule, antialias, crop_offset: the evaluation transform (see
            :class:`~kerascnn.data.preprocessing.Preprocessing`).
        interpolation: the resize's interpolation (bilinear for all).
        size_arithmetic: how the longer side of a "shorter side" resize is rounded
            (``"truncate"``: ``int(S * long / short)``; kerascnn's one rule).
        lrn: Caffe's LRN layer parameters as its prototxts set them, or None.
        classifier: per family, the classifier's tensor names in the publisher's files.
        source: where these values come from.
    """

    name: str
    publisher: str
    formats: tuple
    channel_order: str
    mean_rgb: tuple
    std_rgb: tuple | None
    resize: int
    crop: int
    resize_rule: str
    antialias: bool
    crop_offset: str
    classifier: types.MappingProxyType
    interpolation: str = "bilinear"
    size_arithmetic: str = "truncate"
    lrn: types.MappingProxyType | None = None
    source: str = ""

    def resize_for(self, crop) -> int:
        """The resize for a crop of another size: the publisher's ratio kept
        (``round(crop * resize / 224)`` for torchvision's 256/224)."""
        return int(round(int(crop) * self.resize / self.crop))

    def preprocessing(self, image_size=None, *, resize=None, mean_rgb=None):
        """The publisher's evaluation transform as a
        :class:`~kerascnn.data.preprocessing.Preprocessing` at ``image_size`` (default:
        the publisher's crop), resizing to ``resize`` (default: the publisher's ratio
        of the crop), minus ``mean_rgb`` (default: the publisher's)."""
        from kerascnn.data.preprocessing import Preprocessing

        size = (self.crop, self.crop) if image_size is None else image_size
        prep = Preprocessing(image_size=size, channels=3, mean=self.mean_rgb if mean_rgb is None
                             else mean_rgb, resize_rule=self.resize_rule,
                             antialias=self.antialias, crop_offset=self.crop_offset)
        if resize is None:
            resize = self.resize_for(min(prep.image_size))
        return prep.replace(resize=int(resize))


def _frozen(d):
    return types.MappingProxyType(dict(d))


ORIGINS = {
    o.name: o
    for o in (
        Origin(
            name=KERAS_APPLICATIONS,
            publisher="keras.applications",
            formats=("keras_legacy_h5",),
            channel_order="BGR",
            mean_rgb=IMAGENET_MEAN_RGB,
            std_rgb=None,
            resize=256,
            crop=224,
            resize_rule="shorter",
            antialias=True,
            crop_offset="floor",
            classifier=_frozen({"resnet": ("predictions",), "vgg": ("predictions",)}),
            source="keras/src/applications/imagenet_utils.py (mode 'caffe'); "
                   "keras-team/keras-applications README (single center crop, 224x224)",
        ),
        Origin(
            name=TORCHVISION,
            publisher="torchvision",
            formats=("torch", "safetensors"),
            channel_order="RGB",
            mean_rgb=tuple(255.0 * m for m in (0.485, 0.456, 0.406)),
            std_rgb=tuple(255.0 * s for s in (0.229, 0.224, 0.225)),
            resize=256,
            crop=224,
            resize_rule="shorter",
            antialias=True,
            crop_offset="round_half_even",
            classifier=_frozen({"resnet": ("fc",), "vgg": ("classifier.6",)}),
            source="torchvision/transforms/_presets.py (ImageClassification), "
                   "torchvision/transforms/functional.py (_compute_resized_output_size, "
                   "center_crop)",
        ),
        Origin(
            name=CAFFE,
            publisher="BVLC",
            formats=("caffe",),
            channel_order="BGR",
            mean_rgb=(123.0, 117.0, 104.0),
            std_rgb=None,
            resize=256,
            crop=224,
            resize_rule="warp",
            antialias=False,
            crop_offset="floor",
            classifier=_frozen({"alexnet": ("fc8",), "googlenet": (
                "loss3/classifier", "loss1/classifier", "loss2/classifier")}),
            lrn=_frozen({"local_size": 5, "alpha": 1e-4, "beta": 0.75, "k": 1.0}),
            source="BVLC/caffe: tools/convert_imageset.cpp, src/caffe/data_transformer.cpp, "
                   "models/bvlc_alexnet and models/bvlc_googlenet (*.prototxt)",
        ),
    )
}
ORIGIN_NAMES = tuple(ORIGINS)
# The reader's format -> the publisher whose conventions a file of that format has.
ORIGIN_OF_FORMAT = {fmt: o.name for o in ORIGINS.values() for fmt in o.formats}


def get_origin(name) -> Origin:
    """The record of origin ``name``; an unknown name lists those that exist."""
    if name not in ORIGINS:
        raise ValueError(f"`origin` must be one of {', '.join(map(repr, ORIGINS))}. "
                         f"Received: origin={name!r}")
    return ORIGINS[name]


def origin_of_format(fmt) -> Origin | None:
    """The publisher whose files have reader format ``fmt`` (None for Keras' own)."""
    name = ORIGIN_OF_FORMAT.get(fmt)
    return None if name is None else ORIGINS[name]
