"""Imports go down the floors, never up.

    layers, _io, _backend, metrics, _imagenet, _protocols, _serializables  <  data  <  weights
    <  applications  <  evaluation, export, explain  <  training  <  reproduce

with the command-line modules (``*/_cli.py``, ``cli.py``) on top. Every module of the
package is read with ``ast`` (no import runs): imports at module level and inside
functions alike, relative imports resolved against the module's package. A module may
import its own floor (the three packages of one floor must not import each other in a
cycle) and any floor below.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import kerascnn

PACKAGE = Path(kerascnn.__file__).resolve().parent

# The floor of each top-level part of the package (``kerascnn.<part>``).
FLOORS = {
    "__init__": 0, "layers": 0, "_io": 0, "_backend": 0, "metrics": 0, "_imagenet": 0,
    "_protocols": 0, "_serializables": 0, "pipelines": 0,
    "data": 1,
    "weights": 2,
    "applications": 3,
    "evaluation": 4, "export": 4, "explain": 4,
    "training": 5,
    "reproduce": 6,
}
TOP = max(FLOORS.values()) + 1
SAME_FLOOR = ("evaluation", "export", "explain")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_cli(name: str) -> bool:
    last = name.rsplit(".", 1)[-1]
    return last in ("_cli", "cli")


def part(name: str) -> str:
    """``kerascnn.weights.mappers.vgg`` -> ``weights``; ``kerascnn`` -> ``__init__``."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def floor(name: str) -> int:
    if is_cli(name):
        return TOP
    key = part(name)
    if key not in FLOORS:
        raise AssertionError(f"{name}: no floor for kerascnn.{key}; add it to FLOORS")
    return FLOORS[key]


def imports(path: Path):
    """``(line, imported module)`` for every kerascnn import in the file, at any depth."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module == "kerascnn" or (node.level and not node.module):
                # ``from kerascnn import data`` / ``from . import x`` import sub-modules.
                for alias in node.names:
                    yield node.lineno, f"{module}.{alias.name}"
            else:
                yield node.lineno, module


def modules():
    return sorted(PACKAGE.rglob("*.py"))


def upward_imports() -> list[str]:
    problems = []
    edges = {}  # same-floor part -> parts it imports (evaluation/export/explain)
    for path in modules():
        name = module_name(path)
        own = floor(name)
        for line, target in imports(path):
            if target != "kerascnn" and not target.startswith("kerascnn."):
                continue
            if target == "kerascnn":
                continue
            rel = path.relative_to(PACKAGE.parent)
            if is_cli(name):
                continue  # the top floor imports anything
            if is_cli(target):
                problems.append(f"{rel}:{line}: {name} imports the command-line module {target}")
                continue
            if floor(target) > own:
                problems.append(f"{rel}:{line}: {name} (floor {own}, {part(name)}) imports "
                                f"{target} (floor {floor(target)}, {part(target)})")
            elif part(name) in SAME_FLOOR and part(target) in SAME_FLOOR and part(target) != part(name):
                edges.setdefault(part(name), {}).setdefault(part(target), f"{rel}:{line}")
    for a, targets in edges.items():
        for b, where in targets.items():
            if a in edges.get(b, {}):
                problems.append(f"{where}: {a} imports {b} and {b} imports {a} "
                                f"({edges[b][a]}): a cycle within one floor")
    return problems


def test_every_module_has_a_floor():
    names = [module_name(p) for p in modules()]
    assert "kerascnn.weights.loading" in names and "kerascnn.cli" in names
    for name in names:
        floor(name)


def test_the_scanner_sees_function_level_and_relative_imports(tmp_path, monkeypatch):
    """The scanner itself: an upward import inside a function, written relatively, is found."""
    pkg = tmp_path / "kerascnn"
    (pkg / "weights").mkdir(parents=True)
    (pkg / "applications").mkdir()
    for f in ("__init__.py", "weights/__init__.py", "applications/__init__.py", "applications/registry.py"):
        (pkg / f).write_text("")
    (pkg / "weights" / "x.py").write_text(
        "import os\nfrom . import readers\n\ndef f():\n    from ..applications import registry\n"
        "    from ..applications.registry import get_model_info\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", pkg)
    found = upward_imports()
    assert found == [
        "kerascnn/weights/x.py:5: kerascnn.weights.x (floor 2, weights) imports "
        "kerascnn.applications (floor 3, applications)",
        "kerascnn/weights/x.py:6: kerascnn.weights.x (floor 2, weights) imports "
        "kerascnn.applications.registry (floor 3, applications)",
    ]


def test_imports_go_down_the_floors():
    problems = upward_imports()
    assert not problems, "imports that go up a floor:\n" + "\n".join(problems)
