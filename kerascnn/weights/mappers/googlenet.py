"""BVLC's ``bvlc_googlenet.caffemodel`` into :func:`kerascnn.applications.GoogLeNet`,
with or without ``aux_logits`` (the auxiliary heads are in the file and are loaded).

The file is BVLC Caffe's replication of Szegedy et al. (2015), ``models/bvlc_googlenet``
in BVLC/caffe (``train_val.prototxt`` has the auxiliary heads ``loss1/*``,
``loss2/*``). Its net is the paper's (Table 1, 5×5 branches, LRN in the stem, the two
auxiliary classifiers) and ours, layer for layer; Caffe's names with "/" are ours
with "_" (``inception_3a/5x5_reduce`` → ``inception_3a_5x5_reduce``), except the
classifiers: ``loss1/conv``, ``loss1/fc``, ``loss1/classifier`` → ``aux1_conv``,
``aux1_fc``, ``aux1_predictions`` (``loss2`` → ``aux2``), ``loss3/classifier`` →
``predictions``. Its input is BGR, 0-255, minus (104, 117, 123) (BGR).

What the mapping folds (as for AlexNet, :mod:`kerascnn.weights.mappers.alexnet`):
BGR → RGB in ``conv1/7x7_s2``'s input channels; OIHW → HWIO; the auxiliary heads'
``fc`` reordered from Caffe's (C, H, W) flatten of their 4×4×128 map to Keras'
(H, W, C) (``loss3/classifier`` follows a 1×1 pool: nothing to reorder); Caffe's LRN
(k = 1, α = 1e-4 / 5, β = 0.75, n = 5) set on ``pool1_norm1`` and ``conv2_norm2`` and
kept in their config (the builder's default is AlexNet's k = 2, α = 1e-4).

Where the two nets compute the same thing in different ways, checked for 224×224:

- Caffe's stride-2 max pools (3×3, no padding) round their output size up; ours use
  "same" padding. On an even map H both give H/2 maps and the same windows (the
  extra window Caffe's ceil mode adds at the end is the one "same" pads at the end),
  and max ignores the padding in both. Every stride-2 pool of a 224×224 input (and of
  any multiple of 32) sees an even map (112, 56, 28, 14). On an odd map (inputs that
  are not multiples of 32, with ``include_top=False``) they differ: "same" gives one
  more row and column and shifts the windows by one.
- The inception pool branch (3×3/1, pad 1) is "same" padding in both.
- The auxiliary heads' 5×5/3 average pool: Caffe rounds up, Keras ("valid") down;
  on the 14×14 map of 4a and 4d both give 4×4 and every window is whole (divisor
  25).
- Caffe's final 7×7/1 average pool on the 7×7 map is our global average pool.
"""

from __future__ import annotations

from kerascnn.weights.mappers._common import CAFFE, check_origin
from kerascnn.weights.mappers.alexnet import (
    assign_plan,
    caffe_layers,
    require_layers,
    set_caffe_lrn,
)

NETWORK = "GoogLeNet"
# The inception modules of Table 1, as BVLC's file (``inception_3a`` ...) and our
# builder (``inception_3a_...``) both name them, in the net's order.
INCEPTION = ("3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b")
_BRANCHES = ("1x1", "3x3_reduce", "3x3", "5x5_reduce", "5x5", "pool_proj")


def _plan():
    """(Caffe layer, our layer, kind) in the net's order (kinds as in the AlexNet mapper)."""
    plan = [
        ("conv1/7x7_s2", "conv1_7x7_s2", "first"),
        ("conv2/3x3_reduce", "conv2_3x3_reduce", "conv"),
        ("conv2/3x3", "conv2_3x3", "conv"),
    ]
    for block in INCEPTION:
        for branch in _BRANCHES:
            plan.append((f"inception_{block}/{branch}", f"inception_{block}_{branch}", "conv"))
        aux = {"4a": 1, "4d": 2}.get(block)
        if aux is not None:
            plan += [
                (f"loss{aux}/conv", f"aux{aux}_conv", "conv"),
                (f"loss{aux}/fc", f"aux{aux}_fc", ("flat", f"aux{aux}_flatten")),
                (f"loss{aux}/classifier", f"aux{aux}_predictions", "fc"),
            ]
    plan.append(("loss3/classifier", "predictions", "fc"))
    return tuple(plan)


PLAN = _plan()
LRN_LAYERS = {"pool1/norm1": "pool1_norm1", "conv2/norm2": "conv2_norm2"}


def assign(model, wf, *, origin):
    """Sets ``model`` (a ``GoogLeNet()``, auxiliary heads or not) from BVLC's file ``wf``."""
    check_origin(origin, (CAFFE,))
    layers = caffe_layers(wf, NETWORK)
    require_layers(wf, layers, NETWORK, ("conv1/7x7_s2", "inception_3a/1x1"))
    assign_plan(model, wf, layers, PLAN, NETWORK)
    set_caffe_lrn(model, wf, LRN_LAYERS, NETWORK)
