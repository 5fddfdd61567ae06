"""The scaled GoogLeNet of the ``googlenet`` study: its parameters counted by hand
from Table 1 (typed here from PAPERS.md, not read from the builder), its map sizes,
its config round-trip and its argument errors."""

import keras
import numpy as np
import pytest

from kerascnn import applications as apps

# PAPERS.md, Table 1: (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj)
TABLE1 = [
    ("3a", (64, 96, 128, 16, 32, 32)), ("3b", (128, 128, 192, 32, 96, 64)),
    ("4a", (192, 96, 208, 16, 48, 64)), ("4b", (160, 112, 224, 24, 64, 64)),
    ("4c", (128, 128, 256, 24, 64, 64)), ("4d", (112, 144, 288, 32, 64, 64)),
    ("4e", (256, 160, 320, 32, 128, 128)), ("5a", (256, 160, 320, 32, 128, 128)),
    ("5b", (384, 192, 384, 48, 128, 128)),
]


def _conv(k, c_in, c_out):
    return k * k * c_in * c_out + c_out


def scaled_googlenet_params(width=0.125, channels=1, classes=10, aux=False, side=28):
    """Hand count: a 3x3 stem conv, the 1x1 reduction and 3x3 conv (64, 64, 192 x
    width), Table 1's modules x width, fc to ``classes``; with ``aux``, per head a 1x1
    conv (128 x width), fc (1024 x width) on the 5x5/3-pooled map of 4a/4d (side/4)."""
    w = lambda c: int(round(c * width))  # noqa: E731
    total = _conv(3, channels, w(64)) + _conv(1, w(64), w(64)) + _conv(3, w(64), w(192))
    c_in = w(192)
    heads = 0
    for name, spec in TABLE1:
        n1, n3r, n3, n5r, n5, proj = (w(c) for c in spec)
        total += (_conv(1, c_in, n1) + _conv(1, c_in, n3r) + _conv(3, n3r, n3)
                  + _conv(1, c_in, n5r) + _conv(5, n5r, n5) + _conv(1, c_in, proj))
        c_in = n1 + n3 + n5 + proj
        if name in ("4a", "4d"):
            pooled = ((-(-side // 4)) - 5) // 3 + 1  # 4a's map: side / 4 ("same" pools)
            heads += (_conv(1, c_in, w(128)) + pooled * pooled * w(128) * w(1024) + w(1024)
                      + w(1024) * classes + classes)
    total += c_in * classes + classes
    return total + (heads if aux else 0)


def trainable(model):
    return sum(int(np.prod(v.shape)) for v in model.trainable_weights)


def test_parameters_by_hand_and_the_registry_entry():
    info = apps.get_model_info("googlenet_scaled")
    model = apps.GoogLeNetScaled()
    assert trainable(model) == scaled_googlenet_params() == info.params
    assert info.input_shape == (28, 28, 1) and info.classes == 10
    aux = apps.GoogLeNetScaled(aux_logits=True)
    assert trainable(aux) == scaled_googlenet_params(aux=True)
    assert trainable(aux.with_aux_outputs()) == scaled_googlenet_params(aux=True)
    # another width, input and class count: the count follows
    other = apps.GoogLeNetScaled(width=0.5, input_shape=(32, 32, 3), classes=7, aux_logits=True)
    assert trainable(other) == scaled_googlenet_params(0.5, 3, 7, aux=True, side=32)


def test_map_sizes_heads_and_names():
    model = apps.GoogLeNetScaled(aux_logits=True).with_aux_outputs()
    shape = lambda n: tuple(model.get_layer(n).output.shape[1:3])  # noqa: E731
    assert shape("conv1_3x3") == (28, 28)
    assert shape("inception_3a_output") == (14, 14)
    assert shape("inception_4a_output") == (7, 7)
    assert shape("inception_5b_output") == (4, 4)
    assert shape("aux1_ave_pool") == shape("aux2_ave_pool") == (1, 1)
    assert model.get_layer("inception_5b_output").output.shape[-1] == (384 + 384 + 128 + 128) // 8
    assert [o.shape[-1] for o in model.outputs] == [10, 10, 10]
    names = [layer.name for layer in model.layers]
    again = [layer.name for layer in apps.GoogLeNetScaled(aux_logits=True).with_aux_outputs().layers]
    assert names == again  # deterministic names
    assert "aux2_fc" in names and "pool2_3x3_s2" not in names


def test_config_round_trip_keeps_the_heads_and_the_weight():
    model = apps.GoogLeNetScaled(aux_logits=True, aux_loss_weight=0.0)
    clone = model.__class__.from_config(model.get_config())
    assert clone.aux_loss_weight == 0.0
    assert trainable(clone) == trainable(model)
    assert [l.name for l in clone.with_aux_outputs().layers] == [
        l.name for l in model.with_aux_outputs().layers]
    x = np.random.default_rng(0).uniform(0, 1, (2, 28, 28, 1)).astype("float32")
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(clone(x, training=False)),  # eager
                               keras.ops.convert_to_numpy(model(x, training=False)), rtol=1e-5)


@pytest.mark.parametrize("kwargs,match", [
    ({"width": 0}, "`width` must be a number > 0. Received: width=0"),
    ({"width": True}, "`width`"),
    ({"aux_logits": True, "input_shape": (16, 16, 1)}, "input"),
    ({"aux_loss_weight": -1.0, "aux_logits": True}, "aux_loss_weight"),
])
def test_bad_arguments_name_themselves(kwargs, match):
    with pytest.raises(ValueError, match=match):
        apps.GoogLeNetScaled(**kwargs)


def teardown_function():
    keras.backend.clear_session()
