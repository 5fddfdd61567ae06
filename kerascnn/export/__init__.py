"""kerascnn.export: SavedModels for TF Serving.

``export_model(model, name, *, base_dir="saved_models", version=None,
preprocessing=..., class_names=...)`` writes ``<base>/<name>/<version>/``
atomically and updates ``<base>/models.config``; the preprocessing baked into the
graph is a :class:`kerascnn.data.preprocessing.Preprocessing` (re-exported here as
``Preprocessing``), by default the one the model carries (its training run's, stored
in its ``.keras`` file: :func:`kerascnn.data.carried.resolve`);
``predict_files`` runs an export or a ``.keras`` file on image files (``kerascnn
export`` / ``kerascnn predict``).
"""

from kerascnn.data.preprocessing import Preprocessing
from kerascnn.export.predict import Prediction, predict_files
from kerascnn.export.saved_model import default_preprocessing, export_model
from kerascnn.export.serving_config import list_exported_models, next_version

__all__ = ["Prediction", "Preprocessing", "default_preprocessing", "export_model",
           "list_exported_models", "next_version", "predict_files"]
