"""``kerascnn reproduce``'s arguments: the paper's setting behind ``--paper``, and no
TensorFlow at registration."""

import argparse
import subprocess
import sys

import pytest

from kerascnn.reproduce import _cli


def _settings(*argv):
    parser = argparse.ArgumentParser()
    _cli.register(parser.add_subparsers())
    return _cli.settings_from_args(parser.parse_args(["reproduce", *argv]))


def test_defaults_are_the_offline_budgeted_run():
    s = _settings("degradation")
    assert (s.data, s.iterations, s.epochs, s.budget_minutes) == ("fashion_mnist", None,
                                                                  None, None)
    assert (s.batch_size, s.lr, s.momentum, s.weight_decay) == (128, 0.1, 0.9, 1e-4)


def test_paper_setting():
    s = _settings("degradation", "--paper", "--strategy", "mirrored")
    # He et al. 2016, §4.2: 64k iterations of 128, lr 0.1, CIFAR-10, pad+crop+flip
    assert (s.data, s.iterations, s.batch_size, s.lr) == ("tfds:cifar10", 64000, 128, 0.1)
    assert (s.augment, s.precision, s.strategy) == ("cifar", "float32", "mirrored")
    assert s.iterations % s.points == 0 and s.test_examples == 10000
    s = _settings("shortcuts", "--paper", "--epochs", "3")
    assert (s.iterations, s.epochs, s.points) == (None, 3, 3)


def test_bad_values_are_refused():
    with pytest.raises(SystemExit):
        _settings("degradation", "--budget-minutes", "0")
    with pytest.raises(SystemExit):
        _settings("degradation", "--iterations", "10", "--epochs", "2")
    with pytest.raises(SystemExit):
        _settings("figure8")


def test_registering_imports_no_tensorflow():
    code = ("import argparse, sys; import kerascnn.reproduce._cli as c; "
            "c.register(argparse.ArgumentParser().add_subparsers()); "
            "print('tensorflow' in sys.modules or 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"
