"""A tiny image-folder dataset of real PNG files and a tiny recipe over it (shared by
the training tests; conftest.py turns them into fixtures)."""

import os

import numpy as np
from PIL import Image

COLOURS = {"red": (200, 40, 40), "green": (40, 200, 40), "blue": (40, 40, 200)}


def make_folder(root, per_class_train=16, per_class_test=6, size=16, seed=0):
    rng = np.random.default_rng(seed)
    for split, n in (("train", per_class_train), ("test", per_class_test)):
        for name, colour in COLOURS.items():
            folder = os.path.join(root, split, name)
            os.makedirs(folder, exist_ok=True)
            for i in range(n):
                noise = rng.integers(-40, 40, (size, size, 3))
                img = np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)
                Image.fromarray(img).save(os.path.join(folder, f"{i}.png"))
    return root


# The network is not what these runs test (the driver is): AlexNet's four-layer
# Figure 1 net (kerascnn.applications.AlexNetFig1: 3 convolutions, 1 dense layer, no
# batch norm), whose train step traces several times faster than ResNet-20's ~65 layers.
TINY = """
name = "tiny"
departures = "a test recipe"
[model]
name = "alexnet_fig1"
[data]
source = "{source}"
train_split = "train"
validation_split = "test"
test_split = "test"
policy = "cifar"
image_size = 16
mean = "rgb"
pca = "none"
[optimizer]
learning_rate = {lr}
weight_decay = 1e-4
[schedule]
name = "plateau"
patience = 1
[training]
epochs = {epochs}
batch_size = {batch}
steps_per_epoch = {steps}
seed = 0
jit_compile = "false"
"""


def kill_when(cmd, cwd, env, marker, log_path, timeout):
    """Runs ``cmd`` until the file ``marker`` appears (or it ends, or ``timeout`` s
    pass), then SIGKILLs it: ``(returncode, what it printed)``."""
    import subprocess
    import time

    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while not os.path.exists(marker) and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        proc.kill()
        proc.wait(timeout=60)
    with open(log_path) as log:
        return proc.returncode, log.read()


# A process that has imported TensorFlow, Keras and kerascnn's training once, and
# forks a child for each ``kerascnn`` command a test runs and kills: the child is a
# process of its own (SIGKILL ends it, what it left on disk is what the test reads)
# without paying the ~6 CPU-s of the imports again. The server runs no TensorFlow op
# before it forks (no thread pool exists yet), so each child starts as a fresh
# ``python -m kerascnn.cli`` would after its imports.
_FORK_SERVER = r'''
import importlib, json, os, sys, traceback
import tensorflow, keras
import kerascnn.cli, kerascnn.training._cli, kerascnn.training.trainer, kerascnn.export
for name in sys.argv[1:]:
    importlib.import_module(name)
requests, replies = sys.stdin, sys.stdout
replies.write("ready\n"); replies.flush()
for line in requests:
    req = json.loads(line)
    if "wait" in req:
        _, status = os.waitpid(req["wait"], 0)
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        replies.write(json.dumps(code) + "\n"); replies.flush()
        continue
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.chdir(req["cwd"])
            os.umask(req["umask"])
            os.environ.update(req["env"])
            for fd, path in ((1, req["log"]), (2, req["err"] or req["log"])):
                out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                os.dup2(out, fd); os.close(out)
            null = os.open(os.devnull, os.O_RDONLY); os.dup2(null, 0); os.close(null)
            if req["script"]:  # a test's own script, as `python script args...`
                import runpy
                sys.argv = [req["script"]] + req["cmd"]
                runpy.run_path(req["script"], run_name="__main__")
                code = 0
            else:
                sys.argv = ["kerascnn"] + req["cmd"]
                code = kerascnn.cli.main(req["cmd"])
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush(); sys.stderr.flush()
            os._exit(code)
    replies.write(json.dumps(pid) + "\n"); replies.flush()
'''


class ForkServer:
    """``start(cmd, cwd, log)`` runs ``kerascnn <cmd>`` in a forked child of one
    pre-imported process (see ``_FORK_SERVER``) and returns its pid; ``wait(pid)``
    returns its exit code as ``subprocess`` gives it (``-9`` after a SIGKILL)."""

    def __init__(self, env=None, preload=()):
        import subprocess
        import sys

        self.proc = subprocess.Popen([sys.executable, "-c", _FORK_SERVER, *preload], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, bufsize=1)
        printed = []  # anything an import prints on stdout comes before "ready"
        while not printed or printed[-1].strip() != "ready":
            printed.append(self.proc.stdout.readline())
            if not printed[-1]:
                self.close()
                raise RuntimeError(f"the fork server did not start: {''.join(printed)!r}")

    def _ask(self, request):
        import json

        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def start(self, cmd, cwd, log, umask=0o022, env=None, err=None, script=None):
        """Forks a child that runs ``kerascnn <cmd>`` (or, with ``script``, the Python
        file ``script`` with the arguments ``cmd``) in ``cwd`` under ``umask`` with
        ``env`` added to its environment, its stdout appended to the file ``log``,
        its stderr to ``err`` (default ``log``). Returns its pid."""
        for path in (log, err):
            if path is not None:
                open(path, "w").close()
        return self._ask({"cmd": [str(c) for c in cmd], "cwd": str(cwd), "log": str(log),
                          "err": str(err) if err else None, "umask": umask,
                          "env": dict(env or {}), "script": str(script) if script else None})

    @staticmethod
    def running(pid):
        """Whether the child ``pid`` still runs (not ended, or ended and not reaped)."""
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except FileNotFoundError:
            return False

    def wait(self, pid, timeout=None):
        """The exit code of ``pid`` (SIGKILLed after ``timeout`` s if still running)."""
        import signal
        import time

        deadline = None if timeout is None else time.time() + timeout
        while self.running(pid) and (deadline is None or time.time() < deadline):
            time.sleep(0.05)
        if self.running(pid):
            os.kill(pid, signal.SIGKILL)
        return self._ask({"wait": pid})

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)

    def kill_when(self, script, cwd, marker, log_path, timeout):
        """:func:`kill_when` for ``python -c script``, forked from this server."""
        import signal
        import time

        path = os.path.join(os.path.dirname(str(log_path)), "killed_script.py")
        with open(path, "w") as f:
            f.write(script)
        pid = self.start([], cwd, log_path, script=path)
        deadline = time.time() + timeout
        while not os.path.exists(marker) and self.running(pid) and time.time() < deadline:
            time.sleep(0.05)
        if self.running(pid):
            os.kill(pid, signal.SIGKILL)
        code = self.wait(pid)
        with open(log_path) as log:
            return code, log.read()
