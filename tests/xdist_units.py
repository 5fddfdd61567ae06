"""How `./dev test`'s two workers share the suite (pytest-xdist ``-n 2``).

xdist's default ``load`` sends each worker a fixed share of the suite up front, so the
long tests clumped on one of them. Here the workers draw from one queue, one *unit* at a
time, in collection order (conftest.py puts the longest first): a unit is a test, or a
module's tests when they share a module-scoped fixture (they stay on one worker, so the
fixture runs once), or a folder's tests that share a session-scoped process.

The units are computed here, not by xdist's ``loadgroup``: that one renames each marked
test ``nodeid@group`` through ``item._nodeid``, which pytest 9.2 no longer reads (a
node's id is ``item._id`` there), so every module was split over both workers and ran
its module-scoped fixtures twice, silently. Instead each worker writes the units it
collected to a file the controller names (``$KERASCNN_TEST_UNITS``), and the
controller's scheduler, xdist's scope scheduling, reads them when all workers have
collected. An explicit ``--dist`` is left as given. tests/test_scheduling.py checks it.

conftest.py imports the three hooks and calls :func:`record_units`.
"""

import json
import os

import pytest

ENV = "KERASCNN_TEST_UNITS"


def _controller(config):
    return (getattr(config.option, "dist", "no") == "load"
            and config.getoption("numprocesses", None) and not hasattr(config, "workerinput"))


def pytest_configure(config):
    if _controller(config):
        import tempfile

        folder = tempfile.mkdtemp(prefix="kerascnn-units-")
        os.environ[ENV] = os.path.join(folder, "units.json")  # the workers inherit it
        config._kerascnn_units = folder
        config.option.loadscopereorder = False  # collection order, not the units' sizes


def pytest_unconfigure(config):
    folder = getattr(config, "_kerascnn_units", None)
    if folder is not None:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
        os.environ.pop(ENV, None)  # names the folder just removed


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    if getattr(config, "_kerascnn_units", None) is None:
        return None
    from xdist.scheduler import LoadScopeScheduling

    class Units(LoadScopeScheduling):
        """xdist's scope scheduling (a unit goes whole to one worker; a worker gets the
        next unit when it has at most two tests left) over the workers' units."""

        units = None

        def _split_scope(self, nodeid):
            if self.units is None:  # first called once every worker has collected
                with open(os.environ[ENV]) as f:
                    self.units = json.load(f)
            return self.units.get(nodeid, nodeid)

    return Units(config, log)


def _shares_a_module_fixture(item):
    info = getattr(item, "_fixtureinfo", None)
    return info is not None and any(
        defs and defs[-1].scope in ("module", "class", "package")
        for defs in (info.name2fixturedefs.get(n) for n in info.names_closure))


def record_units(config, items, folders=()):
    """In an xdist worker, writes ``{nodeid: unit}`` for the tests that are not units of
    their own: those under one of ``folders`` (the folder is the unit) and those that
    share a module-scoped fixture (the module is)."""
    path = os.environ.get(ENV)
    if not path or not hasattr(config, "workerinput"):
        return
    units = {}
    for item in items:
        folder = next((f for f in folders if item.nodeid.startswith(f)), None)
        if folder is not None:
            units[item.nodeid] = folder
        elif _shares_a_module_fixture(item):
            units[item.nodeid] = item.nodeid.split("::")[0]
    part = f"{path}.{config.workerinput['workerid']}"
    with open(part, "w") as f:  # the workers collect the same tests: the same file
        json.dump(units, f)
    os.replace(part, path)
