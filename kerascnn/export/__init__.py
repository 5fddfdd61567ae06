"""kerascnn.export: SavedModels for TF Serving.

``export_model(model, name, *, base_dir="saved_models", version=None,
preprocessing=..., class_names=...)`` writes ``<base>/<name>/<version>/``
atomically and updates ``<base>/models.config``; ``Preprocessing`` describes the
evaluation preprocessing baked into the graph; ``predict`` runs an export or a
``.keras`` file on image files (``kerascnn export`` / ``kerascnn predict``).
"""

from kerascnn.export.saved_model import Preprocessing, export_model
from kerascnn.export.serving_config import list_exported_models, next_version

__all__ = ["Preprocessing", "export_model", "list_exported_models", "next_version"]
