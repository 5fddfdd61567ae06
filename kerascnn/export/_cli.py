"""``kerascnn export`` and ``kerascnn predict``.

Imports nothing heavy at module level (``kerascnn --help`` must not load
TensorFlow); a user's mistake is raised as ``ValueError``/``OSError`` with a message
naming the file or argument, which ``kerascnn.cli.main`` prints as one line.
"""

from __future__ import annotations

import argparse
import os
import sys


def register(subparsers):
    p = subparsers.add_parser(
        "export", help="export a trained .keras model to saved_models/ for TF Serving",
        description="Writes <export-dir>/<name>/<version>/ (TF Serving's layout; the "
        "next integer version unless --version; never overwrites) and updates "
        "<export-dir>/models.config. The evaluation preprocessing and class names come "
        "from preprocessing.json in the model's folder or the one above (a kerascnn "
        "run directory); without one, images are resized (shorter side to the input "
        "size) and centre-cropped, with no mean subtracted.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("model", help="a .keras file (e.g. runs/fashion_mnist/checkpoints/best.keras)")
    p.add_argument("--name", help="TF Serving model name (default: the run directory's name)")
    p.add_argument("--version", type=int, help="version number (default: next integer)")
    p.add_argument("--export-dir", default="saved_models", help="TF Serving base folder")
    p.add_argument("--serving-base-path", default="/models",
                   help="where the export folder is mounted in the TF Serving container")
    p.set_defaults(func=run_export)

    q = subparsers.add_parser(
        "predict", help="top-5 classes of image files from an export or a .keras file",
        description="Prints the top classes of each image file. A file that cannot be "
        "read or decoded is named on stderr and the others are still answered (exit "
        "status 1 when any failed).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    q.add_argument("images", nargs="+", help="JPEG/PNG/GIF/BMP files")
    q.add_argument("--model", default=os.path.join("saved_models", "fashion_mnist"),
                   help="an export (saved_models/<name>[/<version>]) or a .keras file")
    q.add_argument("-k", type=int, default=5, help="how many classes to show")
    q.set_defaults(func=run_predict)


def _default_name(model_path):
    folder = os.path.dirname(os.path.abspath(model_path))
    if os.path.basename(folder) == "checkpoints":
        folder = os.path.dirname(folder)
    return os.path.basename(folder)


def run_export(args) -> int:
    if not args.model.endswith(".keras"):
        raise ValueError(f"expected a .keras file. Received: model={args.model!r}")
    from kerascnn.data.preprocessing import Preprocessing
    from kerascnn.evaluation.loading import load_keras_model
    from kerascnn.export import serving_config
    from kerascnn.export.saved_model import default_preprocessing, export_model

    name = args.name or _default_name(args.model)
    serving_config.check_name(name)  # before loading the model
    if args.version is not None:
        if args.version < 0:
            raise ValueError(f"`--version` must be >= 0. Received: version={args.version}")
        final = os.path.join(args.export_dir, name, str(args.version))
        if os.path.exists(final):  # checked before the model is loaded
            raise FileExistsError(f"{final} exists; an export is never overwritten: leave "
                                  f"--version out for the next one. Received: version={args.version}")
    model = load_keras_model(args.model)
    prep, names = Preprocessing.find(args.model)
    if prep is None:
        prep = default_preprocessing(model)
        print(f"kerascnn export: no preprocessing.json next to {args.model} or one folder "
              f"up: serving resizes the shorter side to {prep.resize}, crops the centre, "
              "subtracts no mean, and names classes by number", file=sys.stderr)
    path = export_model(model, name, base_dir=args.export_dir, version=args.version,
                        preprocessing=prep, class_names=names,
                        serving_base_path=args.serving_base_path)
    print(f"TF Serving config: {os.path.join(args.export_dir, 'models.config')}")
    return 0 if path else 1


def run_predict(args) -> int:
    if args.k < 1:
        raise ValueError(f"`-k` must be >= 1. Received: k={args.k}")
    from kerascnn.export.predict import predict_files

    failed = 0
    for pred in predict_files(args.model, args.images, k=args.k):
        if pred.error:
            failed += 1
            print(f"kerascnn predict: error: {pred.error}", file=sys.stderr)
            continue
        print(pred.path)
        for rank, (cid, name, prob) in enumerate(pred.top, 1):
            print(f"  {rank}. {name:<24} (class {cid:>4})  {prob:8.4f}")
        sys.stdout.flush()
    return 1 if failed else 0
