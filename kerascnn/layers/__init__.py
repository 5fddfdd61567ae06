"""kerascnn.layers: the layers the papers need and Keras does not ship.

- :class:`LocalResponseNormalization` (AlexNet §3.3; GoogLeNet's stem; VGG A-LRN).
- :class:`ZeroPadShortcut`, the ResNet paper's parameter-free option-A shortcut.
- :class:`BatchNormalization`, Keras' layer running TensorFlow's fused kernel on the
  TensorFlow backend (~1.5x faster ResNet training steps on CPU), Keras' own elsewhere.
- :class:`AuxiliaryLossModel`, a functional model whose auxiliary classifiers add
  ``aux_loss_weight * (aux_1 + aux_2 + ...)`` to the compiled loss during ``fit``
  while its output is always the main head (GoogLeNet §5).

All are written with ``keras.ops`` and registered for serialisation under the
``kerascnn`` package, so ``.keras`` files load after ``import kerascnn.layers``.
"""

from kerascnn.layers.auxiliary import AuxiliaryLossModel
from kerascnn.layers.batch_norm import BatchNormalization
from kerascnn.layers.lrn import LocalResponseNormalization
from kerascnn.layers.shortcut import ZeroPadShortcut

__all__ = ["AuxiliaryLossModel", "BatchNormalization", "LocalResponseNormalization", "ZeroPadShortcut"]
