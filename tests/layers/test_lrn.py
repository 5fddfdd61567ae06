import keras
import numpy as np
import pytest

from kerascnn.layers import LocalResponseNormalization


def lrn_reference(a, depth_radius, bias, alpha, beta):
    """The paper's formula, one channel at a time (alpha NOT divided by n)."""
    a = a.astype(np.float64)
    channels = a.shape[-1]
    out = np.empty_like(a)
    for c in range(channels):
        lo, hi = max(0, c - depth_radius), min(channels - 1, c + depth_radius)
        s = np.sum(a[..., lo : hi + 1] ** 2, axis=-1)
        out[..., c] = a[..., c] / (bias + alpha * s) ** beta
    return out


@pytest.mark.parametrize(
    "depth_radius,bias,alpha,beta",
    [(2, 2.0, 1e-4, 0.75), (1, 1.0, 1e-2, 0.5), (3, 0.5, 1e-3, 1.0), (0, 2.0, 0.1, 0.75)],
)
def test_matches_numpy_formula(depth_radius, bias, alpha, beta):
    rng = np.random.default_rng(0)
    # AlexNet-scale activations, so that the alpha term matters.
    x = (rng.standard_normal((2, 5, 4, 9)) * 30).astype("float32")
    layer = LocalResponseNormalization(depth_radius, bias, alpha, beta)
    got = keras.ops.convert_to_numpy(layer(x))
    want = lrn_reference(x, depth_radius, bias, alpha, beta)
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6)


def test_alpha_is_not_divided_by_n():
    # One channel of value a, radius 2: b = a / (k + alpha * a^2) ** beta exactly.
    x = np.zeros((1, 1, 1, 5), "float32")
    x[..., 2] = 100.0
    got = keras.ops.convert_to_numpy(LocalResponseNormalization()(x))[0, 0, 0, 2]
    assert got == pytest.approx(100.0 / (2.0 + 1e-4 * 100.0**2) ** 0.75, rel=1e-6)
    caffe = 100.0 / (2.0 + 1e-4 / 5 * 100.0**2) ** 0.75
    assert abs(got - caffe) > 1.0


@pytest.mark.tf_only
@pytest.mark.parametrize(
    "depth_radius,bias,alpha,beta", [(2, 2.0, 1e-4, 0.75), (1, 1.0, 1e-2, 0.5)]
)
def test_matches_tf_nn_lrn(depth_radius, bias, alpha, beta):
    import tensorflow as tf

    x = (np.random.default_rng(1).standard_normal((2, 6, 6, 16)) * 20).astype("float32")
    got = keras.ops.convert_to_numpy(LocalResponseNormalization(depth_radius, bias, alpha, beta)(x))
    want = tf.nn.local_response_normalization(
        x, depth_radius=depth_radius, bias=bias, alpha=alpha, beta=beta
    ).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_float32_inside_under_mixed_precision():
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        layer = LocalResponseNormalization()
        # 300**2 * 5 overflows float16 (max 65504); the float32 sum does not.
        x = np.full((1, 2, 2, 8), 300.0, "float32")
        y = layer(keras.ops.cast(x, "float16"))
        assert keras.backend.standardize_dtype(y.dtype) == "float16"
        got = keras.ops.convert_to_numpy(keras.ops.cast(y, "float32"))
        assert np.all(np.isfinite(got))
        np.testing.assert_allclose(got, lrn_reference(x, 2, 2.0, 1e-4, 0.75), rtol=2e-3)
    finally:
        keras.mixed_precision.set_global_policy(previous)


def test_rejects_bad_radius():
    with pytest.raises(ValueError, match="depth_radius=-1"):
        LocalResponseNormalization(depth_radius=-1)


def test_config_and_keras_file_round_trip(tmp_path):
    layer = LocalResponseNormalization(depth_radius=3, bias=1.5, alpha=2e-3, beta=0.6, name="n")
    clone = LocalResponseNormalization.from_config(layer.get_config())
    assert (clone.depth_radius, clone.bias, clone.alpha, clone.beta) == (3, 1.5, 2e-3, 0.6)

    inputs = keras.Input((4, 4, 6))
    model = keras.Model(inputs, layer(keras.layers.Conv2D(6, 3, padding="same")(inputs)))
    x = np.random.default_rng(2).standard_normal((2, 4, 4, 6)).astype("float32") * 10
    path = tmp_path / "lrn.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.layers[-1], LocalResponseNormalization)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(model(x))
    )
    from_json = keras.models.model_from_json(model.to_json())
    from_json.set_weights(model.get_weights())
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(from_json(x)), keras.ops.convert_to_numpy(model(x))
    )
