"""One description of how a decoded image becomes a network's input outside training.

:class:`Preprocessing` is the contract that training, evaluation, export, predict and
each weight set share (the pattern of timm's ``pretrained_cfg`` ->
``resolve_data_config`` and Model Garden's one parser for train, eval and serving):
the recipe (or a weight set) resolves it once, ``kerascnn train`` writes it into the
run folder as ``preprocessing.json`` and into every ``.keras`` file it writes (the model
carries it: :mod:`kerascnn.data.carried`, whose ``resolve`` is the one way to find a
model's), and ``eval_dataset``, the evaluation views, the SavedModel's serving
signatures and ``kerascnn predict`` all read the same value, so they cannot drift apart.

Fields:

- ``image_size`` ``(h, w)``: the network's input size;
- ``channels``: 1 or 3 (images are decoded to this many);
- ``resize``: the size the image is resized to before the crop (bilinear, values
  rounded back to the 0-255 grid); ``None``: no resize;
- ``resize_rule``: ``"shorter"`` (the default): isotropic, the shorter side to
  ``resize`` and the longer ``int(resize * longer / shorter)`` -- truncated, as
  torchvision's ``Resize(256)`` computes it; ``"warp"``: both sides to ``resize``, the
  aspect ratio not kept (Caffe's ``convert_imageset``, which warps every image to
  256x256);
- ``antialias``: downscaling filters with a triangle as wide as the scale
  (``tf.image.resize(..., antialias=True)``: what PIL's ``Image.resize`` and so
  torchvision do) -- the default, so that a phone photo 12x larger than the network's
  input is not aliased; ``False``: plain bilinear sampling of the 2x2 nearest pixels
  with half-pixel centres (OpenCV's ``cv2.resize(INTER_LINEAR)``, Caffe's);
- ``crop_offset``: where the centre crop starts when the image is larger than
  ``image_size`` by ``d`` pixels: ``"floor"`` (the default) ``d // 2`` (Caffe's data
  layer, ``tf.image.resize_with_crop_or_pad``), ``"round_half_even"``
  ``round(d / 2)`` with Python's rounding (torchvision's ``center_crop``: 16.5 -> 16,
  17.5 -> 18). A smaller image is padded with zeros, ``d // 2`` before (both);
- ``pad``: zero pixels added on each side after the resize (Fashion-MNIST's 28 -> 32);
- ``mean``: subtracted from the 0-255 pixels: a mean per channel ``(C,)``, a
  per-pixel mean ``(H, W, C)``, or ``None`` for **no subtraction** (one meaning: the
  ImageNet default is an explicit array, :data:`kerascnn.data.stats.IMAGENET_MEAN_RGB`).

The ``center`` view (:meth:`Preprocessing.__call__`) is: resize to ``resize`` by
``resize_rule``, ``pad``, centre crop (or centred zero padding) to ``image_size``, mean subtracted.
Every other view (10 crops, 144 crops, dense) subtracts the mean with
:func:`subtract_mean`, the one rule for a per-pixel mean whose size differs from the
image's: its per-channel average is subtracted.
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from kerascnn.data.sizes import hw

__all__ = [
    "CROP_OFFSETS",
    "PREPROCESSING_FILE",
    "Preprocessing",
    "RESIZE_RULES",
    "center_crop_or_pad",
    "resize_image",
    "resize_shorter",
    "shorter_side_shape",
    "subtract_mean",
]

PREPROCESSING_FILE = "preprocessing.json"
RESIZE_RULES = ("shorter", "warp")
CROP_OFFSETS = ("floor", "round_half_even")


def _mean_array(mean, channels):
    if mean is None:
        return None
    mean = np.asarray(mean, np.float32)
    if mean.ndim == 0:
        mean = np.full([channels], mean, np.float32)
    if mean.ndim not in (1, 3) or mean.shape[-1] != channels:
        raise ValueError(
            f"`mean` must be a mean per channel (C,) or per pixel (H, W, C) with C={channels}. "
            f"Received: mean with shape={mean.shape}")
    if not np.all(np.isfinite(mean)):
        raise ValueError("`mean` must be finite. Received: a mean with NaN or inf values")
    return mean


@dataclasses.dataclass(frozen=True, eq=False)
class Preprocessing:
    """The evaluation and serving preprocessing of one network (see the module doc)."""

    image_size: tuple
    channels: int = 3
    resize: int | None = None
    pad: int = 0
    mean: np.ndarray | None = None
    resize_rule: str = "shorter"
    antialias: bool = True
    crop_offset: str = "floor"

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "image_size", hw(self.image_size, "image_size"))
        if self.channels not in (1, 3) or isinstance(self.channels, bool):
            raise ValueError(f"`channels` must be 1 or 3. Received: channels={self.channels!r}")
        set_(self, "channels", int(self.channels))
        if self.resize is not None:
            if isinstance(self.resize, bool) or not isinstance(self.resize, (int, np.integer)) \
                    or self.resize <= 0:
                raise ValueError(
                    f"`resize` must be a positive int or None. Received: resize={self.resize!r}")
            set_(self, "resize", int(self.resize))
        if isinstance(self.pad, bool) or not isinstance(self.pad, (int, np.integer)) or self.pad < 0:
            raise ValueError(f"`pad` must be an int >= 0. Received: pad={self.pad!r}")
        set_(self, "pad", int(self.pad))
        set_(self, "mean", _mean_array(self.mean, self.channels))
        if self.resize_rule not in RESIZE_RULES:
            raise ValueError(f"`resize_rule` must be one of {', '.join(map(repr, RESIZE_RULES))}. "
                             f"Received: resize_rule={self.resize_rule!r}")
        if not isinstance(self.antialias, (bool, np.bool_)):
            raise ValueError(f"`antialias` must be True or False. Received: antialias={self.antialias!r}")
        set_(self, "antialias", bool(self.antialias))
        if self.crop_offset not in CROP_OFFSETS:
            raise ValueError(f"`crop_offset` must be one of {', '.join(map(repr, CROP_OFFSETS))}. "
                             f"Received: crop_offset={self.crop_offset!r}")

    def __eq__(self, other):
        if not isinstance(other, Preprocessing):
            return NotImplemented
        return self.to_json() == other.to_json()

    def replace(self, **changes) -> "Preprocessing":
        return dataclasses.replace(self, **changes)

    # -- construction ------------------------------------------------------------------
    @classmethod
    def for_model(cls, model, **kwargs) -> "Preprocessing":
        """Defaults from a Keras model's input shape (no resize, no mean)."""
        shape = model.inputs[0].shape
        if shape[1] is None or shape[2] is None:
            raise ValueError(
                "The model's input has no fixed size; pass a Preprocessing with an "
                f"image_size. Received: input shape={tuple(shape)}")
        return cls(image_size=(int(shape[1]), int(shape[2])), channels=int(shape[3]), **kwargs)

    # -- JSON: the one reader and writer of preprocessing.json -------------------------
    def transform(self) -> dict:
        """The resize and crop rules beyond the sizes (``resize_rule``, ``antialias``,
        ``crop_offset``): what a view that resizes itself (``views.center_crop``,
        ``views.ten_crop``) takes as keywords."""
        return {"resize_rule": self.resize_rule, "antialias": self.antialias,
                "crop_offset": self.crop_offset}

    def to_json(self) -> dict:
        return {"image_size": list(self.image_size), "channels": self.channels,
                "resize": self.resize, "pad": self.pad,
                "mean": None if self.mean is None else self.mean.tolist(), **self.transform()}

    @classmethod
    def from_json(cls, d: dict) -> "Preprocessing":
        """The inverse of :meth:`to_json`; a file written before ``resize_rule``,
        ``antialias`` and ``crop_offset`` existed takes their defaults."""
        try:
            return cls(image_size=tuple(d["image_size"]), channels=int(d.get("channels", 3)),
                       resize=d.get("resize"), pad=int(d.get("pad") or 0), mean=d.get("mean"),
                       resize_rule=d.get("resize_rule", "shorter"),
                       antialias=d.get("antialias", True),
                       crop_offset=d.get("crop_offset", "floor"))
        except (KeyError, TypeError) as e:
            raise ValueError(f"Not a kerascnn preprocessing description ({e}). "
                             f"Received: {d!r}") from None

    def save(self, folder: str, class_names=None) -> str:
        """Writes ``<folder>/preprocessing.json`` (atomically), with the class names."""
        from kerascnn._io import write_json

        path = os.path.join(folder, PREPROCESSING_FILE)
        doc = self.to_json()
        if class_names is not None:
            doc["class_names"] = [str(c) for c in class_names]
        write_json(path, doc)
        return path

    @classmethod
    def load(cls, path: str):
        """``(Preprocessing, class_names or None)`` from a ``preprocessing.json`` (or
        the folder holding one)."""
        if os.path.isdir(path):
            path = os.path.join(path, PREPROCESSING_FILE)
        try:
            with open(path) as f:
                doc = json.load(f)
        except OSError as e:
            raise ValueError(f"Cannot read {path}: {e.strerror}.") from None
        except ValueError:
            raise ValueError(f"{path} is not valid JSON; delete it or write it again "
                             "with `kerascnn train`.") from None
        return cls.from_json(doc), doc.get("class_names")

    @classmethod
    def find(cls, model_path: str):
        """The training run's preprocessing for a ``.keras`` file: ``kerascnn train``
        keeps checkpoints in ``<run>/checkpoints/`` and writes ``<run>/preprocessing.json``,
        so it is looked up next to the file, then one folder up. ``(None, None)`` when
        there is none. (A model's own preprocessing comes first: see
        :func:`kerascnn.data.carried.resolve`.)"""
        path = cls.locate(model_path)
        return (None, None) if path is None else cls.load(path)

    @staticmethod
    def locate(model_path: str):
        """The ``preprocessing.json`` :meth:`find` reads for ``model_path``, or None."""
        folder = os.path.dirname(os.path.abspath(model_path))
        for candidate in (folder, os.path.dirname(folder)):
            path = os.path.join(candidate, PREPROCESSING_FILE)
            if os.path.exists(path):
                return path
        return None

    # -- the center view ----------------------------------------------------------------
    def crop_uint8(self, image):
        """Resize (``resize`` by ``resize_rule``), ``pad``, centre crop to
        ``image_size``: uint8 ``(H, W, C)`` (or a batch) -> float32 on the 0-255 grid,
        before the mean."""
        import tensorflow as tf

        x = tf.convert_to_tensor(image)
        if self.resize is not None:
            x = resize_image(x, self.resize, self.resize_rule, antialias=self.antialias)
        x = tf.cast(x, tf.float32)
        if self.pad:
            p = self.pad
            x = tf.pad(x, [[0, 0]] * (x.shape.rank - 3) + [[p, p], [p, p], [0, 0]])
        return center_crop_or_pad(x, self.image_size, self.crop_offset)

    def __call__(self, image):
        """The ``center`` view: uint8 ``(H, W, C)`` or ``(B, H, W, C)`` -> float32, the
        network's input. Pure TF graph ops (no XLA): the export puts exactly this into
        the SavedModel."""
        return subtract_mean(self.crop_uint8(image), self.mean)


