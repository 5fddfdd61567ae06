"""The process the studies' killed runs are forked from (tinyrun.ForkServer): each
killed study is a process of its own (SIGKILL ends it) without importing TensorFlow,
Keras and kerascnn again."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "training"))


@pytest.fixture(scope="session")
def forks():
    from tinyrun import ForkServer

    server = ForkServer(env=dict(os.environ),
                        preload=("kerascnn.reproduce.runner", "kerascnn.reproduce.studies"))
    yield server
    server.close()
