"""Markers of the layer tests (``tf_only``: compares with a TensorFlow op, so the
KERAS_BACKEND=jax run of tests/applications/test_jax_backend.py deselects it)."""


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "tf_only: needs the TensorFlow backend (skipped by the jax run)"
    )
