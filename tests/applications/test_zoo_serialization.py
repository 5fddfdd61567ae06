"""Config JSON round-trip and ``.keras`` save/load give identical outputs."""

import keras
import numpy as np
import pytest

from kerascnn import applications as apps

from _zoo_helpers import images

CASES = [
    ("alexnet", {"include_top": False, "input_shape": (67, 67, 3)}),
    ("vgg11_lrn", {"include_top": False, "input_shape": (32, 32, 1), "pooling": "avg"}),
    ("googlenet", {"input_shape": (40, 40, 3), "classes": 4}),
    ("resnet18", {"input_shape": (32, 32, 3), "classes": 4, "shortcut": "C"}),
    ("resnet20", {"input_shape": (16, 16, 1), "classes": 4}),
]


def _out(model, x):
    return keras.ops.convert_to_numpy(model(x, training=False))


@pytest.mark.parametrize("name,kwargs", CASES, ids=[c[0] for c in CASES])
def test_json_and_keras_file_round_trip(name, kwargs, tmp_path):
    model = apps.get_model(name, **kwargs)
    x = images(model.input_shape[1:])
    want = _out(model, x)

    clone = keras.models.model_from_json(model.to_json())
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(_out(clone, x), want)
    assert [layer.name for layer in clone.layers] == [layer.name for layer in model.layers]

    path = tmp_path / f"{name}.keras"
    model.save(path)
    np.testing.assert_array_equal(_out(keras.saving.load_model(path), x), want)


def test_googlenet_with_aux_round_trip(tmp_path):
    model = apps.GoogLeNet(aux_logits=True, aux_loss_weight=0.25, input_shape=(65, 65, 3),
                           classes=3)
    x = images((65, 65, 3))
    path = tmp_path / "g.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(model) and loaded.aux_loss_weight == 0.25
    np.testing.assert_array_equal(_out(loaded, x), _out(model, x))
    for a, b in zip(loaded.with_aux_outputs()(x), model.with_aux_outputs()(x)):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
