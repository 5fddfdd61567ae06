"""A functional model whose auxiliary classifiers add to the training loss.

GoogLeNet (Szegedy et al., 2015, §5) trains with two auxiliary classifiers whose
losses are "added to the total loss of the network with a discount weight (0.3)"
and which are "discarded at inference time". This module gives that behaviour to any
functional graph without changing the model's output type: the model always returns
the main head's output (one tensor), in training and at inference, so
``compile(optimizer, loss, metrics)``, ``fit`` on plain ``(x, y)``, ``predict``,
``evaluate`` and export behave exactly as for any single-output Keras model.
(torchvision returns a namedtuple in training mode instead; that is what we avoid.)
"""

from __future__ import annotations

import threading

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kerascnn")
class AuxiliaryLossModel(keras.Model):
    """Functional model ``inputs -> main_output`` with auxiliary heads for training.

    The functional graph of this model is the inference graph (``inputs`` ->
    ``outputs``): ``model.outputs``, ``summary()``, ``predict``, ``evaluate``,
    ``model(x, training=False)`` and exports see the main head only, and run neither
    the auxiliary heads nor (at inference) dropout.

    When called with ``training=True`` (which ``fit`` does), the model runs a second
    functional graph sharing the same layers, ``inputs -> [main, *aux_outputs]``,
    returns ``main`` and keeps the auxiliary predictions for ``compute_loss``, which
    adds ``aux_loss_weight * sum(loss(y, aux_i))`` to the compiled loss, computed
    with the compiled loss function (and loss weights) itself. Metrics are computed on
    the main head only. The stash lives for one trace: the training step of the
    TensorFlow and JAX trainers calls the model and ``compute_loss`` in the same
    traced function (per replica under ``tf.distribute``; the stash is thread-local
    because MirroredStrategy traces each replica in its own thread).

    Args:
        inputs: the functional inputs.
        outputs: the main head output (one tensor).
        aux_outputs: list of auxiliary head outputs, same shape as ``outputs``,
            computed from the same ``inputs``.
        aux_loss_weight: discount weight of the auxiliary losses (0.3 in the paper).
        name: model name.

    ``with_aux_outputs()`` returns the functional model
    ``inputs -> [main, *aux_outputs]`` (shared layers), for inspection and for
    computing the loss by hand.
    """

    def __init__(self, inputs, outputs, aux_outputs=(), aux_loss_weight=0.3, name=None,
                 **kwargs):
        if isinstance(outputs, (list, tuple)):
            if len(outputs) != 1:
                raise ValueError(
                    "AuxiliaryLossModel has exactly one main output. "
                    f"Received: outputs={outputs}"
                )
            outputs = outputs[0]
        aux_outputs = list(aux_outputs or ())
        if aux_loss_weight < 0:
            raise ValueError(
                "`aux_loss_weight` must be >= 0. "
                f"Received: aux_loss_weight={aux_loss_weight}"
            )
        super().__init__(inputs=inputs, outputs=outputs, name=name, **kwargs)
        self.aux_loss_weight = float(aux_loss_weight)
        self._num_aux = len(aux_outputs)
        self._aux_graph = keras.Model(
            inputs=inputs,
            outputs=[outputs, *aux_outputs],
            name=f"{self.name}_with_aux",
        )
        object.__setattr__(self, "_aux_stash", threading.local())

    # -- the model's graphs -------------------------------------------------
    def with_aux_outputs(self):
        """The functional model ``inputs -> [main, aux_1, ...]`` (shared layers)."""
        return self._aux_graph

    def call(self, inputs, training=None, mask=None):
        if training and self._num_aux:
            main, *aux = self._aux_graph(inputs, training=True)
            self._aux_stash.outputs = aux
            return main
        return super().call(inputs, training=training, mask=mask)

    # -- the loss -----------------------------------------------------------
    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None,
                     training=True):
        total = super().compute_loss(
            x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training
        )
        aux = getattr(self._aux_stash, "outputs", None)
        self._aux_stash.outputs = None
        if not training or not aux or self._compile_loss is None:
            return total
        if self.aux_loss_weight == 0.0:
            return total
        aux_total = None
        for a in aux:
            value = self._compile_loss(y, a, sample_weight)
            if value is None:
                return total
            aux_total = value if aux_total is None else aux_total + value
        return total + ops.cast(self.aux_loss_weight, total.dtype) * ops.cast(
            aux_total, total.dtype
        )

    # -- serialisation --------------------------------------------------------
    def get_config(self):
        # The graph with every head; from_config rebuilds it and splits it again.
        config = self._aux_graph.get_config()
        config["name"] = self.name
        config["aux_loss_weight"] = self.aux_loss_weight
        config["num_aux_outputs"] = self._num_aux
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        aux_loss_weight = config.pop("aux_loss_weight", 0.3)
        config.pop("num_aux_outputs", None)
        name = config.get("name")
        graph = keras.Model.from_config(config, custom_objects=custom_objects)
        outputs = list(graph.outputs)
        return cls(
            inputs=graph.inputs,
            outputs=outputs[0],
            aux_outputs=outputs[1:],
            aux_loss_weight=aux_loss_weight,
            name=name,
        )
