"""VGG scaled to small images: Simonyan & Zisserman, "Very Deep Convolutional
Networks for Large-Scale Image Recognition", ICLR 2015, Table 1, at the size a
2-core CPU trains (the ``kerascnn reproduce vgg`` study,
:mod:`kerascnn.reproduce.vgg_studies`).

The configurations A, A-LRN, B, C, D, E are Table 1's, from the same table and
constructor as the full-size nets (:data:`kerascnn.applications.vgg.CONFIGS`,
:func:`kerascnn.applications.vgg.build`): the same conv layers per stage, C's 1×1
convs, A-LRN's LRN after the first conv, five 2×2/2 max pools, the head ``flatten fc6
drop6 fc7 drop7 fc8`` (what the dense evaluation converts). Where they depart from the
paper's nets:

- widths: the first stage has ``width`` filters (default 8; the paper's 64) and the
  others in proportion (8-16-32-64-64 for the paper's 64-128-256-512-512); fc6/fc7
  have ``fc_width`` units (default 64; the paper's 4096);
- input 32×32 (the paper's 224): the five pools end at 1×1, so fc6 sees a
  1×1×(8·width) map (the paper's 7×7×512);
- initialisation: Glorot & Bengio (2010)'s uniform for every kernel
  ("glorot_uniform", Keras' default), zero biases. The paper initialises A from
  N(0, 1e-2) and the deeper nets from a trained A, and notes after submission that
  Glorot & Bengio's random initialisation trains them without pre-training (§3.1);
  at 8 filters a layer N(0, 1e-2) shrinks the signal a hundredfold per layer.

:func:`params` counts their trainable weights without building them (the study's
outputs print them beside the paper's: :data:`kerascnn.reproduce.vgg_studies.SCALED_PARAMS`).
"""

from __future__ import annotations

from kerascnn.applications import _common, vgg
from kerascnn.applications.registry import ModelInfo, register_model

__all__ = ["ScaledVGG", "DEFAULT_NAMES", "params"]

DEFAULT_SIZE = (32, 32)
DEFAULT_WIDTH = 8
DEFAULT_FC_WIDTH = 64
DEFAULT_NAMES = {c: f"scaled_{n}" for c, n in vgg._DEFAULT_NAMES.items()}


def ScaledVGG(
    config="D",
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    width=DEFAULT_WIDTH,
    fc_width=DEFAULT_FC_WIDTH,
    dropout=0.5,
    kernel_initializer="glorot_uniform",
    name=None,
):
    """A VGG configuration of Table 1 (Simonyan & Zisserman, 2015) scaled to 32×32
    images: narrower convs and fc layers (the module docstring says how and why).

    Args:
        config: "A", "A-LRN", "B", "C", "D" or "E".
        include_top: include ``flatten fc6 drop6 fc7 drop7 fc8``; fc6 is sized for
            the 1×1 map of a 32×32 input, so ``include_top=True`` needs exactly that
            size (others: ``include_top=False`` or ``kerascnn.evaluation``'s
            fully-convolutional conversion).
        weights: None (random initialisation) or the path of a Keras weights file: no
            publisher has weights of these networks.
        input_tensor: optional Keras tensor to use as the input.
        input_shape: (H, W, C), C in {1, 3}; default (32, 32, 3); at least 32×32.
        pooling: with ``include_top=False``: None (the last pool's map), "avg", "max".
        classes: number of classes (default 10).
        classifier_activation: activation of fc8 (None gives logits).
        width: filters of the first stage (the paper's 64); stage k has
            ``width * min(2**(k-1), 8)``.
        fc_width: units of fc6 and fc7 (the paper's 4096).
        dropout: dropout rate after fc6 and fc7 (the paper's 0.5).
        kernel_initializer: of every conv and fc kernel (default "glorot_uniform";
            None: the paper's N(0, 1e-2)).
        name: model name (default ``scaled_vgg11``, ``scaled_vgg11_lrn``,
            ``scaled_vgg13``, ``scaled_vgg16c``, ``scaled_vgg16``, ``scaled_vgg19``).

    Returns:
        A functional ``keras.Model``.
    """
    _common.check_positive("width", width)
    _common.check_positive("fc_width", fc_width)
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout!r}")
    return vgg.build(
        config, include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name, width=width,
        fc_width=fc_width, dropout=float(dropout), default_size=DEFAULT_SIZE,
        kernel_initializer=kernel_initializer, default_names=DEFAULT_NAMES,
    )


def params(config, *, width=DEFAULT_WIDTH, fc_width=DEFAULT_FC_WIDTH, classes=10,
           channels=1) -> int:
    """Trainable weights of ``ScaledVGG(config, ...)`` at 32×32 (without building it):
    each conv k·k·c_in·c_out + c_out, the head (8·width)·fc + fc, fc·fc + fc,
    fc·classes + classes."""
    total, c_in = 0, channels
    for item in vgg.CONFIGS[config]:
        if item in ("M", "LRN"):
            continue
        kernel, filters = (1, item[1]) if isinstance(item, tuple) else (3, item)
        c_out = vgg.stage_width(filters, width)
        total += kernel * kernel * c_in * c_out + c_out
        c_in = c_out
    return (total + c_in * fc_width + fc_width + fc_width * fc_width + fc_width
            + fc_width * classes + classes)


register_model(ModelInfo(
    name="scaled_vgg",
    builder=ScaledVGG,
    family="vgg_scaled",
    input_shape=(*DEFAULT_SIZE, 3),
    classes=10,
    params=params("D", channels=3),
    macs=5_096_064,
    paper_results={},
    recipe="scaled_vgg_cifar10",
    description=f"VGG configuration D scaled to 32x32 (width {DEFAULT_WIDTH}, fc "
                f"{DEFAULT_FC_WIDTH}); config= A, A-LRN, B, C, D, E",
))
