"""VGG's warm start (Simonyan & Zisserman 2015, §3.1).

"We began with training the configuration A, shallow enough to be trained with
random initialisation. Then, when training deeper architectures, we initialised the
first four convolutional layers and the last three fully-connected layers with the
layers of net A (the intermediate layers were initialised randomly)."
"""

from __future__ import annotations

import keras

__all__ = ["warm_start_from"]

_FC = ("fc6", "fc7", "fc8")


def _convs(model):
    return [layer for layer in model._flatten_layers(include_self=False)
            if isinstance(layer, keras.layers.Conv2D)]


def warm_start_from(model, source, *, num_convs=4, fc_names=_FC) -> list[str]:
    """Copies the first ``num_convs`` conv layers (in graph order) and the layers
    named ``fc_names`` from ``source`` (a model or a ``.keras`` path) into ``model``;
    returns the names of the layers copied. Shapes must match."""
    if isinstance(source, str):
        import kerascnn.layers  # noqa: F401  (registers custom layers)

        source = keras.saving.load_model(source, compile=False)
    copied = []
    pairs = list(zip(_convs(source)[:num_convs], _convs(model)[:num_convs]))
    if len(pairs) < num_convs:
        raise ValueError(f"`init_from` needs {num_convs} conv layers in both models. "
                         f"Received: a model with {len(_convs(source))}")
    for name in fc_names:
        try:
            pairs.append((source.get_layer(name), model.get_layer(name)))
        except ValueError:
            raise ValueError(f"`init_from`: no layer named {name!r} in both models. "
                             f"Received: init_from={getattr(source, 'name', source)!r}") from None
    for src, dst in pairs:
        weights = src.get_weights()
        shapes = [tuple(w.shape) for w in dst.get_weights()]
        if [tuple(w.shape) for w in weights] != shapes:
            raise ValueError(
                f"`init_from`: layer {src.name} has weights of shapes "
                f"{[tuple(w.shape) for w in weights]}, {dst.name} needs {shapes}.")
        dst.set_weights(weights)
        copied.append(dst.name)
    return copied
