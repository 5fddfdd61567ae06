"""``kerascnn export`` and ``kerascnn predict``."""

from __future__ import annotations

import argparse
import os


def register(subparsers):
    p = subparsers.add_parser(
        "export", help="export a trained .keras model to saved_models/ for TF Serving",
        description="Writes <export-dir>/<name>/<version>/ (TF Serving's layout; the "
        "next integer version unless --version; never overwrites) and updates "
        "<export-dir>/models.config. The evaluation preprocessing and class names come "
        "from preprocessing.json in the model's folder or the one above (a kerascnn "
        "run directory).",
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
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    q.add_argument("images", nargs="+", help="JPEG/PNG/GIF/BMP files")
    q.add_argument("--model", default=os.path.join("saved_models", "fashion_mnist"),
                   help="an export (saved_models/<name>[/<version>]) or a .keras file")
    q.add_argument("-k", type=int, default=5, help="how many classes to show")
    q.set_defaults(func=run_predict)


def run_export(args) -> int:
    import keras

    import kerascnn.layers  # noqa: F401
    from kerascnn.export.predict import find_preprocessing
    from kerascnn.export.saved_model import Preprocessing, export_model

    if not args.model.endswith(".keras"):
        print(f"kerascnn export: error: expected a .keras file. Received: {args.model}")
        return 2
    model = keras.saving.load_model(args.model, compile=False)
    prep, names = find_preprocessing(args.model)
    if prep is None:
        print("kerascnn export: no preprocessing.json found next to the model: "
              "exporting with no mean subtraction and numeric class names")
        prep = Preprocessing.for_model(model)
    name = args.name
    if not name:
        folder = os.path.dirname(os.path.abspath(args.model))
        if os.path.basename(folder) == "checkpoints":
            folder = os.path.dirname(folder)
        name = os.path.basename(folder)
    path = export_model(model, name, base_dir=args.export_dir, version=args.version,
                        preprocessing=prep, class_names=names,
                        serving_base_path=args.serving_base_path)
    print(f"TF Serving config: {os.path.join(args.export_dir, 'models.config')}")
    return 0 if path else 1


def run_predict(args) -> int:
    from kerascnn.export.predict import predict_files

    for path in args.images:
        if not os.path.isfile(path):
            print(f"kerascnn predict: error: no such file: {path}")
            return 2
    for image, top in predict_files(args.model, args.images, k=args.k):
        print(image)
        for rank, (cid, name, prob) in enumerate(top, 1):
            print(f"  {rank}. {name:<24} (class {cid:>4})  {prob:8.4f}")
    return 0
