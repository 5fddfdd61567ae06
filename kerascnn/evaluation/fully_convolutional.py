"""Fully-convolutional conversion of AlexNet and VGG for dense evaluation.

VGG (Simonyan & Zisserman 2015, §3.2): "the fully-connected layers are first converted to
convolutional layers (the first FC layer to a 7x7 conv. layer, the last two FC layers to
1x1 conv. layers). The resulting fully-convolutional net is then applied to the whole
(uncropped) image. The result is a class score map ... spatially averaged (sum-pooled)".
AlexNet's fc6 becomes a 6x6 conv the same way.

:class:`DenseAsConv` holds a *reference* to the trained ``keras.layers.Dense`` and
convolves with its kernel reshaped on the fly, so the converted network reads the very same
variables as the original: no weights are copied, nothing has to be kept in sync. This
works because ``Flatten`` on NHWC features orders the inputs (row, column, channel), the
same order as a ``(kh, kw, C, units)`` conv kernel reshaped to ``(kh*kw*C, units)``.

The head is found by the layer names of ``kerascnn.applications`` (``flatten`` -> ``fc6``
-> ``drop6`` -> ``fc7`` -> ``drop7`` -> ``fc8``); the input of ``flatten`` is the last
convolutional feature map. ``fc8``'s activation (softmax) is applied at every location and
the posterior map is averaged spatially.
"""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["DenseAsConv", "to_fully_convolutional", "has_convertible_head"]

_HEAD = ("flatten", "fc6", "fc7", "fc8")


def _layer(model, name):
    try:
        return model.get_layer(name)
    except ValueError:
        return None


def has_convertible_head(model) -> bool:
    """True when ``model`` has the AlexNet/VGG head (``flatten``, ``fc6``, ``fc7``, ``fc8``)."""
    return all(_layer(model, n) is not None for n in _HEAD) and isinstance(model, keras.Model)


@keras.saving.register_keras_serializable(package="kerascnn")
class DenseAsConv(keras.layers.Layer):
    """A trained ``Dense`` layer applied as a valid, stride-1 convolution.

    Args:
        dense: the built ``keras.layers.Dense`` whose kernel ``(kh*kw*C, units)`` and bias
            are used (by reference: the same variables).
        kernel_size: ``(kh, kw)`` of the convolution (6x6 for AlexNet's fc6, 7x7 for VGG's,
            1x1 for fc7 and fc8).
    """

    def __init__(self, dense, kernel_size=(1, 1), **kwargs):
        if isinstance(dense, dict):  # from_config
            dense = keras.saving.deserialize_keras_object(dense)
        if not isinstance(dense, keras.layers.Dense):
            raise ValueError(f"`dense` must be a keras.layers.Dense layer. Received: dense={dense!r}")
        kwargs.setdefault("dtype", dense.dtype_policy)
        super().__init__(**kwargs)
        self.dense = dense
        self.kernel_size = (int(kernel_size[0]), int(kernel_size[1])) if not isinstance(kernel_size, int) else (kernel_size, kernel_size)

    def build(self, input_shape):
        kh, kw = self.kernel_size
        channels = input_shape[-1]
        if not self.dense.built:
            self.dense.build((None, kh * kw * channels))
        fan_in = self.dense.kernel.shape[0]
        if fan_in != kh * kw * channels:
            raise ValueError(
                f"Dense layer '{self.dense.name}' has {fan_in} inputs, which is not "
                f"{kh}x{kw}x{channels}. Received: kernel_size={self.kernel_size}"
            )
        self.built = True

    def call(self, inputs):
        kh, kw = self.kernel_size
        channels = inputs.shape[-1]
        kernel = ops.reshape(ops.cast(self.dense.kernel, self.compute_dtype), (kh, kw, channels, self.dense.units))
        outputs = ops.conv(inputs, kernel, strides=1, padding="valid", data_format="channels_last")
        if self.dense.use_bias:
            outputs = outputs + ops.cast(self.dense.bias, self.compute_dtype)
        if self.dense.activation is not None:
            outputs = self.dense.activation(outputs)
        return outputs

    def compute_output_shape(self, input_shape):
        kh, kw = self.kernel_size
        h = None if input_shape[1] is None else input_shape[1] - kh + 1
        w = None if input_shape[2] is None else input_shape[2] - kw + 1
        return (input_shape[0], h, w, self.dense.units)

    def get_config(self):
        config = super().get_config()
        config.update({"dense": keras.saving.serialize_keras_object(self.dense), "kernel_size": self.kernel_size})
        return config


def _trunk_on(model, features, inputs):
    """Re-apply the layers from the model's input to ``features`` on ``inputs`` of any
    spatial size (the same layer objects, hence the same variables)."""
    trunk = keras.Model(model.inputs, features, name=f"{model.name}_trunk")
    trunk = keras.models.clone_model(
        trunk, input_tensors=[inputs] if isinstance(trunk.input, list) else inputs, clone_function=lambda layer: layer
    )
    return trunk.outputs[0]


def to_fully_convolutional(model, *, average=True, name=None):
    """Convert an AlexNet/VGG model into a fully-convolutional one sharing its weights.

    Args:
        model: a functional ``keras.Model`` with the ``flatten`` -> ``fc6`` -> ``drop6`` ->
            ``fc7`` -> ``drop7`` -> ``fc8`` head of ``kerascnn.applications``.
        average: if True (default) the output is the class posterior map averaged over
            space, ``(batch, classes)``; if False, the map itself ``(batch, h, w, classes)``.
        name: name of the new model (default ``<model.name>_fcn``).

    Returns:
        A ``keras.Model`` taking images of any size (at least the training size). At the
        training size its output equals ``model``'s. The model's trained variables are
        used directly (not copied): later training of ``model`` shows in the result.
    """
    if not has_convertible_head(model):
        raise ValueError(
            "`model` has no fully-connected head to convert: expected layers named "
            f"{list(_HEAD)} (AlexNet/VGG of kerascnn.applications). "
            f"Received: model={getattr(model, 'name', model)!r}"
        )
    flatten = model.get_layer("flatten")
    features = flatten.input
    if isinstance(features, (list, tuple)):
        features = features[0]
    fh, fw, fc = features.shape[1:]
    if fh is None or fw is None:
        raise ValueError(
            "The input of `flatten` must have a static spatial size (the training size). "
            f"Received: model={model.name!r} with features of shape {features.shape}"
        )
    inputs = keras.Input((None, None, model.inputs[0].shape[-1]), name="image")
    x = _trunk_on(model, features, inputs)
    x = DenseAsConv(model.get_layer("fc6"), (fh, fw), name="fc6_conv")(x)
    if _layer(model, "drop6") is not None:
        x = model.get_layer("drop6")(x)
    x = DenseAsConv(model.get_layer("fc7"), (1, 1), name="fc7_conv")(x)
    if _layer(model, "drop7") is not None:
        x = model.get_layer("drop7")(x)
    x = DenseAsConv(model.get_layer("fc8"), (1, 1), name="fc8_conv")(x)
    if average:
        x = keras.layers.GlobalAveragePooling2D(name="score_average", dtype=model.get_layer("fc8").dtype_policy)(x)
    return keras.Model(inputs, x, name=name or f"{model.name}_fcn")
