"""The ``kerascnn`` command itself: its help imports no
TensorFlow; a user's mistake ends with one line naming the file or argument
(``kerascnn <command>: error: ...``) and a non-zero status, the traceback only with
``--debug``; Ctrl-C ends with one line too."""

import os
import signal
import subprocess
import sys

import keras
import pytest

from kerascnn.cli import main

pytestmark = pytest.mark.tf_only

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")

HELP = r"""
import contextlib, io, sys
import kerascnn.cli as cli

parser = cli.build_parser()
commands = sorted(parser._subparsers._group_actions[0].choices)
for argv in [["--help"]] + [[c, "--help"] for c in commands]:
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            parser.parse_args(argv)
        except SystemExit:
            pass
heavy = [m for m in ("tensorflow", "keras", "jax", "torch") if m in sys.modules]
print(",".join(commands)); print(",".join(heavy) or "-")
"""


def test_help_of_every_command_imports_no_tensorflow():
    proc = subprocess.run([sys.executable, "-c", HELP], capture_output=True, text=True,
                          env=ENV, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    commands, heavy = proc.stdout.strip().splitlines()[-2:]
    assert {"models", "train", "evaluate", "export", "predict"} <= set(commands.split(","))
    assert heavy == "-", f"building the parser imported {heavy}"


def _one_line(capsys, command):
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"kerascnn {command}: error: "), err
    assert "Traceback" not in captured.out + captured.err
    return err


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 1))
    x = keras.layers.GlobalAveragePooling2D()(inp)
    model = keras.Model(inp, keras.layers.Dense(3, activation="softmax")(x), name="tiny")
    good = d / "tiny.keras"
    model.save(str(good))
    data = good.read_bytes()
    (d / "truncated.keras").write_bytes(data[: len(data) // 2])
    (d / "text.keras").write_text("not a model\n")
    return d


@pytest.mark.parametrize("name,expected", [
    ("missing.keras", "missing.keras: no such model file"),
    ("truncated.keras", "truncated.keras is not a complete .keras file"),
    ("text.keras", "text.keras is not a complete .keras file"),
])
def test_evaluate_bad_model_file_is_one_line(files, capsys, name, expected):
    assert main(["evaluate", "--model", str(files / name)]) == 2
    assert expected in _one_line(capsys, "evaluate")


def test_debug_shows_the_traceback(files):
    for argv in (["--debug", "evaluate", "--model", str(files / "missing.keras")],
                 ["evaluate", "--model", str(files / "missing.keras"), "--debug"]):
        with pytest.raises(ValueError, match="no such model file"):
            main(argv)


def test_export_of_an_existing_version_is_refused_before_loading(files, tmp_path, capsys):
    base = str(tmp_path / "sm")
    name = os.path.basename(str(files))  # the model's folder names the export
    assert main(["export", str(files / "tiny.keras"), "--export-dir", base]) == 0
    capsys.readouterr()
    pb = os.path.join(base, name, "1", "saved_model.pb")
    before = os.stat(pb).st_mtime_ns
    assert main(["export", str(files / "tiny.keras"), "--export-dir", base,
                 "--version", "1"]) == 2
    err = _one_line(capsys, "export")
    assert os.path.join(base, name, "1") in err and "--version" in err
    assert os.stat(pb).st_mtime_ns == before
    # a truncated file is named before anything is written
    assert main(["export", str(files / "truncated.keras"), "--export-dir", base]) == 2
    assert "truncated.keras" in _one_line(capsys, "export")
    assert sorted(os.listdir(os.path.join(base, name))) == ["1"]


def test_arch_that_contradicts_the_file_is_refused(tmp_path, capsys):
    from kerascnn.applications import ResNet20
    from kerascnn.evaluation.loading import check_arch

    net = ResNet20(input_shape=(32, 32, 1), classes=10)
    path = tmp_path / "resnet20.keras"
    net.save(str(path))
    assert main(["evaluate", "--model", str(path), "--arch", "alexnet"]) == 2
    err = _one_line(capsys, "evaluate")
    assert "--arch alexnet contradicts" in err and "resnet20" in err
    assert check_arch(net, "resnet20") == "resnet20"
    # a renamed network is compared by its layers
    renamed = keras.Model(net.inputs, net.outputs, name="my_net")
    assert check_arch(renamed, "resnet20") == "resnet20"
    with pytest.raises(ValueError, match="--arch resnet32 contradicts"):
        check_arch(renamed, "resnet32")
    with pytest.raises(ValueError, match="resnet2000"):
        check_arch(renamed, "resnet2000")


def test_bad_numbers_are_one_line(files, capsys):
    good = str(files / "tiny.keras")
    for argv, needle in ((["evaluate", "--model", good, "--pad", "two"], "--pad two"),
                         (["evaluate", "--model", good, "--batch-size", "0"], "batch_size=0"),
                         (["evaluate", "--model", good, "--mean", "1,x"], "--mean 1,x"),
                         (["predict", "x.png", "--model", good, "-k", "0"], "k=0")):
        assert main(argv) == 2
        assert needle in _one_line(capsys, argv[0])


# `python -m kerascnn.cli ARGS` as a terminal's shell starts it: SIGINT unblocked and
# Python's own handler on it, whatever the pytest worker that starts the child has. A
# process inherits an ignored signal across exec, and a suite started as a background
# job of a non-interactive shell (`... &`, as POSIX shells do) has SIGINT ignored until
# something in the worker puts a handler back (the notebook test's Jupyter client
# does): the child then read the end of the pipe as if no Ctrl-C had come, depending on
# which tests the worker had run first.
AS_FROM_A_TERMINAL = (
    "import runpy, signal, sys; "
    "signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT}); "
    "signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.argv[0] = 'kerascnn'; "
    "runpy.run_module('kerascnn.cli', run_name='__main__', alter_sys=True)")


def _taken(pid, signum, timeout=10.0):
    """Waits until ``signum`` is no longer pending for the process ``pid`` (one of its
    threads has run the handler: /proc's SigPnd/ShdPnd masks), plus a moment for the
    C handler to return."""
    import time

    bit = 1 << (signum - 1)
    deadline = time.time() + timeout
    while time.time() < deadline:
        with open(f"/proc/{pid}/status") as f:
            masks = dict(line.split(":", 1) for line in f if line.startswith(("SigPnd", "ShdPnd")))
        if not any(int(v, 16) & bit for v in masks.values()):
            break
        time.sleep(0.005)
    time.sleep(0.1)


def test_ctrl_c_is_one_line(files, tmp_path):
    """A real SIGINT while ``kerascnn predict`` reads its image: the image is a
    named pipe, so the parent knows the child is reading once its own open for
    writing returns (no timing)."""
    fifo = str(tmp_path / "image.png")
    os.mkfifo(fifo)
    proc = subprocess.Popen(
        [sys.executable, "-c", AS_FROM_A_TERMINAL, "predict", fifo, "--model",
         str(files / "tiny.keras")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=ENV)
    try:
        with open(fifo, "wb"):  # returns once the child has opened the pipe to read
            proc.send_signal(signal.SIGINT)
            _taken(proc.pid, signal.SIGINT)
        # Closed once the signal has been taken: Python raises KeyboardInterrupt in the
        # read (EINTR), or at its next line if the child was between the open and the
        # read.
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert err.strip().splitlines()[-1] == "kerascnn predict: interrupted (Ctrl-C)"
