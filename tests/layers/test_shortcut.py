import keras
import numpy as np
import pytest

from kerascnn.layers import ZeroPadShortcut


@pytest.mark.parametrize("shape,filters,strides", [((2, 8, 8, 16), 32, 2), ((1, 7, 5, 4), 4, 2),
                                                   ((1, 4, 4, 3), 8, 1)])
def test_subsamples_and_zero_pads(shape, filters, strides):
    x = np.random.default_rng(0).standard_normal(shape).astype("float32")
    got = keras.ops.convert_to_numpy(ZeroPadShortcut(filters, strides)(x))
    want = np.zeros(
        (shape[0], -(-shape[1] // strides), -(-shape[2] // strides), filters), "float32"
    )
    want[..., : shape[3]] = x[:, ::strides, ::strides, :]
    np.testing.assert_array_equal(got, want)
    layer = ZeroPadShortcut(filters, strides)
    assert layer.compute_output_shape(shape) == want.shape
    assert not layer.weights


def test_cannot_reduce_channels():
    with pytest.raises(ValueError, match="filters=4"):
        ZeroPadShortcut(4, 1)(np.zeros((1, 2, 2, 8), "float32"))


def test_round_trip(tmp_path):
    inputs = keras.Input((6, 6, 3))
    model = keras.Model(inputs, ZeroPadShortcut(8, 2, name="sc")(inputs))
    path = tmp_path / "sc.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    x = np.ones((1, 6, 6, 3), "float32")
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(model(x))
    )
    assert loaded.get_layer("sc").get_config()["filters"] == 8
