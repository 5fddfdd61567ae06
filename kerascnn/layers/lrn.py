"""Local response normalisation (Krizhevsky et al., 2012, §3.3)."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kerascnn")
class LocalResponseNormalization(keras.layers.Layer):
    """Local response normalisation across channels, as in the AlexNet paper.

    ``b[..., c] = a[..., c] / (k + alpha * sum_{j=c-r}^{c+r} a[..., j]**2) ** beta``

    with ``r = depth_radius`` (the window holds ``n = 2r + 1`` channels, clipped at
    the edges), ``k = bias``. The defaults are the paper's (n = 5, k = 2, α = 1e-4,
    β = 0.75).

    **α is NOT divided by n.** This is the paper's formula and the one
    ``tf.nn.local_response_normalization`` computes. Caffe's ``LRN`` layer and
    PyTorch's ``nn.LocalResponseNorm`` divide α by n, so porting their
    hyper-parameters needs ``alpha=alpha_caffe / n``.

    Input is channels-last (NHWC or any rank with channels on the last axis). The sum
    is computed in float32 even under a mixed-precision policy (squares of float16
    activations overflow easily); the output is cast back to the layer's compute
    dtype.

    Written with ``keras.ops`` only, so it runs on every Keras backend.
    """

    def __init__(self, depth_radius=2, bias=2.0, alpha=1e-4, beta=0.75, **kwargs):
        super().__init__(**kwargs)
        if int(depth_radius) != depth_radius or depth_radius < 0:
            raise ValueError(
                "`depth_radius` must be a non-negative integer. "
                f"Received: depth_radius={depth_radius}"
            )
        self.depth_radius = int(depth_radius)
        self.bias = float(bias)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.supports_masking = True

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        r = self.depth_radius
        squares = ops.square(x)
        channels = squares.shape[-1]
        if r == 0:
            window = squares
        else:
            pad = [[0, 0]] * (len(squares.shape) - 1) + [[r, r]]
            padded = ops.pad(squares, pad)
            window = padded[..., 0:channels]
            for i in range(1, 2 * r + 1):
                window = window + padded[..., i : i + channels]
        denom = ops.power(self.bias + self.alpha * window, self.beta)
        return ops.cast(x / denom, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            depth_radius=self.depth_radius,
            bias=self.bias,
            alpha=self.alpha,
            beta=self.beta,
        )
        return config
