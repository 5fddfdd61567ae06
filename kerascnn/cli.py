"""The ``kerascnn`` command.

Each sub-command lives next to the code it drives, in ``kerascnn/<package>/_cli.py``,
which exposes ``register(subparsers)``: it adds its parser(s) and sets
``func=<callable(args) -> int>`` on them. This module only wires them together.

``kerascnn --help`` (and every ``kerascnn <command> --help``) imports no TensorFlow:
a ``_cli.py`` imports only the standard library at module level and in
``register()``, and its command imports the rest when it runs. The package
``__init__`` files above them do import TensorFlow (``kerascnn.data`` exports its
ops), so :func:`_load_commands` loads each ``_cli.py`` file under its module name
without running its package's ``__init__``; the package is imported normally, by the
command, when it runs.

Errors, one style for every command: a command reports a user's mistake by raising
``ValueError`` or ``OSError`` (``FileNotFoundError``, ``FileExistsError``,
``PermissionError`` ...) with a message that names the file or argument and what to
do; :func:`main` prints it on stderr as one line, ``kerascnn <command>: error:
<message>``, and returns 2, as argparse does for a bad argument (a command never
prints its own refusal). TensorFlow's runtime errors (an ``OpError``: e.g. a file that
fails to decode) get the same treatment with the first line of their message, and
Ctrl-C ends with one line and status 130. A command that ran but failed for some of
its inputs (``predict``/``explain``: a file that cannot be read, named in the same
one-line form while the others are answered) or whose training diverged returns 1.
``kerascnn --debug <command>`` (or ``--debug`` after the command) shows the full
traceback instead.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys

# Before any sub-command imports TensorFlow (every sub-command runs through here, so
# this is the one place that sets it): keep its C++ INFO chatter out of the way,
# but not its warnings: tf.data's ``ignore_errors`` reports an image that fails to
# decode mid-stream (after passing the listing's header checks) as a WARNING, and a
# skipped image must never be silent. Set TF_CPP_MIN_LOG_LEVEL=2 to hide those too.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

# Order is the order of ``kerascnn --help``: the story of the data.
_COMMAND_MODULES = (
    "kerascnn.applications._cli",  # models
    "kerascnn.data._cli",  # show-augmentations, dataset-stats
    "kerascnn.training._cli",  # train
    "kerascnn.evaluation._cli",  # evaluate
    "kerascnn.explain._cli",  # explain, show-filters
    "kerascnn.export._cli",  # export, predict
    "kerascnn.reproduce._cli",  # reproduce
)

EXIT_ERROR = 2  # a refused command: argparse's status for a bad argument
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a process ended by Ctrl-C


def _load_commands(module_name: str):
    """The module ``kerascnn.<package>._cli``, loaded from its file without running
    ``kerascnn/<package>/__init__.py`` (which may import TensorFlow). An already
    imported module is reused, so later ``from kerascnn.<package>._cli import ...``
    gets this same module."""
    if module_name in sys.modules:
        return sys.modules[module_name]
    root = os.path.dirname(os.path.abspath(__file__))  # the kerascnn package
    parts = module_name.split(".")
    if parts[0] != "kerascnn":
        raise ValueError(f"Not a kerascnn module. Received: {module_name!r}")
    path = os.path.join(root, *parts[1:]) + ".py"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


class _Parser(argparse.ArgumentParser):
    """argparse's parser with kerascnn's one error line: a bad argument prints
    ``kerascnn <command>: error: <message>`` on stderr (no usage block) and exits 2,
    as every other refusal does. Sub-command parsers are of this class too."""

    def error(self, message):
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="kerascnn",
        description="The classic ImageNet CNNs in Keras 3, faithful to their papers.",
    )
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error")
    parser.add_argument("--backend", choices=("tensorflow", "jax"), default=None,
                        help="the Keras backend (sets KERAS_BACKEND; default: KERAS_BACKEND "
                        "or ~/.keras/keras.json). Under jax TensorFlow still reads the data "
                        "and writes the SavedModel; --strategy mirrored/multi_worker use "
                        "keras.distribution.DataParallel")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in _COMMAND_MODULES:
        _load_commands(module_name).register(subparsers)
    for sub in subparsers.choices.values():  # `kerascnn evaluate ... --debug` too
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                         help="show the full traceback of an error")
    return parser


def _user_error(err: BaseException) -> str | None:
    """The one-line message for an error a user can fix, else None (a bug: the
    traceback is shown)."""
    if isinstance(err, OSError) and err.strerror and err.filename:
        return f"{err.filename}: {err.strerror}"
    if isinstance(err, (ValueError, OSError)):
        text = str(err).strip()
        return text or type(err).__name__
    tf = sys.modules.get("tensorflow")
    errors = getattr(tf, "errors", None)
    if errors is not None and isinstance(err, errors.OpError):
        lines = (err.message or "").strip().splitlines()
        return f"TensorFlow: {lines[0] if lines else type(err).__name__}"
    return None


def unsupported(args) -> str | None:
    """The one-line reason the parsed command cannot run on the current backend, or
    None. May adjust ``args`` where the meaning is unambiguous."""
    from kerascnn import _backend

    backend = _backend.current()
    if backend == "tensorflow":
        return None
    strategy = getattr(args, "strategy", None)
    if strategy is not None and getattr(args, "command", None) in ("train", "reproduce",
                                                                   "evaluate"):
        from kerascnn.training import strategy as st

        if strategy == "auto" and st.tf_config_workers() > 1 and st.jax_processes() <= 1:
            return (f"TF_CONFIG names several workers (multi-worker tf.distribute "
                    f"training); under the {backend} backend multi-worker training reads "
                    f"{', '.join(st.JAX_ENV)} instead: set those (and unset TF_CONFIG), "
                    "or use --backend tensorflow")
        if strategy == "multi_worker" or (strategy == "auto" and st.jax_processes() > 1):
            problem = st.jax_multi_worker_problem()
            if problem:
                return problem
    sets = getattr(args, "set", None)
    if getattr(args, "command", None) == "train" and isinstance(sets, list):
        # A recipe's jit_compile = "false" keeps TensorFlow off XLA; Keras' JAX backend
        # has no compiled path without XLA (false runs every op eagerly, ~50x slower).
        if not any(str(s).split("=", 1)[0].strip() == "training.jit_compile" for s in sets):
            sets.insert(0, "training.jit_compile=auto")
            print(f"kerascnn train: under {backend} every step is XLA-compiled "
                  "(training.jit_compile=auto); --set training.jit_compile=false runs "
                  "op by op", file=sys.stderr)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        from kerascnn import _backend

        _backend.select(args.backend)  # before any command imports Keras
        reason = unsupported(args)
        if reason:
            print(f"kerascnn {args.command}: error: {reason}", file=sys.stderr)
            return EXIT_ERROR
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"\nkerascnn {args.command}: interrupted (Ctrl-C)", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:
        message = None if args.debug else _user_error(err)
        if message is None:
            raise
        print(f"kerascnn {args.command}: error: {message}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
