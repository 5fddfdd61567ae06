"""`./dev test`'s two workers run a module whose tests share a module-scoped fixture on
one worker (the fixture is set up once), and spread the other tests over both: a small
suite with xdist_units.py's hooks (what conftest.py uses) under ``-n 2`` in a subprocess."""

import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

SHARED = '''
import os, pytest

@pytest.fixture(scope="module")
def shared():
    with open(os.environ["SETUPS"], "a") as f:
        f.write(os.environ["PYTEST_XDIST_WORKER"] + "\\n")
    return os.environ["PYTEST_XDIST_WORKER"]

@pytest.mark.parametrize("i", range(8))
def test_shared(shared, i):
    assert shared == os.environ["PYTEST_XDIST_WORKER"]
'''

CONFTEST = '''
from xdist_units import pytest_configure, pytest_unconfigure, pytest_xdist_make_scheduler, record_units

def pytest_collection_modifyitems(config, items):
    record_units(config, items)
'''

ALONE = '''
import os, time, pytest

@pytest.mark.parametrize("i", range(8))
def test_alone(i):
    with open(os.environ["RAN"], "a") as f:
        f.write(os.environ["PYTEST_XDIST_WORKER"] + "\\n")
    time.sleep(0.2)  # both workers ask for work while these run
'''


def test_a_module_fixture_is_set_up_once_and_the_rest_is_spread(tmp_path):
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "conftest.py").write_text(CONFTEST)
    (suite / "test_shared.py").write_text(SHARED)
    (suite / "test_alone.py").write_text(ALONE)
    (suite / "pytest.ini").write_text("[pytest]\n")  # the suite is its own rootdir
    env = dict(os.environ, SETUPS=str(tmp_path / "setups"), RAN=str(tmp_path / "ran"),
               PYTHONPATH=os.pathsep.join([HERE, os.environ.get("PYTHONPATH", "")]))
    env.pop("PYTEST_XDIST_WORKER", None)
    env.pop("KERASCNN_TEST_UNITS", None)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "-q", "-p", "no:cacheprovider",
                           str(suite)], cwd=suite, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "16 passed" in proc.stdout, proc.stdout[-2000:]
    setups = (tmp_path / "setups").read_text().split()
    assert len(setups) == 1, f"the module fixture was set up on {setups}"
    assert set((tmp_path / "ran").read_text().split()) == {"gw0", "gw1"}