def resize_image(image, size, rule="shorter", *, antialias=True):
    """Bilinear resize of ``(..., H, W, C)`` by ``rule`` (``"shorter"``:
    :func:`resize_shorter`; ``"warp"``: to ``size x size``), values rounded and clipped
    to the 0-255 grid (float32 out), as the uint8 image a publisher's pipeline makes
    (PIL's, OpenCV's)."""
    import tensorflow as tf

    if rule not in RESIZE_RULES:
        raise ValueError(f"`resize_rule` must be one of {', '.join(map(repr, RESIZE_RULES))}. "
                         f"Received: resize_rule={rule!r}")
    if rule == "shorter":
        return resize_shorter(image, size, antialias=antialias)
    x = tf.image.resize(tf.convert_to_tensor(image), [int(size), int(size)], method="bilinear",
                        antialias=bool(antialias))
    return tf.clip_by_value(tf.round(x), 0.0, 255.0)


def resize_shorter(image, size, *, antialias=True):
    """Isotropic bilinear resize of ``(..., H, W, C)`` so that the shorter side is
    ``size`` and the longer ``int(size * longer / shorter)`` (truncated:
    torchvision's ``_compute_resized_output_size``), values rounded and clipped to the
    0-255 grid (float32 out); ``antialias`` filters a downscale (PIL's and so
    torchvision's bilinear does). The one implementation of the papers' "shorter side
    to S" for evaluation and serving (training draws S per image: policies)."""
    import tensorflow as tf

    x = tf.convert_to_tensor(image)
    x = tf.image.resize(x, shorter_side_shape(tf.shape(x)[-3:-1], size), method="bilinear",
                        antialias=bool(antialias))
    return tf.clip_by_value(tf.round(x), 0.0, 255.0)


