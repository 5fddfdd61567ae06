"""Batch normalisation with TensorFlow's fused kernel (Ioffe & Szegedy, 2015).

``keras.layers.BatchNormalization`` in Keras 3 computes the batch moments and the
normalisation as separate elementwise ops, in float32 even under a mixed-precision
policy. For the small ResNets (16-64 channels) that is most of a CPU training step:
CIFAR ResNet-20 on 28x28 inputs trains ~1.5x faster per step with TensorFlow's fused
op (``FusedBatchNormV3``, oneDNN on CPUs, cuDNN on GPUs), measured by
``benchmarks/train_step.py``.
"""

from __future__ import annotations

import keras

# TensorFlow's fused kernels require epsilon >= 1.001e-5 (keras.applications'
# ResNets use exactly this value for that reason).
MIN_FUSED_EPSILON = 1.001e-5


@keras.saving.register_keras_serializable(package="kerascnn")
class BatchNormalization(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` that runs TensorFlow's fused kernel.

    Same arguments, weights, config and arithmetic as the Keras layer: in training
    the batch mean and *biased* batch variance normalise the batch and update the
    moving averages (``moving = moving * momentum + batch * (1 - momentum)``); in
    inference the moving statistics are used; statistics are computed in float32
    whatever the input dtype. The fused op is used on the TensorFlow backend for
    channels-last 4-D inputs without a mask, renorm or cross-replica
    synchronisation and with ``epsilon >= 1.001e-5``; anything else (another
    backend, other ranks or axes) runs Keras' own implementation, so models stay
    backend-agnostic.
    """

    def _fusable(self, inputs, mask):
        if keras.backend.backend() != "tensorflow" or mask is not None:
            return False
        if self.renorm or getattr(self, "synchronized", False):
            return False
        rank = len(inputs.shape)
        axis = self.axis if isinstance(self.axis, int) else None
        if rank != 4 or axis not in (-1, 3):
            return False
        if not (self.scale and self.center) or self.epsilon < MIN_FUSED_EPSILON:
            return False
        dtype = keras.backend.standardize_dtype(inputs.dtype)
        return dtype in ("float32", "bfloat16", "float16")

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        gamma = tf.cast(self.gamma, tf.float32)
        beta = tf.cast(self.beta, tf.float32)
        if training and self.trainable:
            outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
                inputs, gamma, beta, epsilon=self.epsilon, data_format="NHWC",
                is_training=True)
            # The fused op returns the unbiased (n - 1) variance; Keras' moving
            # average takes the biased one, which normalised the batch.
            n = tf.cast(tf.reduce_prod(tf.shape(inputs)[:-1]), tf.float32)
            variance = variance * ((n - 1.0) / tf.maximum(n, 1.0))
            m = self.momentum
            self.moving_mean.assign(
                tf.cast(self.moving_mean, tf.float32) * m + mean * (1.0 - m))
            self.moving_variance.assign(
                tf.cast(self.moving_variance, tf.float32) * m + variance * (1.0 - m))
        else:
            outputs, _, _ = tf.compat.v1.nn.fused_batch_norm(
                inputs, gamma, beta,
                mean=tf.cast(self.moving_mean, tf.float32),
                variance=tf.cast(self.moving_variance, tf.float32),
                epsilon=self.epsilon, data_format="NHWC", is_training=False)
        return tf.cast(outputs, self.compute_dtype)
