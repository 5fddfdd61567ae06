"""The parameter-free shortcut of the ResNet paper (He et al., 2016, option A)."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kerascnn")
class ZeroPadShortcut(keras.layers.Layer):
    """Identity shortcut with spatial subsampling and zero-padded extra channels.

    Option (A) of He et al. (2016), §3.3: "the shortcut still performs identity
    mapping, with extra zero entries padded for increasing dimensions"; when the
    feature maps halve, the identity is taken with stride 2 (every second row and
    column, as a 1×1 stride-2 sampling). The new channels are appended after the
    existing ones (the paper does not say where; some CIFAR ports pad on both sides,
    which only permutes channels). No parameters. Channels-last input.

    Args:
        filters: number of output channels (>= input channels).
        strides: spatial subsampling factor (1 or 2 in the ResNets).
    """

    def __init__(self, filters, strides=1, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.strides = int(strides)
        if self.strides < 1:
            raise ValueError(f"`strides` must be >= 1. Received: strides={strides}")

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is not None and channels > self.filters:
            raise ValueError(
                "ZeroPadShortcut cannot reduce channels: input has "
                f"{channels} channels. Received: filters={self.filters}"
            )

    def call(self, inputs):
        x = inputs
        if self.strides > 1:
            x = x[:, :: self.strides, :: self.strides, :]
        extra = self.filters - x.shape[-1]
        if extra > 0:
            x = ops.pad(x, [[0, 0], [0, 0], [0, 0], [0, extra]])
        return x

    def compute_output_shape(self, input_shape):
        def sub(d):
            return None if d is None else (d + self.strides - 1) // self.strides

        return (input_shape[0], sub(input_shape[1]), sub(input_shape[2]), self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, strides=self.strides)
        return config
