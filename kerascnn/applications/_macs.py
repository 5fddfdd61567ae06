"""An analytic multiply-accumulate counter over a built model's conv and dense layers.

MACs of a ``Conv2D`` = H_out · W_out · k_h · k_w · (C_in / groups) · C_out; of a
``Dense`` = (positions) · units_in · units_out. Batch norm, pooling, activations,
LRN and additions are not counted, as in the papers' "multiply-adds" (ResNet,
Table 1, "FLOPs" = multiply-adds). Nested models are walked.
"""

from __future__ import annotations

import math

import keras


def _layers(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _layers(layer)
        else:
            yield layer


def _shape(tensor):
    return tuple(tensor.shape)


def count_macs(model: keras.Model) -> int:
    """Multiply-accumulates for one example through ``model`` (static input size).

    A layer called several times (shared) is counted once per call.
    """
    total = 0
    for layer in _layers(model):
        if isinstance(layer, keras.layers.Conv2D):
            kh, kw = layer.kernel_size
            for node in layer._inbound_nodes:
                c_in = _shape(node.input_tensors[0])[-1]
                _, h, w, c_out = _shape(node.output_tensors[0])
                if h is None or w is None:
                    raise ValueError(
                        "count_macs needs a static input size. "
                        f"Received: layer {layer.name} output shape {(h, w, c_out)}"
                    )
                total += h * w * kh * kw * (c_in // layer.groups) * c_out
        elif isinstance(layer, keras.layers.Dense):
            for node in layer._inbound_nodes:
                in_shape = _shape(node.input_tensors[0])
                positions = math.prod(in_shape[1:-1]) if len(in_shape) > 2 else 1
                total += positions * in_shape[-1] * layer.units
    return int(total)