def shorter_side_shape(shape, size):
    """``int32 [h, w]`` of an image of ``shape = [height, width]`` rescaled
    isotropically so that its shorter side is ``size``, the longer
    ``int(size * longer / shorter)`` (torchvision's arithmetic; exact in integers):
    the arithmetic of :func:`resize_shorter`, for the views that sample the rescaled
    image without making it. ``size`` may be a tensor, and a vector ``(S,)`` of sizes
    gives ``(S, 2)``."""
    import tensorflow as tf

    shape = tf.cast(shape, tf.int64)
    size = tf.expand_dims(tf.cast(size, tf.int64), -1)
    new = shape * size // tf.reduce_min(shape)
    return tf.cast(tf.maximum(new, size), tf.int32)


def center_crop_or_pad(images, size, offset="floor"):
    """The centre ``size = (h, w)`` of ``(..., H, W, C)`` images: a larger side is cut
    at ``d // 2`` (``offset="floor"``) or ``round(d / 2)`` rounding halves to even
    (``"round_half_even"``, torchvision's ``center_crop``), ``d`` the excess; a
    smaller side is padded with zeros, ``d // 2`` before (both rules)."""
    import tensorflow as tf

    from kerascnn.data.ops import pad_centred, pad_to

    h, w = size
    if offset == "floor":
        return pad_to(images, (h, w))
    if offset not in CROP_OFFSETS:
        raise ValueError(f"`crop_offset` must be one of {', '.join(map(repr, CROP_OFFSETS))}. "
                         f"Received: crop_offset={offset!r}")
    shape = tf.shape(images)
    height, width = shape[-3], shape[-2]
    x = pad_centred(images, tf.maximum(h - height, 0), tf.maximum(w - width, 0))
    # tf.round rounds halves to even, as Python's round.
    top = tf.cast(tf.round(tf.cast(tf.maximum(height - h, 0), tf.float32) / 2.0), tf.int32)
    left = tf.cast(tf.round(tf.cast(tf.maximum(width - w, 0), tf.float32) / 2.0), tf.int32)
    x = x[..., top:top + h, left:left + w, :]
    return tf.ensure_shape(x, [None] * (images.shape.rank - 3) + [h, w, images.shape[-1]])


def subtract_mean(images, mean):
    """``images - mean`` for float ``(..., H, W, C)`` images. ``mean``: None (no
    subtraction), ``(C,)``, or ``(H, W, C)``; a per-pixel mean of another spatial size
    than the images' is replaced by its per-channel average (a crop of a different
    size, or a dense view at another scale, has no pixel-wise counterpart)."""
    import tensorflow as tf

    if mean is None:
        return images
    mean = np.asarray(mean, np.float32)
    if mean.ndim == 3:
        spatial = tuple(images.shape[-3:-1])
        if None in spatial:
            full = tf.constant(mean, images.dtype)
            avg = tf.constant(mean.mean(axis=(0, 1)), images.dtype)
            same = tf.reduce_all(tf.equal(tf.shape(images)[-3:-1], mean.shape[:2]))
            return tf.cond(same, lambda: images - full, lambda: images - avg)
        if spatial != mean.shape[:2]:
            mean = mean.mean(axis=(0, 1))
    return images - tf.constant(mean, images.dtype)
