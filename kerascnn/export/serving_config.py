"""TF Serving's layout: ``<base>/<name>/<version>/`` and ``<base>/models.config``.

TF Serving watches ``base_path/<version>`` folders whose names are integers and
serves the highest; ``models.config`` (``--model_config_file``) is a text-format
``ModelServerConfig`` whose ``model_config_list`` lists every model. The folder is
mounted in the container, so ``base_path`` is written relative to the container's
mount point (``/models`` by default, as in TF Serving's docker image).
"""

from __future__ import annotations

import os
import re

__all__ = ["list_exported_models", "next_version", "versions", "write_models_config",
           "models_config_text"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            "`name` must be a model name of letters, digits, '_', '-', '.' (a TF "
            f"Serving model name and a folder). Received: name={name!r}")
    return name


def versions(model_dir: str) -> list[int]:
    """The integer versions present under ``model_dir`` (sorted)."""
    if not os.path.isdir(model_dir):
        return []
    return sorted(int(d) for d in os.listdir(model_dir)
                  if d.isdigit() and os.path.isdir(os.path.join(model_dir, d)))


def next_version(model_dir: str) -> int:
    found = versions(model_dir)
    return (found[-1] + 1) if found else 1


def list_exported_models(base_dir: str) -> list[str]:
    """Names of the folders under ``base_dir`` that hold at least one version."""
    if not os.path.isdir(base_dir):
        return []
    return sorted(d for d in os.listdir(base_dir)
                  if _NAME.match(d) and versions(os.path.join(base_dir, d)))


def models_config_text(names, serving_base_path="/models") -> str:
    entries = []
    for name in names:
        entries.append(
            "  config {\n"
            f'    name: "{name}"\n'
            f'    base_path: "{serving_base_path.rstrip("/")}/{name}"\n'
            '    model_platform: "tensorflow"\n'
            "  }\n")
    return "model_config_list {\n" + "".join(entries) + "}\n"


def write_models_config(base_dir: str, serving_base_path: str = "/models") -> str:
    """(Re)writes ``<base_dir>/models.config`` listing every exported model,
    atomically, readable by others as an ordinary file (TF Serving's container
    may run as another user). Returns its path."""
    from kerascnn._io import atomic_write

    path = os.path.join(base_dir, "models.config")
    atomic_write(path, models_config_text(list_exported_models(base_dir), serving_base_path))
    return path
