"""kerascnn.applications: the papers' networks as Keras functional models.

Builders have the keras.applications signature ``(include_top=True, weights=None,
input_tensor=None, input_shape=None, pooling=None, classes=1000,
classifier_activation="softmax", name=...)`` plus family options:

- ``AlexNet(groups=2)`` (Krizhevsky et al., 2012);
- ``VGG11``, ``VGG11LRN``, ``VGG13``, ``VGG16C``, ``VGG16``, ``VGG19`` and
  ``VGG(config=...)`` (Simonyan & Zisserman, 2015);
- ``GoogLeNet(aux_logits=False, aux_loss_weight=0.3)`` (Szegedy et al., 2015);
- ``ResNet18/34/50/101/152(shortcut="B", stride_in_1x1=True,
  zero_init_residual=False)``, ``Plain18/34`` and the CIFAR-10 nets
  ``ResNet20/32/44/56/110``, ``Plain20/32/44/56/110`` (He et al., 2016), these with
  ``width=16, output_stride=4, blocks=None`` (departures: narrower nets, a finer last
  map for CAM, fewer blocks per stage).

The registry: ``get_model(name, **kwargs)``, ``list_models()``,
``get_model_info(name)`` (a :class:`ModelInfo`, whose ``weight_sets`` lists the
pretrained weights), and ``count_macs(model)``.

Pretrained weights: ``ResNet50(weights="imagenet")`` (a set name from
``get_model_info(name).weight_sets``) or ``weights=<path>`` of a publisher's file;
inputs are RGB, 0-255, minus the set's mean: ``preprocess_input(images,
weights="imagenet", network="resnet50")``; ``decode_predictions(probs, top=5)``
names the 1000 ImageNet classes.
"""

from kerascnn.applications._macs import count_macs
from kerascnn.applications.alexnet import AlexNet
from kerascnn.applications.alexnet_small import AlexNetFig1, AlexNetSmall
from kerascnn.applications.googlenet import GoogLeNet
from kerascnn.applications.googlenet_scaled import GoogLeNetScaled
from kerascnn.applications.registry import (
    ModelInfo,
    get_model,
    get_model_info,
    list_models,
    register_model,
)
from kerascnn.applications.resnet import (
    Plain18,
    Plain20,
    Plain32,
    Plain34,
    Plain44,
    Plain56,
    Plain110,
    ResNet18,
    ResNet20,
    ResNet32,
    ResNet34,
    ResNet44,
    ResNet50,
    ResNet56,
    ResNet101,
    ResNet110,
    ResNet152,
)
from kerascnn.applications.vgg import VGG, VGG11, VGG11LRN, VGG13, VGG16, VGG16C, VGG19
from kerascnn.applications.vgg_scaled import ScaledVGG
from kerascnn.weights.classes import decode_predictions
from kerascnn.weights.loading import preprocess_input

__all__ = [
    "AlexNet",
    "AlexNetFig1",
    "AlexNetSmall",
    "GoogLeNet",
    "GoogLeNetScaled",
    "VGG",
    "VGG11",
    "VGG11LRN",
    "VGG13",
    "VGG16",
    "VGG16C",
    "VGG19",
    "ScaledVGG",
    "ModelInfo",
    "Plain18",
    "Plain20",
    "Plain32",
    "Plain34",
    "Plain44",
    "Plain56",
    "Plain110",
    "ResNet18",
    "ResNet20",
    "ResNet32",
    "ResNet34",
    "ResNet44",
    "ResNet50",
    "ResNet56",
    "ResNet101",
    "ResNet110",
    "ResNet152",
    "count_macs",
    "decode_predictions",
    "get_model",
    "get_model_info",
    "list_models",
    "preprocess_input",
    "register_model",
]
