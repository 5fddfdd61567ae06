"""The three studies of He, Zhang, Ren, Sun, "Deep Residual Learning for Image
Recognition", CVPR 2016, as data: which networks each trains, with which defaults,
and what the paper reports for the same experiment (``../shared/PAPERS.md``).

- ``degradation``: Figure 1 and Figure 6 (left, middle), §4.2: plain-20/56 and
  ResNet-20/56 (CIFAR nets, option A), one recipe for all four.
- ``responses``: Figure 7: the std of each 3×3 layer's response (BN output, before
  the addition and ReLU) of the nets trained by ``degradation``.
- ``shortcuts``: Table 3 in small: ResNet-20 with shortcut options A, B and C.
  (The paper's Table 3 compares ResNet-34 A/B/C on ImageNet; the CIFAR nets here are
  the same comparison at the scale a CPU can train.)
"""

from __future__ import annotations

import dataclasses

__all__ = ["Network", "Study", "STUDIES", "get_study", "list_studies"]


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
    """

    key: str
    model: str
    label: str
    family: str
    depth: int
    options: tuple = ()

    def kwargs(self) -> dict:
        return dict(self.options)


def _plain(depth):
    return Network(f"plain{depth}", f"plain{depth}", f"plain-{depth}", "plain", depth)


def _resnet(depth, shortcut="A", key=None):
    return Network(key or f"resnet{depth}", f"resnet{depth}",
                   f"ResNet-{depth}" + ("" if key is None else f" ({shortcut})"),
                   "resnet", depth, (("shortcut", shortcut),))


@dataclasses.dataclass(frozen=True)
class Study:
    """A study: networks, default seeds and budget, and the paper's reference.

    Attributes:
      name: the CLI name.
      title: one line for reports.
      networks: what it trains (``responses``: what it measures).
      seeds: default number of seeds per network.
      budget_minutes: default wall-clock budget on the 2-core CPU.
      paper: the paper's result for this experiment, in words and numbers
        (PAPERS.md and the paper's text).
      roles: names of the networks the claim rules compare.
      nets_from: the study whose trained networks this one measures (``responses``).
    """

    name: str
    title: str
    networks: tuple
    seeds: int
    budget_minutes: float
    paper: str
    roles: tuple = ()
    nets_from: str | None = None

    def role(self, name) -> str:
        return dict(self.roles)[name]

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
