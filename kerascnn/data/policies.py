"""The papers' training augmentation, one named policy per paper.

A policy is two functions: ``example`` (per image, in a parallel ``tf.data`` map:
decode — only the crop when it is known before decoding — and resize to a fixed
size, uint8 out) and ``batch`` (per fixed-size batch, composed of
:mod:`kerascnn.data.ops` and compiled with ``tf.function(jit_compile=True)``: random
fixed-size crop, flip, lighting/colour, mean subtraction).

========== ================================================================ =======
policy     paper recipe (PAPERS.md)                                          size
========== ================================================================ =======
alexnet    shorter side 256, centre 256x256, random crop, flip, PCA lighting  227
vgg        isotropic rescale S ~ U[256, 512] (or fixed S), random crop, flip,  224
           PCA lighting
googlenet  random-sized crop 8-100 % area, aspect [3/4, 4/3], random           224
           interpolation, photometric distortions, flip
resnet     shorter side ~ U[256, 480], random crop, flip, PCA lighting         224
           ("AlexNet's colour augmentation"), mean subtraction
cifar      4-pixel zero padding, random crop, flip (ResNet §4.2)               32
========== ================================================================ =======

Departures from the papers: for ``vgg``/``resnet`` the random crop is taken in the
original image and only that window is decoded and resized (the same distribution
of crops up to sub-pixel alignment, several times cheaper than resizing the whole
image); means are subtracted as a mean RGB unless a per-pixel mean is given;
``googlenet``'s "photometric distortions" (not specified in the paper) follow
Howard (2013) / TF-slim's ``distort_color`` in one fixed order.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from kerascnn.data import ops
from kerascnn.data.decode import decode_and_crop, decode_image

__all__ = ["Policy", "get_policy", "list_policies", "needs_dct_scaling"]

_INTERPOLATIONS = ("bilinear", "area", "bicubic", "nearest")


@dataclasses.dataclass(frozen=True)
class Policy:
    """A training augmentation policy (see the module docstring).

    Attributes:
      name: the policy's name.
      example: per-image step: ``"none"`` (images already a fixed size),
        ``"center"`` (shorter side to ``resize``, centre square), ``"scale"``
        (shorter side ~ U[scale], random crop), ``"inception"`` (random-sized crop).
      image_size: default output size.
      resize: ``center``: the shorter side before the random crop.
      scale: ``scale``: inclusive range of the shorter side S.
      area, aspect: ``inception``: ranges of crop area fraction and aspect ratio.
      random_interpolation: ``inception``: pick the resize method per image.
      pad: zero padding before the random crop (``cifar``).
      random_crop: a random ``image_size`` crop in the batch step.
      flip: random horizontal flip.
      lighting: PCA-lighting sigma (0: off).
      photometric: Howard-style colour distortions.
      hide_patch, hide_prob: Hide-and-Seek (Singh & Lee 2017): after the mean is
        subtracted, each ``hide_patch``-pixel square of a grid is set to 0 (the mean)
        with probability ``hide_prob`` (0: off). Not a paper's classification policy:
        a remedy for class activation maps that cover only an object's most
        discriminative part (``pipelines/fashion_mnist_boxes_cam.toml``).
    """

    name: str
    example: str = "none"
    image_size: tuple = (224, 224)
    resize: int = 256
    scale: tuple = (256, 480)
    area: tuple = (0.08, 1.0)
    aspect: tuple = (3 / 4, 4 / 3)
    random_interpolation: bool = False
    pad: int = 0
    random_crop: bool = False
    flip: bool = True
    lighting: float = 0.0
    photometric: bool = False
    hide_patch: int = 0
    hide_prob: float = 0.0

    def __post_init__(self):
        if isinstance(self.hide_patch, bool) or not isinstance(self.hide_patch, int) \
                or self.hide_patch < 0:
            raise ValueError("`hide_patch` must be an int >= 0 (pixels; 0: off). "
                             f"Received: hide_patch={self.hide_patch!r}")
        if isinstance(self.hide_prob, bool) or not isinstance(self.hide_prob, (int, float)) \
                or not 0.0 <= self.hide_prob < 1.0:
            raise ValueError("`hide_prob` must be a number in [0, 1). "
                             f"Received: hide_prob={self.hide_prob!r}")
        if bool(self.hide_patch) != bool(self.hide_prob):  # one alone would do nothing
            raise ValueError("Hide-and-Seek needs both `hide_patch` (pixels) and `hide_prob`, "
                             "or neither. Received: "
                             f"hide_patch={self.hide_patch!r}, hide_prob={self.hide_prob!r}")

    def get_config(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    # -- per example ---------------------------------------------------------
    def stage_size(self, image_size, input_shape=None):
        """Size of the uint8 images that the example step hands to the batch step."""
        if self.example == "center":
            return (self.resize, self.resize)
        if self.example == "none" and input_shape is not None:
            return tuple(input_shape[:2])
        return tuple(image_size)

    def window(self, shape, seed, image_size):
        """The crop window ``int32 [y, x, h, w]`` that the example step decodes (then
        resizes to ``stage_size``) from an image of ``shape = [height, width]``:
        ``center``: the centre square; ``scale``: the window that becomes a random
        ``image_size`` crop once the shorter side is rescaled to S ~ U{scale};
        ``inception``: a random-sized crop."""
        if self.example == "center":
            side = tf.reduce_min(shape)
            return tf.stack([(shape[0] - side) // 2, (shape[1] - side) // 2, side, side])
        if self.example == "scale":
            (lo, hi), (th, tw) = self.scale, image_size
            # one draw for S and the offset (each op here costs per image)
            shape = tf.cast(shape, tf.float32)
            u = tf.random.stateless_uniform([3], seed)
            s = tf.minimum(lo + tf.floor(u[0] * (hi - lo + 1)), hi)  # S ~ U{lo..hi}
            f = s / tf.reduce_min(shape)
            # at least one pixel: a tiny image (1x1) rescaled to S covers under half
            # a pixel of the window otherwise, and an empty window cannot be decoded
            hh = tf.clip_by_value(tf.round(th / f), 1.0, shape[0])
            ww = tf.clip_by_value(tf.round(tw / f), 1.0, shape[1])
            y = tf.floor(u[1] * (shape[0] - hh + 1))
            x = tf.floor(u[2] * (shape[1] - ww + 1))
            return tf.cast(tf.stack([y, x, hh, ww]), tf.int32)
        if self.example == "inception":
            begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
                tf.concat([shape, [1]], 0),
                tf.zeros([1, 0, 4]),
                seed=seed,
                min_object_covered=0.0,
                aspect_ratio_range=self.aspect,
                area_range=self.area,
                max_attempts=10,
                use_image_if_no_bounding_boxes=True,
            )
            return tf.concat([begin[:2], size[:2]], 0)
        raise ValueError(
            f"Policy {self.name!r} takes no crop window (example={self.example!r}).")

    def example_fn(self, image, seed, *, encoded, channels, image_size,
                   jpeg_only=False, dct_scaling=True):
        """One image (bytes or uint8 (H, W, C)) -> uint8 ``stage_size`` image.

        ``jpeg_only``: every encoded input is a JPEG (skips the format test).
        ``dct_scaling``: a JPEG crop window at least twice the output is decoded at
        1/2, 1/4 or 1/8 scale; pass False when no image can have such a window (its
        shorter side below twice the output, see :func:`needs_dct_scaling`), which
        saves the per-image control flow (5–8 % of the example step,
        ``benchmarks/pipeline_parts.py``)."""
        if self.example == "none":
            image = decode_image(image, channels) if encoded else image
            return _fit(image, image_size)
        out = self.stage_size(image_size)

        def window(shape):
            return self.window(shape, seed, image_size)

        if encoded:
            image = decode_and_crop(image, window, channels,
                                    min_size=out if dct_scaling else None,
                                    jpeg_only=jpeg_only)
        else:
            w = tf.cast(window(tf.shape(image)[:2]), tf.int32)
            image = tf.slice(image, [w[0], w[1], 0], [w[2], w[3], -1])
        return _resize(image, out, self._interpolation(seed))

    def _interpolation(self, seed):
        if not self.random_interpolation:
            return None
        return tf.random.stateless_uniform(
            [], ops.seed_for(seed, 12), 0, len(_INTERPOLATIONS), tf.int32)

    # -- per batch (compiled) ------------------------------------------------
    def batch_fn(self, images, seed, *, image_size, mean=None, pca=None):
        """uint8 ``(B, h0, w0, C)`` -> float32 ``(B, h, w, C)``. XLA-compilable."""
        x = images
        per_pixel = mean is not None and len(getattr(mean, "shape", ())) == 3
        crop_first = (self.random_crop and not self.pad and not per_pixel
                      and tuple(x.shape[1:3]) != tuple(image_size))
        if crop_first:  # cheaper on uint8; a mean RGB commutes with the crop
            x = ops.random_crop(x, image_size, seed)
        # The flip commutes with the cast, lighting and a mean RGB (per-image or
        # per-channel constants); on uint8 it moves a quarter of the bytes, with the
        # same batch bit for bit (not before photometric: its contrast step sums the
        # image, whose rounding depends on the order).
        flip_first = (self.flip and not self.pad and not per_pixel
                      and not self.photometric
                      and tuple(x.shape[1:3]) == tuple(image_size))
        if flip_first:
            x = ops.random_flip(x, seed)
        x = tf.cast(x, tf.float32)
        if self.example == "none":
            x = ops.pad_to(x, image_size)
        if self.photometric:
            x = ops.photometric(x, seed)
        if self.lighting and x.shape[-1] == 3:
            eigval, eigvec = pca
            x = ops.pca_lighting(x, eigval, eigvec, self.lighting, seed)
        x = ops.subtract_mean(x, mean)
        if self.pad:
            p = self.pad
            x = tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]])
        if tuple(x.shape[1:3]) != tuple(image_size):
            if self.random_crop:
                x = ops.random_crop(x, image_size, seed)
            else:
                x = ops.center_crop(x, image_size)
        if self.flip and not flip_first:
            x = ops.random_flip(x, seed)
        if self.hide_patch and self.hide_prob:
            x = ops.hide_patches(x, self.hide_patch, self.hide_prob, seed)
        return x


def needs_dct_scaling(max_short_side, policy, image_size):
    """Whether any crop window of ``policy`` can be twice its output size, given the
    largest shorter side of the source's images (None: unknown, so True). A window
    never exceeds the image's shorter side in both dimensions, so images whose shorter
    side is under twice the output never need it."""
    if max_short_side is None:
        return True
    out = policy.stage_size(image_size)
    return max_short_side >= 2 * min(out)


def _fit(image, size):
    return ops.pad_to(image, size)


def _resize(image, size, method_index=None):
    size = [int(size[0]), int(size[1])]
    if method_index is None:
        out = tf.image.resize(image, size, method="bilinear")
    else:
        out = tf.switch_case(method_index, [
            (lambda m=m: tf.cast(tf.image.resize(image, size, method=m), tf.float32))
            for m in _INTERPOLATIONS])
        out = tf.clip_by_value(out, 0.0, 255.0)  # bicubic overshoots
    out = tf.cast(out + 0.5, tf.uint8)  # round; bilinear stays within [0, 255]
    return tf.ensure_shape(out, size + [image.shape[-1]])


_POLICIES = {
    "alexnet": dict(example="center", image_size=(227, 227), resize=256,
                    random_crop=True, lighting=0.1),
    "vgg": dict(example="scale", image_size=(224, 224), scale=(256, 512),
                lighting=0.1),
    "googlenet": dict(example="inception", image_size=(224, 224),
                      random_interpolation=True, photometric=True),
    "resnet": dict(example="scale", image_size=(224, 224), scale=(256, 480),
                   lighting=0.1),
    "cifar": dict(example="none", image_size=(32, 32), pad=4, random_crop=True),
}


def list_policies():
    """Names accepted by :func:`get_policy`."""
    return sorted(_POLICIES)


def get_policy(name, **options):
    """The named paper policy, with fields overridden by ``options``.

    E.g. ``get_policy("vgg", scale=(384, 384))`` for single-scale S = 384, or
    ``get_policy("alexnet", image_size=(224, 224))`` for the paper's 224 crop.
    """
    if isinstance(name, Policy):
        return dataclasses.replace(name, **options) if options else name
    if name not in _POLICIES:
        raise ValueError(
            f"Unknown policy. Expected one of {list_policies()}. Received: name={name!r}"
        )
    fields = {f.name for f in dataclasses.fields(Policy)} - {"name"}
    for key in options:
        if key not in fields:
            raise ValueError(
                f"Unknown policy option; expected one of {sorted(fields)}. "
                f"Received: {key}={options[key]!r}"
            )
    if "scale" in options and isinstance(options["scale"], int):
        options["scale"] = (options["scale"], options["scale"])
    for key in ("image_size", "scale", "area", "aspect"):
        if key in options:
            options[key] = tuple(options[key])
    return Policy(name=name, **{**_POLICIES[name], **options})
