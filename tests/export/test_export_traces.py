"""``export_model`` builds the network's graph once per serving signature
(``kerascnn.export.saved_model._trace_endpoints_once``): Keras' ExportArchive traced
each signature a second time, outside the save context, to list its variables."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerascnn.export import Preprocessing, export_model

pytestmark = pytest.mark.tf_only  # SavedModel


def test_export_traces_the_network_once_per_signature(tmp_path):
    traces = []

    class Traced(keras.layers.Layer):  # its Python body runs once per trace
        def call(self, x):
            traces.append(1)
            return x

    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(2, 3, activation="relu")(Traced()(inp))
    out = keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(x))
    model = keras.Model(inp, out)
    traces.clear()  # the functional model's own symbolic call
    path = export_model(model, "traced", base_dir=str(tmp_path), verbose=False,
                        preprocessing=Preprocessing(image_size=(8, 8), channels=1))
    # one trace per signature (serving_default, serving_images) and one by Keras' walk
    # of the tracked model for lookup tables; each signature traced twice made it 5
    assert len(traces) == 3, (f"the network was traced {len(traces)} times; want 3: once "
                              "per signature and once by ExportArchive.track's walk")
    # and the export still serves the network's probabilities
    images = np.random.default_rng(0).integers(0, 256, (3, 8, 8, 1)).astype(np.float32)
    got = tf.saved_model.load(path).signatures["serving_images"](images=tf.constant(images))
    np.testing.assert_allclose(got["probabilities"].numpy(), model.predict(images, verbose=0),
                               atol=1e-6)
