"""kerascnn.reproduce: the four papers' experiments, run and checked.

``kerascnn reproduce degradation|responses|shortcuts`` trains the CIFAR nets of He,
Zhang, Ren, Sun (2016) to a budget; ``relu``, ``alexnet-ablations``, ``vgg`` and
``googlenet`` train networks scaled from AlexNet, VGG and GoogLeNet. A study (:mod:`~kerascnn.reproduce.studies`, a
table) is its variants, each a training recipe (:mod:`~kerascnn.reproduce.recipes`)
trained by ``kerascnn train``'s code in its own run folder
(:mod:`~kerascnn.reproduce.runs`), the plan that turns a budget into iterations
(:mod:`~kerascnn.reproduce.plan`), the claims it states as holds / does not hold /
inconclusive at this scale with their rules (:mod:`~kerascnn.reproduce.claims`), its
figure (:mod:`~kerascnn.reproduce.plots`, :mod:`~kerascnn.reproduce.responses`) and
its report (:mod:`~kerascnn.reproduce.report`); :mod:`~kerascnn.reproduce.runner`
runs them in order. Importing this package does not import TensorFlow.
"""

from kerascnn.reproduce.studies import STUDIES, Network, Study, get_study, list_studies

__all__ = ["STUDIES", "Network", "Study", "get_study", "list_studies"]
