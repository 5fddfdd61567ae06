"""ImageNet's mean RGB: one constant, below every floor that uses it.

``IMAGENET_MEAN_RGB = (123.68, 116.779, 103.939)``: the mean RGB of the ILSVRC-2012
training set on the 0-255 scale, with the digits of Keras ``imagenet_utils``' "caffe"
mode (BGR 103.939, 116.779, 123.68), the mean keras.applications' weights were
trained with. :mod:`kerascnn.data.stats` (the data's default mean) and
:mod:`kerascnn.weights.origins` (keras.applications' record) both read it here, so
that ``import kerascnn.weights`` needs no TensorFlow (``kerascnn.data`` imports it).
Standard library only.
"""

IMAGENET_MEAN_RGB = (123.68, 116.779, 103.939)
