"""``kerascnn train [RECIPE] [overrides]``."""

from __future__ import annotations

import argparse
import sys

from kerascnn.training.strategy import PRECISIONS, STRATEGIES


def register(subparsers):
    p = subparsers.add_parser(
        "train",
        help="train a paper recipe (default: ResNet-20 on Fashion-MNIST, offline)",
        description="Trains, evaluates and exports a recipe from pipelines/ (a name "
        "such as resnet20_cifar10 or a .toml path; default fashion_mnist). Running "
        "the same command again after an interruption resumes it; after a completed "
        "run it starts a fresh one in runs/<recipe>-<n>.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("recipe", nargs="?", default=None,
                   help="recipe name under pipelines/ or a TOML file")
    p.add_argument("--epochs", type=int, help="override training.epochs")
    p.add_argument("--batch-size", type=int, help="override training.batch_size (per replica)")
    p.add_argument("--data-dir", help="where the data lives (tfds data_dir, IDX folder)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any recipe value, e.g. --set optimizer.learning_rate=0.05")
    p.add_argument("--precision", choices=PRECISIONS, help="override training.precision")
    p.add_argument("--strategy", choices=STRATEGIES, default="auto",
                   help="tf.distribute strategy, or under jax keras.distribution."
                   "DataParallel (auto: multi-worker from TF_CONFIG or, jax, "
                   "KERAS_DISTRIBUTION_NUM_PROCESSES; mirrored over several devices; "
                   "else one device)")
    p.add_argument("--init-from", help="VGG warm start: a trained config-A .keras file")
    p.add_argument("--output-dir", help="run directory (default runs/<recipe>)")
    p.add_argument("--export-dir", default="saved_models", help="TF Serving base folder")
    p.add_argument("--no-export", action="store_true", help="skip the SavedModel export")
    p.add_argument("--verbose", type=int, choices=(0, 1, 2), default=None,
                   help="Keras fit verbosity (default: progress bars)")
    p.set_defaults(func=run)


def run(args) -> int:
    from kerascnn.training.recipe import load_recipe

    overrides = list(args.set)
    if args.epochs is not None:
        overrides.append(("training.epochs", args.epochs))
    if args.batch_size is not None:
        overrides.append(("training.batch_size", args.batch_size))
    # A bad recipe (RecipeError), path (SetupError) or a held run folder (RunLocked)
    # is found before any data is read: kerascnn.cli prints it as one line.
    recipe = load_recipe(args.recipe, overrides)
    from kerascnn.training.trainer import train

    result = train(recipe, output_dir=args.output_dir, strategy=args.strategy,
                   precision=args.precision, init_from=args.init_from,
                   data_dir=args.data_dir, export_dir=args.export_dir,
                   export=not args.no_export,
                   verbose="auto" if args.verbose is None else args.verbose)
    if result.diverged:
        print(f"kerascnn train: error: {result.message}", file=sys.stderr)
        return 1
    return 0
