"""Markers of the application tests, and the backend guard of the jax run.

``tf_only``: needs the TensorFlow backend (compares with a TF op, or is covered under
jax by a smaller test); the KERAS_BACKEND=jax run of ``test_zoo_jax.py`` deselects it,
and the ``slow`` tests (full-size builds, the networks outside the jax subset).
"""

import os


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "tf_only: needs the TensorFlow backend (skipped by the jax run)"
    )
    expected = os.environ.get("KERASCNN_EXPECT_BACKEND")
    if expected:
        import keras
        import pytest

        if keras.backend.backend() != expected:
            raise pytest.UsageError(
                f"expected the {expected} backend, got {keras.backend.backend()}"
            )
