"""The studies of He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition",
CVPR 2016, as a table: a study is its variants (each one recipe of ``pipelines/`` with
overrides, trained by ``kerascnn train``'s code: :mod:`kerascnn.reproduce.recipes`),
the claims it decides on their measured curves and the figure it draws.

- ``degradation``: Figure 1 and Figure 6 (left, middle), §4.2: plain-20/56 and
  ResNet-20/56 (CIFAR nets, option A), one recipe for all four.
- ``responses``: Figure 7: the std of each 3×3 layer's response (BN output, before
  the addition and ReLU) of the nets trained by ``degradation``.
- ``shortcuts``: Table 3 in small: ResNet-20 with shortcut options A, B and C.
  (The paper's Table 3 compares ResNet-34 A/B/C on ImageNet; the CIFAR nets here are
  the same comparison at the scale a CPU can train.)

A new study is one more entry of :data:`STUDIES`: its base recipe and study-wide
``overrides``, its variants (:class:`Network`: a registry model and builder options;
``overrides`` for any other recipe key), a ``decide`` function (measured runs ->
claims, with the rules of :mod:`~kerascnn.reproduce.claims`), a ``draw`` function
(the figure) and, for a measurement beyond the curves, a ``measure`` function
(``responses``: Figure 7 on the trained networks).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable

from kerascnn.reproduce import claims as rules
from kerascnn.reproduce import plots, responses

__all__ = ["Network", "Study", "STUDIES", "as_number", "get_study", "list_studies"]


@dataclasses.dataclass(frozen=True)
class Network:
    """One network of a study.

    Attributes:
      key: its name in outputs (``plain56``, ``resnet20_B``).
      model: the registry name it is built from (``kerascnn.applications.get_model``).
      label: how figures and tables name it (``plain-56``).
      family: ``"plain"`` or ``"resnet"``.
      depth: weighted layers (6n+2).
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


def _plain(depth):
    return Network(f"plain{depth}", f"plain{depth}", f"plain-{depth}", "plain", depth)


def _resnet(depth, shortcut="A", key=None):
    return Network(key or f"resnet{depth}", f"resnet{depth}",
                   f"ResNet-{depth}" + ("" if key is None else f" ({shortcut})"),
                   "resnet", depth, (("shortcut", shortcut),))


def as_number(value):
    """A stored number; None (a non-finite value in JSON, e.g. a diverged run) -> NaN."""
    return float("nan") if value is None else float(value)


def _series(study, runs, keys):
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


def _degradation_claims(study, runs):
    roles = dict(study.roles)
    curves = {k: [[as_number(r["train_error"]) for r in runs[k][s]["history"]]
                  for s in sorted(runs[k])] for k in roles.values()}
    return rules.degradation_claims(curves, roles, study.labels())


def _degradation_figure(study, runs, folder):
    roles = dict(study.roles)
    panels = [(name, _series(study, runs, [roles[f"{family}_shallow"],
                                           roles[f"{family}_deep"]]))
              for name, family in (("plain", "plain"), ("ResNet", "resnet"))]
    return plots.training_curves(panels, os.path.join(folder, "figure6.png"),
                                 title=study.title)


def _shortcuts_claims(study, runs):
    order = [study.role(k) for k in ("A", "B", "C")]
    accuracies = {k: [100.0 - as_number(runs[k][s]["final_test_error"])
                      for s in sorted(runs[k])] for k in order}
    return rules.shortcuts_claims(accuracies, order, study.labels())


def _shortcuts_figure(study, runs, folder):
    order = [study.role(k) for k in ("A", "B", "C")]
    return plots.training_curves([("ResNet-20, shortcut options A / B / C",
                                   _series(study, runs, order))],
                                 os.path.join(folder, "figure6.png"), title=study.title)


def _responses_pairs(study):
    roles = dict(study.roles)
    return [(roles[p], roles[r]) for p, r in (("plain_shallow", "resnet_shallow"),
                                              ("plain_deep", "resnet_deep"))
            if p in roles and r in roles]


