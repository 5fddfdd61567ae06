"""VGG's warm start (Simonyan & Zisserman 2015, §3.1).

"We began with training the configuration A, shallow enough to be trained with
random initialisation. Then, when training deeper architectures, we initialised the
first four convolutional layers and the last three fully-connected layers with the
layers of net A (the intermediate layers were initialised randomly)."

"The first four convolutional layers" are net A's: ``block1_conv1``, ``block2_conv1``,
``block3_conv1`` and ``block3_conv2``. Each initialises the layer of the *same name*
in the deeper net, the only reading under which the shapes agree (D's own first four,
``block1_conv1`` … ``block2_conv2``, take 3→64, 64→64, 64→128, 128→128 channels; A's
take 3→64, 64→128, 128→256, 256→256). D's ``block1_conv2``, ``block2_conv2`` and
``block3_conv3`` stay random, as the paper's "intermediate layers" do.
"""

from __future__ import annotations

import keras

__all__ = ["warm_start_from"]

_FC = ("fc6", "fc7", "fc8")


def _convs(model):
    return [layer for layer in model._flatten_layers(include_self=False)
            if isinstance(layer, keras.layers.Conv2D)]


def _layer(model, name, source):
    try:
        return model.get_layer(name)
    except ValueError:
        raise ValueError(f"`init_from`: no layer named {name!r} in both models. "
                         f"Received: init_from={getattr(source, 'name', source)!r}") from None


def warm_start_from(model, source, *, num_convs=4, fc_names=_FC) -> list[str]:
    """Copies the first ``num_convs`` conv layers of ``source`` (a model or a
    ``.keras`` path; in graph order) and the layers named ``fc_names`` into the
    layers of ``model`` with the same names; returns the names of the layers
    copied. Names and shapes must match."""
    if isinstance(source, str):
        import kerascnn.layers  # noqa: F401  (registers custom layers)

        source = keras.saving.load_model(source, compile=False)
    convs = _convs(source)[:num_convs]
    if len(convs) < num_convs:
        raise ValueError(f"`init_from` needs {num_convs} conv layers. "
                         f"Received: a model with {len(_convs(source))}")
    names = [layer.name for layer in convs] + list(fc_names)
    pairs = [(_layer(source, name, source), _layer(model, name, source)) for name in names]
    for src, dst in pairs:
        weights = src.get_weights()
        shapes = [tuple(w.shape) for w in dst.get_weights()]
        if [tuple(w.shape) for w in weights] != shapes:
            raise ValueError(
                f"`init_from`: layer {src.name} has weights of shapes "
                f"{[tuple(w.shape) for w in weights]}, {dst.name} needs {shapes}.")
    copied = []
    for src, dst in pairs:
        dst.set_weights(src.get_weights())
        copied.append(dst.name)
    return copied
