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

``--paper`` is §4.2's CIFAR-10 setting: 64k iterations of 128, lr 0.1 divided by 10 at
32k and 48k, 4-pixel pad + random crop + flip, the full test set.
"""

from __future__ import annotations

import os

from kerascnn.reproduce import claims as rules
from kerascnn.reproduce import plots, responses
from kerascnn.reproduce.study import Network, Study, as_number, series

__all__ = ["STUDIES", "PAPER_SETTINGS"]

# §4.2's CIFAR-10 setting (``--paper``).
PAPER_SETTINGS = (("data", "tfds:cifar10"), ("iterations", 64_000), ("points", 160),
                  ("batch_size", 128), ("lr", 0.1), ("augment", "cifar"),
                  ("precision", "float32"), ("test_examples", 10_000),
                  ("train_examples", None))


def _plain(depth):
    return Network(f"plain{depth}", f"plain{depth}", f"plain-{depth}", "plain", depth)


def _resnet(depth, shortcut="A", key=None):
    return Network(key or f"resnet{depth}", f"resnet{depth}",
                   f"ResNet-{depth}" + ("" if key is None else f" ({shortcut})"),
                   "resnet", depth, (("shortcut", shortcut),))


def _degradation_claims(study, runs):
    roles = dict(study.roles)
    curves = {k: [[as_number(r["train_error"]) for r in runs[k][s]["history"]]
                  for s in sorted(runs[k])] for k in roles.values()}
    return rules.degradation_claims(curves, roles, study.labels())


def _degradation_figure(study, runs, folder):
    roles = dict(study.roles)
    panels = [(name, series(study, runs, [roles[f"{family}_shallow"],
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
                                   series(study, runs, order))],
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
        paper_numbers=(("resnet20", {"test_error": 8.75}), ("resnet56", {"test_error": 6.97})),
        paper_settings=PAPER_SETTINGS,
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
        paper_settings=PAPER_SETTINGS,
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
        paper_numbers=(("resnet20_A", {"imagenet_resnet34_top1_error": 25.03}),
                       ("resnet20_B", {"imagenet_resnet34_top1_error": 24.52}),
                       ("resnet20_C", {"imagenet_resnet34_top1_error": 24.19})),
        paper_settings=PAPER_SETTINGS,
        paper=("ImageNet, ResNet-34, 10-crop top-1/top-5 error (Table 3): "
               "A 25.03/7.76, B 24.52/7.46, C 24.19/7.40: B is slightly better "
               "than A, C marginally better than B; the differences are small, so "
               "projections are not essential for the degradation problem."),
    ),
}