def _responses_claims(study, measured):
    return rules.responses_claims({k: v["std"] for k, v in measured.items()},
                                  _responses_pairs(study), study.labels())


def _responses_figure(study, measured, folder):
    return plots.response_stds({study.network(k).label: v["std"]
                                for k, v in measured.items()},
                               os.path.join(folder, "figure7.png"), title=study.title)


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
      nets_from: the study whose trained networks this one measures (``responses``).
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

    def role(self, name) -> str:
        return dict(self.roles)[name]

    def labels(self) -> dict:
        return {n.key: n.label for n in self.networks}

    def network(self, key) -> Network:
        for net in self.networks:
            if net.key == key:
                return net
        raise KeyError(key)


_DEGRADATION_NETS = (_plain(20), _plain(56), _resnet(20), _resnet(56))
_DEGRADATION_ROLES = (("plain_shallow", "plain20"), ("plain_deep", "plain56"),
                      ("resnet_shallow", "resnet20"), ("resnet_deep", "resnet56"))

STUDIES = {
    "degradation": Study(
        name="degradation",
        title="Degradation: plain-20/56 vs ResNet-20/56 (Figures 1 and 6, §4.2)",
        networks=_DEGRADATION_NETS,
        seeds=1,
        budget_minutes=25.0,
        roles=_DEGRADATION_ROLES,
        decide=_degradation_claims,
        draw=_degradation_figure,
        paper=("CIFAR-10, 64k iterations: the deeper plain net has higher training "
               "and test error than plain-20 (Figure 1, Figure 6 left); with "
               "shortcuts the deeper net is better, test error ResNet-20 8.75 %, "
               "ResNet-56 6.97 % (§4.2), and ResNet-56 trains to a lower error "
               "than plain-56 (Figure 6 middle)."),
    ),
    "responses": Study(
        name="responses",
        title="Layer responses: std of each 3x3 layer's BN output (Figure 7)",
        networks=_DEGRADATION_NETS,
        seeds=1,
        budget_minutes=2.0,
        roles=_DEGRADATION_ROLES,
        nets_from="degradation",
        measure=responses.measure_runs,
        decide=_responses_claims,
        draw=_responses_figure,
        paper=("CIFAR-10, trained nets: the responses (the output of each 3x3 "
               "layer after BN, before the addition and ReLU) of ResNets are "
               "generally smaller than those of their plain counterparts, and the "
               "deeper the ResNet, the smaller (Figure 7, §4.2)."),
    ),
    "shortcuts": Study(
        name="shortcuts",
        title="Shortcut options A / B / C on ResNet-20 (Table 3 in small)",
        networks=(_resnet(20, "A", "resnet20_A"), _resnet(20, "B", "resnet20_B"),
                  _resnet(20, "C", "resnet20_C")),
        seeds=2,
        budget_minutes=20.0,
        roles=(("A", "resnet20_A"), ("B", "resnet20_B"), ("C", "resnet20_C")),
        decide=_shortcuts_claims,
        draw=_shortcuts_figure,
        paper=("ImageNet, ResNet-34, 10-crop top-1/top-5 error (Table 3): "
               "A 25.03/7.76, B 24.52/7.46, C 24.19/7.40: B is slightly better "
               "than A, C marginally better than B; the differences are small, so "
               "projections are not essential for the degradation problem."),
    ),
}

# The paper's numbers beside which the reports print ours (PAPERS.md).
PAPER_NUMBERS = {
    "degradation": {"resnet20": {"test_error": 8.75}, "resnet56": {"test_error": 6.97}},
    "shortcuts": {"resnet20_A": {"imagenet_resnet34_top1_error": 25.03},
                  "resnet20_B": {"imagenet_resnet34_top1_error": 24.52},
                  "resnet20_C": {"imagenet_resnet34_top1_error": 24.19}},
}


def list_studies() -> list[str]:
    return list(STUDIES)


def get_study(name) -> Study:
    if name not in STUDIES:
        raise ValueError(f"Unknown study; expected one of {list_studies()}. "
                         f"Received: study={name!r}")
    return STUDIES[name]
