"""The ``kerascnn`` command.

Each sub-command lives next to the code it drives, in ``kerascnn/<package>/_cli.py``,
which exposes ``register(subparsers)``: it adds its parser(s) and sets
``func=<callable(args) -> int>`` on them. This module only wires them together, so
that ``kerascnn --help`` stays fast and a sub-package's command changes in one place.
"""

from __future__ import annotations

import argparse
import importlib
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
    "kerascnn.export._cli",  # export, predict
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kerascnn",
        description="The classic ImageNet CNNs in Keras 3, faithful to their papers.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:  # a sub-package without commands yet
            if err.name == module_name:
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
