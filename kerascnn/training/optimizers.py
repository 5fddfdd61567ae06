"""SGD with momentum and the papers' L2 weight decay.

All four papers train with SGD, momentum 0.9 and "weight decay" in the sense of
Krizhevsky et al. (2012, §5): the update is

    v ← μ·v − ε·(∂L/∂w + λ·w),    w ← w + v

i.e. the gradient of every weight gains λ·w (the gradient of an L2 penalty
λ/2·‖w‖²) *before* momentum. How Keras' options map to it:

- ``keras.optimizers.SGD(weight_decay=λ)`` is *decoupled* decay (Loshchilov &
  Hutter): it shrinks ``w ← w − ε·λ·w`` outside the momentum buffer. With momentum μ
  the papers' decay accumulates in ``v`` and acts about ``1/(1−μ)`` = 10× more
  strongly in the steady state, so the same λ is not the same recipe.
- ``kernel_regularizer=keras.regularizers.L2(λ/2)`` on every layer is the papers'
  rule exactly (the gradient of λ/2·w² is λ·w), but it changes the models, misses
  biases and BN parameters unless each is given one, and adds the penalty to the
  reported loss.

:class:`L2SGD` does the papers' rule for any model: ``update_step`` adds
``λ·w`` to the gradient of each decayed variable, then runs Keras' SGD (momentum,
Nesterov, EMA/Polyak averaging, loss scaling and distribution unchanged). The
reported loss is the pure cross-entropy, as in the papers' logs.

Fine-tuning (``head=[...]``): two optimizer variables, ``head_scale`` and
``body_scale``, multiply the learning rate of the variables whose path matches
``head`` and of all others. :class:`kerascnn.training.callbacks`' fine-tuning
callback sets them at the start of every epoch from the epoch number alone (new head
only: 1 and 0; then the whole net: both the lower factor), so a resumed run needs no
state of its own. A learning rate of 0 keeps a variable exactly where it is (momentum
starts at 0 and stays 0), which a ``layer.trainable = False`` set after ``compile``
would not do in a traced train step.
"""

from __future__ import annotations

import re

import keras
from keras import ops

__all__ = ["L2SGD", "build_optimizer"]


@keras.saving.register_keras_serializable(package="kerascnn")
class L2SGD(keras.optimizers.SGD):
    """``keras.optimizers.SGD`` whose gradients gain ``l2 · w`` (coupled L2 decay).

    Args:
      learning_rate, momentum, nesterov: as ``keras.optimizers.SGD``.
      l2: λ, the papers' weight decay (AlexNet/VGG 5e-4, ResNet 1e-4).
      l2_exclude: regular expressions; variables whose ``path`` matches one are not
        decayed (e.g. ``["bias", "gamma", "beta"]``). Default: every trainable
        variable, as the papers' formula.
      **kwargs: other ``keras.optimizers.Optimizer`` arguments (``use_ema``,
        ``ema_momentum`` for GoogLeNet's Polyak averaging, ...). ``weight_decay``
        (decoupled) is refused: use ``l2``.
    """

    def __init__(self, learning_rate=0.01, momentum=0.9, nesterov=False, l2=0.0,
                 l2_exclude=(), head=(), **kwargs):
        if kwargs.get("weight_decay"):
            raise ValueError(
                "L2SGD applies the papers' coupled L2 decay via `l2`; Keras' "
                "decoupled `weight_decay` would apply a second, different decay. "
                f"Received: weight_decay={kwargs['weight_decay']!r}")
        kwargs.pop("weight_decay", None)
        if not isinstance(l2, (int, float)) or l2 < 0:
            raise ValueError(f"`l2` must be a float >= 0. Received: l2={l2!r}")
        super().__init__(learning_rate=learning_rate, momentum=float(momentum),
                         nesterov=nesterov, **kwargs)
        self.l2 = float(l2)
        self.l2_exclude = list(l2_exclude or ())
        self._l2_pattern = (re.compile("|".join(self.l2_exclude))
                            if self.l2_exclude else None)
        # Fine-tuning: regular expressions of the new head's variable paths.
        self.head = list(head or ())
        self._head_pattern = re.compile("|".join(self.head)) if self.head else None

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        if self._head_pattern is not None:
            self.head_scale = self.add_variable((), initializer="ones", name="head_scale")
            self.body_scale = self.add_variable((), initializer="ones", name="body_scale")

    def in_head(self, variable) -> bool:
        """Whether ``variable`` belongs to the fine-tuning head."""
        path = getattr(variable, "path", None) or variable.name
        return self._head_pattern is not None and self._head_pattern.search(path) is not None

    def set_scales(self, head, body):
        """The learning-rate multipliers of the head's and of the other variables."""
        self.head_scale.assign(float(head))
        self.body_scale.assign(float(body))

    def decays(self, variable) -> bool:
        """Whether ``variable`` gets the L2 term."""
        if not self.l2:
            return False
        path = getattr(variable, "path", None) or variable.name
        return self._l2_pattern is None or self._l2_pattern.search(path) is None

    def update_step(self, gradient, variable, learning_rate):
        if self.decays(variable):
            gradient = ops.add(
                ops.cast(gradient, variable.dtype),
                ops.multiply(ops.cast(self.l2, variable.dtype), variable))
        if self._head_pattern is not None:
            scale = self.head_scale if self.in_head(variable) else self.body_scale
            learning_rate = ops.multiply(ops.cast(learning_rate, variable.dtype),
                                         ops.cast(scale, variable.dtype))
        super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        config = super().get_config()
        config.update({"l2": self.l2, "l2_exclude": list(self.l2_exclude)})
        if self.head:
            config["head"] = list(self.head)
        return config


def build_optimizer(config, head=()) -> L2SGD:
    """The optimizer of a recipe's ``[optimizer]`` section (``head``: the variable
    path patterns of a fine-tuning run's new head, see the module doc)."""
    kwargs = {"head": list(head)} if head else {}
    if config.ema:
        kwargs.update(use_ema=True, ema_momentum=float(config.ema))
    return L2SGD(learning_rate=float(config.learning_rate), momentum=float(config.momentum),
                 nesterov=bool(config.nesterov), l2=float(config.weight_decay),
                 l2_exclude=list(config.decay_exclude), **kwargs)
