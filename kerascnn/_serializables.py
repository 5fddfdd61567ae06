"""Every class kerascnn writes into a ``.keras`` file loads after ``import kerascnn`` alone.

Keras 3 finds a custom class of a saved config by its registered name
(``"kerascnn>L2SGD"``) in ``keras.saving.get_custom_objects()``, which
``@keras.saving.register_keras_serializable`` fills when the class's module is
imported. Unlike its own classes, Keras never imports the ``module`` a config names for
a third-party package, so ``keras.models.load_model("runs/.../best.keras")`` in a new
process fails ("Could not locate class 'L2SGD'") unless the right modules happen to
have been imported. Importing them all at ``import kerascnn`` would import TensorFlow
(the CLI's ``--help`` stays TensorFlow-free), so instead:

- :data:`SERIALIZABLES` names every registered class and the module that defines it
  (``tests/test_serializables.py`` checks it against the decorators in the package);
- once Keras is imported (already, or later through a one-shot import hook on the
  ``keras`` module), :func:`install` puts a stand-in under each name in Keras' registry.
  A stand-in's ``from_config`` imports the class's module, whose decorator then
  registers the real class in its place, and builds the object with it.

Only the standard library here; the modules named are imported when a file is loaded.
"""

from __future__ import annotations

import importlib
import importlib.abc
import sys

__all__ = ["SERIALIZABLES", "install"]

# registered name -> module that defines (and registers) the class
SERIALIZABLES = {
    "kerascnn>AuxiliaryLossModel": "kerascnn.layers.auxiliary",
    "kerascnn>BatchNormalization": "kerascnn.layers.batch_norm",
    "kerascnn>LocalResponseNormalization": "kerascnn.layers.lrn",
    "kerascnn>ZeroPadShortcut": "kerascnn.layers.shortcut",
    "kerascnn>TopKAccuracy": "kerascnn.metrics",
    "kerascnn>TopKError": "kerascnn.metrics",
    "kerascnn>DenseAsConv": "kerascnn.evaluation.fully_convolutional",
    "kerascnn>L2SGD": "kerascnn.training.optimizers",
}


class _Deferred:
    """Stands in Keras' registry for a class whose module is not imported yet."""

    def __init__(self, registered_name: str, module: str):
        self.registered_name = registered_name
        self.module = module

    def resolve(self):
        """The class itself (importing its module registers it with Keras)."""
        return getattr(importlib.import_module(self.module),
                       self.registered_name.split(">", 1)[1])

    def from_config(self, *args, **kwargs):
        return self.resolve().from_config(*args, **kwargs)

    def __repr__(self):
        return f"<kerascnn class {self.registered_name} from {self.module}, not imported yet>"


def _register(keras) -> None:
    objects = keras.saving.get_custom_objects()
    for name, module in SERIALIZABLES.items():
        objects.setdefault(name, _Deferred(name, module))


class _RegisteringLoader(importlib.abc.Loader):
    """Keras' own loader, followed by :func:`_register` once the module has run."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        _register(module)

    def __getattr__(self, name):  # get_resource_reader, get_source, ...
        return getattr(self._loader, name)


class _KerasImportHook(importlib.abc.MetaPathFinder):
    """Finds ``keras`` as the other finders do and wraps its loader (once)."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "keras":
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _RegisteringLoader(spec.loader)
        return spec


def install() -> None:
    """Registers the stand-ins now if Keras is imported, else when it is."""
    keras = sys.modules.get("keras")
    if keras is not None and hasattr(keras, "saving"):
        _register(keras)
    elif not any(isinstance(f, _KerasImportHook) for f in sys.meta_path):
        sys.meta_path.insert(0, _KerasImportHook())
