"""kerascnn.explain: what the network sees, and where it finds the object.

- :func:`grad_cam` (Selvaraju et al., ICCV 2017), :func:`class_activation_map` (Zhou
  et al., CVPR 2016) and :func:`score_map` (VGG's dense evaluation): a heatmap per image
  of the class explained; :func:`last_conv_layer`: the feature map they read by default.
- :func:`explain_images`: raw images of any size, the model's own preprocessing, a map
  per image in the image's pixels, its box and the top-5 classes.
- :func:`first_layer_filters` (AlexNet's Figure 3) and :func:`feature_maps`: images of
  the first convolution's kernels and of one layer's activations.
- :func:`boxes_from_map`: the CAM paper's box (20 % of the map's maximum, the largest
  connected component); :func:`evaluate_localization`, :func:`localization_error`,
  :func:`iou`, :func:`read_voc_xml`: ILSVRC's localization task
  (:mod:`kerascnn.explain.localization`).
"""

from kerascnn.explain.boxes import boxes_from_map
from kerascnn.explain.filters import feature_maps, first_layer_filters
from kerascnn.explain.images import METHODS, Explanation, explain_images
from kerascnn.explain.localization import (
    evaluate_localization,
    iou,
    localization_error,
    read_voc_xml,
)
from kerascnn.explain.maps import (
    class_activation_map,
    classifier_layer,
    grad_cam,
    last_conv_layer,
    score_map,
)

__all__ = [
    "METHODS",
    "Explanation",
    "boxes_from_map",
    "evaluate_localization",
    "explain_images",
    "feature_maps",
    "first_layer_filters",
    "class_activation_map",
    "classifier_layer",
    "grad_cam",
    "iou",
    "last_conv_layer",
    "localization_error",
    "read_voc_xml",
    "score_map",
]
