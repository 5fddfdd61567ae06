import numpy as np
import pytest

from kerascnn.data import from_arrays, load_source, stats


def test_imagenet_defaults():
    # keras imagenet_utils' "caffe" mode subtracts BGR (103.939, 116.779, 123.68): one
    # constant, the keras.applications weights' mean as well.
    from kerascnn.weights.origins import KERAS_APPLICATIONS, get_origin

    assert stats.IMAGENET_MEAN_RGB == tuple(reversed((103.939, 116.779, 123.68)))
    assert get_origin(KERAS_APPLICATIONS).mean_rgb is stats.IMAGENET_MEAN_RGB
    np.testing.assert_allclose(stats.IMAGENET_PCA_EIGVAL,
                               np.array([0.2175, 0.0188, 0.0045]) * 255)
    vec = np.array(stats.IMAGENET_PCA_EIGVEC)
    np.testing.assert_allclose(vec.T @ vec, np.eye(3), atol=2e-3)  # orthonormal


def test_mean_and_pca_match_numpy(rng):
    # correlated colours so that the covariance has a clear principal axis
    base = rng.normal(120, 40, (30, 8, 10, 1))
    noise = rng.normal(0, [5, 10, 3], (30, 8, 10, 3))
    images = np.clip(base + noise, 0, 255).astype(np.uint8)
    src = from_arrays(images, np.zeros(30), ["x"])
    pixels = images.reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(stats.compute_mean(src), pixels.mean(0), rtol=1e-6)
    np.testing.assert_allclose(stats.compute_mean(src, per_pixel=True),
                               images.mean(0), rtol=1e-5)
    eigval, eigvec = stats.compute_pca(src)
    ref_val, ref_vec = np.linalg.eigh(np.cov(pixels.T / 255.0, bias=True))
    np.testing.assert_allclose(eigval, 255 * ref_val[::-1], rtol=1e-6)
    for i in range(3):  # eigenvectors up to sign
        assert abs(abs(eigvec[:, i] @ ref_vec[:, 2 - i]) - 1) < 1e-6
    assert eigval[0] > eigval[1] > eigval[2]


def test_per_pixel_mean_of_padded_folder_images(image_folder):
    src = load_source(str(image_folder))
    with pytest.raises(ValueError, match="image_size=None"):
        stats.compute_mean(src, per_pixel=True)
    mean = stats.compute_mean(src, per_pixel=True, image_size=(64, 64))
    assert mean.shape == (64, 64, 3)
    assert (mean[0] == 0).all()  # every image is < 64 high: zero padding at top
    assert 0 < mean[32, 32].min() < 255
    with pytest.raises(ValueError, match="channels=1"):
        stats.compute_pca(from_arrays(np.zeros((2, 4, 4, 1), np.uint8), [0, 0], ["a"]))
