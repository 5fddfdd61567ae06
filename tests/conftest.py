"""Shared test set-up: quiet TensorFlow, a deterministic seed, and the order in which
`./dev test`'s two workers take the tests."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# JAX's own switch for its test suites: XLA compiles without most of its optimisation
# passes (LLVM's backend at level 0, the expensive passes off). Every JAX test runs the
# same programs, less optimised; they are dominated by compiles (each initialiser of a
# network is one, GoogLeNet's about 50 CPU-s), which this shortens: the JAX tests took
# 574 worker-seconds instead of 864 in two whole runs of the suite on the same day (-n 2;
# test_zoo_jax 125 instead of 242). TensorFlow does not read it (XLA_FLAGS'
# --xla_backend_optimization_level=0, which both read, cost the TensorFlow tests what
# it saved the JAX ones). Subprocesses inherit it.
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")

import pytest  # noqa: E402
from xdist_units import (  # noqa: E402,F401  (the hooks of ./dev test's scheduling)
    pytest_configure, pytest_unconfigure, pytest_xdist_make_scheduler, record_units)


@pytest.fixture(autouse=True)
def _seed():
    import keras

    keras.utils.set_random_seed(1234)
    yield


# `./dev test`'s two workers draw units of tests from one queue (xdist_units.py), in
# the order below: the longest first.
_FIRST = (
    "tests/test_readme.py::test_readme_section_runs",
    "tests/applications/test_zoo_jax.py",
    "tests/training/test_jax_distribution.py",
    "tests/benchmarks/test_throughput.py::test_tensorflow_every",
    "tests/training/test_resume.py",
    "tests/reproduce/",
    "tests/training/test_jax_backend.py",
    "tests/benchmarks/test_throughput.py::test_compare",
    "tests/benchmarks/test_throughput.py::test_devices",
    "tests/training/test_distribution.py",
    "tests/weights/test_finetune.py",
    "tests/export/",
    "tests/training/",
    "tests/test_install.py",
    "tests/test_serializables.py",
)


# Folders whose tests share a session-scoped process (tests/export: the TensorFlow-only
# serving process; tests/reproduce: the fork server of the killed studies): one unit
# each, on one worker, so that the process starts once.
_SESSION_GROUPS = ("tests/export/", "tests/reproduce/")


def pytest_collection_modifyitems(config, items):
    rank = lambda item: next((i for i, p in enumerate(_FIRST) if item.nodeid.startswith(p)),  # noqa: E731
                             len(_FIRST))
    items.sort(key=rank)
    record_units(config, items, _SESSION_GROUPS)


def pytest_collection_finish(session):
    """What collection imported (TensorFlow, Keras, the package: millions of objects)
    lives until the worker ends: moved out of the garbage collector's reach, so that
    each full collection (Keras' clear_session, Python's own) costs milliseconds
    instead of ~0.2 CPU-s."""
    import gc

    gc.collect()
    gc.freeze()


def pytest_runtest_teardown(item, nextitem):
    """Keras' global state (names, the TensorFlow graph's functions and caches) freed
    after each module's last test: a long-lived worker otherwise carries every earlier
    module's models into the next module's tracing."""
    if nextitem is None or nextitem.module is not item.module:
        import gc
        import sys

        keras = sys.modules.get("keras")
        if keras is not None:
            keras.backend.clear_session()  # collects the garbage too
        else:
            gc.collect()
