"""kerascnn.reproduce: the ResNet paper's experiments, run and checked.

``kerascnn reproduce degradation|responses|shortcuts`` trains the CIFAR nets of He,
Zhang, Ren, Sun (2016) to a budget (:mod:`~kerascnn.reproduce.runner`), measures
what the paper's figures show (:mod:`~kerascnn.reproduce.responses`,
:mod:`~kerascnn.reproduce.plots`) and states each claim as holds / does not hold /
inconclusive at this scale, with its rule (:mod:`~kerascnn.reproduce.claims`).
The studies are data (:mod:`~kerascnn.reproduce.studies`). Importing this package
does not import TensorFlow.
"""

from kerascnn.reproduce.studies import STUDIES, Network, Study, get_study, list_studies

__all__ = ["STUDIES", "Network", "Study", "get_study", "list_studies"]
