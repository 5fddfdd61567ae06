"""Checks for the KERAS_BACKEND=jax run: test_zoo_jax.py names this file on the
command line of its JAX pytest process (pytest collects a file given by path whatever
its name; the TensorFlow run of the suite does not collect it, it has these checks
in their own files).

- GoogLeNet's auxiliary heads (``googlenet_scaled``: GoogLeNet's own builder at 1/8
  width, the same layers as the full-size one): one fit step under JAX reports
  main + 0.3 * (aux1 + aux2), the three losses computed here from
  ``with_aux_outputs()`` (the same under TensorFlow, full size:
  test_zoo_googlenet_aux.py). It runs after test_zoo_builders'
  ``test_forward_and_gradients[googlenet_scaled]`` in the same process, whose build
  compiled the initialisers this one reuses.
- ResNet-50 v1.5 (``stride_in_1x1=False``, the benchmark's ``resnet50_v1.5``):
  ResNet50's builder with one bottleneck block per stage (the blocks repeat the same
  code; the full-size ResNet-50 v1.5 under TensorFlow: test_zoo_counts.py and the
  throughput benchmark's test): the stride-2 on the 3x3 conv, forward and a gradient
  for every weight under JAX.
"""

import keras
import numpy as np
import pytest

from kerascnn import applications as apps
from kerascnn.applications import resnet

from _zoo_helpers import assert_every_weight_has_gradient, forward, images


def test_googlenet_aux_loss_under_jax():
    keras.mixed_precision.set_global_policy("float32")
    model = apps.GoogLeNetScaled(aux_logits=True, input_shape=(32, 32, 3), classes=4,
                                 dropout=0.0, aux_dropout=0.0)
    x = np.random.default_rng(0).uniform(-2, 2, (4, 32, 32, 3)).astype("float32")
    y = np.array([0, 1, 2, 3], "int32")
    model.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
    heads = [np.asarray(keras.ops.convert_to_numpy(t), np.float64)
             for t in model.with_aux_outputs().predict(x, batch_size=4, verbose=0)]  # compiled
    loss = model.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False).history["loss"][0]
    main, aux1, aux2 = heads
    ce = lambda p: float(np.mean(-np.log(p[np.arange(4), y])))  # noqa: E731
    want = ce(main) + 0.3 * (ce(aux1) + ce(aux2))
    assert abs(want - ce(main)) > 0.1  # the auxiliary terms matter
    assert loss == pytest.approx(want, rel=1e-4)


def test_resnet50_v15_bottleneck_under_jax(monkeypatch):
    monkeypatch.setitem(resnet._IMAGENET, 50, ("bottleneck", (1, 1, 1, 1)))
    model = apps.get_model("resnet50", stride_in_1x1=False, input_shape=(64, 64, 3),
                           classes=5)
    convs = [l for l in model.layers if isinstance(l, keras.layers.Conv2D)]
    assert len(convs) == 1 + 4 * 4  # conv1; three convs and the projection per block
    strides = {l.name: tuple(l.strides) for l in convs}
    for stage in (3, 4, 5):  # v1.5: the stride-2 on the 3x3 conv, not the first 1x1
        assert strides[f"conv{stage}_block1_1_conv"] == (1, 1), strides
        assert strides[f"conv{stage}_block1_2_conv"] == (2, 2), strides
    assert model.output_shape == (None, 5)
    x = images((64, 64, 3))
    probs = forward(model, x)
    assert probs.shape == (2, 5) and np.all(np.isfinite(probs))
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
    assert_every_weight_has_gradient(model, x, np.array([1, 3], "int32"))
