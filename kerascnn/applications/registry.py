"""One registry of every network of the zoo, with its metadata.

Pattern of timm's ``_registry.py`` / torchvision's ``_api.py``: a name maps to a
builder and the facts next to it (default input, parameter count, multiply-adds,
the paper's reported error and protocol, the training recipe). Registering a name
twice is an error; an unknown name raises an error listing the close matches.

Names are lower-case (``"resnet50"``, ``"vgg11_lrn"``); lookups ignore case,
``-`` and ``_``, so ``get_model("ResNet-50")`` and ``get_model("VGG11LRN")`` work.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Callable

from kerascnn._protocols import PAPER_PROTOCOLS
from kerascnn.weights.sets import lookup_key

FAMILIES = ("alexnet", "vgg", "googlenet", "resnet", "plain", "resnet_cifar", "plain_cifar",
            "vgg_scaled")
# The keys of paper_results: the evaluation's protocol table (``test``: the CIFAR nets'
# single-view test error, the ``center`` protocol's figure).
PROTOCOLS = PAPER_PROTOCOLS


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """Metadata of one registered network.

    Attributes:
        name: registry name.
        builder: the public builder (``AlexNet``, ``ResNet50`` ...), called with the
            keras.applications keyword arguments.
        family: one of ``FAMILIES``.
        input_shape: default input (H, W, C).
        classes: default number of classes.
        params: trainable parameters at the default input and classes (the number
            PAPERS.md gives where it gives one; the tests check the builder).
        macs: multiply-accumulates of the conv and dense layers for one image at the
            default input (a table, checked by the tests against
            ``kerascnn.applications.count_macs`` on the built model).
        paper_results: ``{protocol: {"top1": err|None, "top5": err|None,
            "dataset": str, "setting": str}}``, errors in %, protocols as in
            ``kerascnn.evaluation`` (``PROTOCOLS``).
        recipe: the training recipe, a name under ``kerascnn.training.recipe.pipelines_dir()``
          (the package's ``pipelines/``).
        description: one line for ``kerascnn models``.
    """

    name: str
    builder: Callable
    family: str
    input_shape: tuple
    classes: int
    params: int
    macs: int
    paper_results: dict
    recipe: str
    description: str = ""

    @property
    def weight_sets(self) -> dict:
        """``{set name: WeightSet}``: the pretrained weights a builder's ``weights=``
        takes by name (:mod:`kerascnn.weights.sets`); empty when there are none."""
        from kerascnn.weights.sets import weight_sets

        return weight_sets(self.name)

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ValueError(f"Unknown family. Received: family={self.family!r}")
        for protocol in self.paper_results:
            if protocol not in PROTOCOLS:
                raise ValueError(
                    f"Unknown protocol in paper_results. Received: protocol={protocol!r}"
                )


_REGISTRY: dict[str, ModelInfo] = {}
_KEYS: dict[str, str] = {}  # name without '_' -> name


def _normalize(name: str) -> str:
    return str(name).strip().lower().replace("-", "_")


def register_model(info: ModelInfo) -> ModelInfo:
    """Adds ``info`` under ``info.name``; a name registered twice is an error."""
    key = _normalize(info.name)
    if key != info.name:
        raise ValueError(
            f"Registry names are lower-case with '_'. Received: name={info.name!r}"
        )
    if key in _REGISTRY or lookup_key(key) in _KEYS:
        raise ValueError(f"Model {info.name!r} is already registered.")
    _REGISTRY[key] = info
    _KEYS[lookup_key(key)] = key
    return info


def list_models(family: str | None = None) -> list[str]:
    """Registered names, grouped by family in ``FAMILIES`` order (optionally one)."""
    if family is not None and family not in FAMILIES:
        raise ValueError(
            f"`family` must be one of {FAMILIES}. Received: family={family!r}"
        )
    names = [n for n, i in _REGISTRY.items() if family is None or i.family == family]
    return sorted(names, key=lambda n: FAMILIES.index(_REGISTRY[n].family))


def get_model_info(name: str) -> ModelInfo:
    """The :class:`ModelInfo` of ``name``; unknown names list the close matches."""
    key = _KEYS.get(lookup_key(name))
    if key is None:
        key = _normalize(name)
        close = difflib.get_close_matches(key, list(_REGISTRY), n=5, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ValueError(
            f"Unknown model name.{hint} Known models: {', '.join(_REGISTRY)}. "
            f"Received: name={name!r}"
        )
    return _REGISTRY[key]


def get_model(name: str, /, **kwargs):
    """Builds the registered network ``name`` with the builder's keyword arguments
    (which may include the model's own ``name=``)."""
    return get_model_info(name).builder(**kwargs)


def results(protocol, top1, top5, dataset, setting=""):
    """One ``paper_results`` entry (errors in %)."""
    return {protocol: {"top1": top1, "top5": top5, "dataset": dataset, "setting": setting}}
