"""Every study ``kerascnn reproduce`` runs, by name: the tables of
:mod:`~kerascnn.reproduce.resnet_studies` (He et al. 2016) and of the other papers.

A new study is one more entry of a paper's table (:class:`~kerascnn.reproduce.study.Study`):
its base recipe and study-wide ``overrides``, its variants
(:class:`~kerascnn.reproduce.study.Network`: a registry model and builder options;
``overrides`` for any other recipe key), a ``decide`` function (measured runs ->
claims, with the rules of :mod:`~kerascnn.reproduce.claims`), a ``draw`` function (the
figure), for a measurement beyond the curves a ``measure`` function (``responses``:
Figure 7 on the trained networks), and ``--paper``'s settings.
"""

from __future__ import annotations

from kerascnn.reproduce import alexnet_studies, googlenet_studies, resnet_studies, vgg_studies
from kerascnn.reproduce.study import Network, Study, as_number, series

__all__ = ["Network", "Study", "STUDIES", "as_number", "series", "get_study",
           "list_studies", "paper_numbers"]

STUDIES = {**resnet_studies.STUDIES, **alexnet_studies.STUDIES, **vgg_studies.STUDIES,
           **googlenet_studies.STUDIES}


def paper_numbers(study, key):
    """The paper's numbers for network ``key`` of ``study`` (None: none stated)."""
    return dict(study.paper_numbers).get(key)


def list_studies() -> list[str]:
    return list(STUDIES)


def get_study(name) -> Study:
    if name not in STUDIES:
        raise ValueError(f"Unknown study; expected one of {list_studies()}. "
                         f"Received: study={name!r}")
    return STUDIES[name]
