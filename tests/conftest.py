"""Shared test set-up: quiet TensorFlow, a deterministic seed, and small thread pools
so that tests behave the same on the 2-core CI machine."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    import keras

    keras.utils.set_random_seed(1234)
    yield


# The longest tests first: with `./dev test`'s two workers (pytest-xdist), one of
# them starts the README walk-through at once while the other takes the rest.
_FIRST = ("tests/test_readme.py", "tests/benchmarks/test_throughput.py::test_compare")


def pytest_collection_modifyitems(config, items):
    rank = lambda item: next((i for i, p in enumerate(_FIRST) if item.nodeid.startswith(p)),  # noqa: E731
                             len(_FIRST))
    items.sort(key=rank)
