"""What a study is: its networks (:class:`Network`, each one recipe's variant) and the
study itself (:class:`Study`: how it decides its claims and draws its figure). The
studies of each paper are tables of these (:mod:`~kerascnn.reproduce.resnet_studies`
and the others), gathered by :mod:`~kerascnn.reproduce.studies`.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

__all__ = ["Network", "Study", "as_number", "series"]


@dataclasses.dataclass(frozen=True)
class Network:
    """One network of a study.

    Attributes:
      key: its name in outputs (``plain56``, ``resnet20_B``).
      model: the registry name it is built from (``kerascnn.applications.get_model``).
      label: how figures and tables name it (``plain-56``).
      family: what kind of network it is (``"plain"``, ``"resnet"``, ``"alexnet"``).
      depth: weighted layers (ResNet: 6n+2).
      options: builder keyword arguments (``shortcut=``).
      overrides: other recipe keys of this variant (``(("data.mean", "none"),)``).
    """

    key: str
    model: str
    label: str
    family: str
    depth: int
    options: tuple = ()
    overrides: tuple = ()

    def kwargs(self) -> dict:
        return dict(self.options)

    def recipe_overrides(self) -> dict:
        """What this variant changes in its study's base recipe."""
        return {"model.name": self.model, "model.options": self.kwargs(),
                **dict(self.overrides)}


def as_number(value):
    """A stored number; None (a non-finite value in JSON, e.g. a diverged run) -> NaN."""
    return float("nan") if value is None else float(value)


def series(study, runs, keys):
    """The curves of ``keys`` (every seed) for :func:`plots.training_curves`."""
    out = []
    for i, key in enumerate(keys):
        for seed in sorted(runs[key]):
            h = runs[key][seed]["history"]
            out.append({"label": study.network(key).label, "colour": i,
                        "iterations": [r["iteration"] for r in h],
                        "train_error": [as_number(r["train_error"]) for r in h],
                        "test_error": [as_number(r["test_error"]) for r in h]})
    return out


@dataclasses.dataclass(frozen=True)
class Study:
    """A study: its variants, default seeds and budget, the paper's reference, and how
    it decides its claims and draws its figure.

    Attributes:
      name: the CLI name.
      title: one line for reports.
      networks: its variants, trained (``responses``: measured) with the same
        recipe apart from each one's overrides.
      seeds: default number of seeds per network.
      budget_minutes: default wall-clock budget on the 2-core CPU.
      paper: the paper's result for this experiment, in words and numbers
        (PAPERS.md and the paper's text).
      decide: ``decide(study, measured) -> [Claim]``; ``measured`` is ``{key: {seed:
        run}}`` (a run as :func:`kerascnn.reproduce.runs.read_run` reads it back), or
        what ``measure`` returns.
      draw: ``draw(study, measured, folder) -> path`` of the figure it writes.
      recipe: the base recipe of every variant (a name under ``pipelines/``).
      overrides: recipe keys every variant of this study changes (after the
        settings', before the variant's own).
      roles: names of the networks the claim rules compare.
      measure: ``measure(study, runs, recipe_of, log) -> measured``: a measurement of
        the trained networks beyond their curves (``responses``: Figure 7);
        ``recipe_of(net, seed)`` is a run's recipe. None: the curves are measured.
        A study that trains its networks (``nets_from`` None) measures them after
        training: ``measure`` then returns ``runs`` with its numbers added to each run
        (``googlenet``: the test crops), which ``decide`` and ``draw`` receive.
      nets_from: the study whose trained networks this one measures (``responses``).
      paper_settings: the :class:`~kerascnn.reproduce.recipes.Settings` fields of
        ``--paper`` (the paper's data, iterations, batch, rate), as ``(key, value)``
        pairs.
      paper_numbers: the paper's numbers beside which the report prints each
        network's, ``((key, {quantity: value}), ...)`` (PAPERS.md).
      settings: this study's defaults of :class:`~kerascnn.reproduce.recipes.Settings`
        fields, as ``(key, value)`` pairs, under the command line's (and under
        ``--paper``'s): e.g. AlexNet's rate and weight decay, googlenet's lr 0.01 (no
        batch norm).
    """

    name: str
    title: str
    networks: tuple
    seeds: int
    budget_minutes: float
    paper: str
    decide: Callable
    draw: Callable
    recipe: str = "resnet20_cifar10"
    overrides: tuple = ()
    roles: tuple = ()
    measure: Callable | None = None
    nets_from: str | None = None
    paper_settings: tuple = ()
    paper_numbers: tuple = ()
    settings: tuple = ()

    def role(self, name) -> str:
        return dict(self.roles)[name]

    def labels(self) -> dict:
        return {n.key: n.label for n in self.networks}

    def network(self, key) -> Network:
        for net in self.networks:
            if net.key == key:
                return net
        raise KeyError(key)
