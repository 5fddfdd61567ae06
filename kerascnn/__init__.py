"""kerascnn: the classic ImageNet CNNs as Keras 3 models, faithful to their papers.

Sub-packages follow the data: ``data`` (source -> decode -> augment -> views),
``applications`` and ``layers`` (the networks), ``training`` (recipes, loss,
callbacks, fit), ``evaluation`` (the papers' test protocols) and ``export``
(SavedModels for TF Serving). Import them explicitly; this module stays light: it
imports no TensorFlow, and only makes every ``.keras`` file kerascnn writes loadable with
``keras.models.load_model`` after ``import kerascnn`` (:mod:`kerascnn._serializables`).
"""

from kerascnn import _serializables

__version__ = "0.1.0"

_serializables.install()
