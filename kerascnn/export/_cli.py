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
        "<export-dir>/models.config. The evaluation preprocessing and class names are "
        "the model's own: stored in the .keras file by kerascnn, else the "
        "preprocessing.json of its run (the model's folder or the one above); without "
        "either, images are resized (shorter side to the input size) and "
        "centre-cropped, with no mean subtracted (said on stderr). With --arch and --weights "
        "instead of a model file: a registry network with pretrained weights (a set "
        "name such as imagenet, or a weights file), served with the set's preprocessing "
        "and the ImageNet class names.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("model", nargs="?",
                   help="a .keras file (e.g. runs/fashion_mnist/checkpoints/best.keras)")
    _add_pretrained_args(p)
    _add_mean_arg(p)
    p.add_argument("--name", help="TF Serving model name (default: the run directory's "
                   "name; with --arch, the arch)")
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
    _add_pretrained_args(q)
    _add_mean_arg(q)
    q.add_argument("-k", type=int, default=5, help="how many classes to show")
    q.set_defaults(func=run_predict)


def _add_pretrained_args(parser):
    parser.add_argument("--arch", help="a registry network (kerascnn models) to build with "
                        "--weights instead of a model file")
    parser.add_argument("--weights", help="with --arch: a weight set (e.g. imagenet) or the "
                        "path of a weights file (keras, PyTorch, safetensors, Caffe)")


def _add_mean_arg(parser):
    parser.add_argument("--mean", help="a .keras model's mean instead of its own: "
                        "'imagenet', 'none', R,G,B or a .npy file")


def _given_mean(args):
    """``(True, array or None)`` for --mean, ``(False, None)`` without it; checked
    before a model is loaded."""
    if args.mean is None:
        return False, None
    from kerascnn.data.carried import parse_mean

    return True, parse_mean(args.mean)


def _pretrained_args(args, model_given):
    """(arch, weights) when --arch/--weights are used; checks they come together."""
    arch, weights = getattr(args, "arch", None), getattr(args, "weights", None)
    if arch is None and weights is None:
        return None
    if arch is None or weights is None:
        missing = "--weights" if weights is None else "--arch"
        raise ValueError(f"--arch and --weights go together: add {missing}. "
                         f"Received: arch={arch!r}, weights={weights!r}")
    if model_given:
        raise ValueError("give a model file or --arch/--weights, not both. "
                         f"Received: arch={arch!r}")
    return arch, weights


def _default_name(model_path):
    folder = os.path.dirname(os.path.abspath(model_path))
    if os.path.basename(folder) == "checkpoints":
        folder = os.path.dirname(folder)
    return os.path.basename(folder)


def run_export(args) -> int:
    pretrained = _pretrained_args(args, args.model is not None)
    if pretrained:
        if args.mean is not None:
            raise ValueError("--mean changes a .keras model's mean; --weights brings its "
                             f"set's. Received: --mean {args.mean}")
        return _export_pretrained(args, *pretrained)
    if args.model is None:
        raise ValueError("give a .keras file, or --arch and --weights. Received: model=None")
    if not args.model.endswith(".keras"):
        raise ValueError(f"expected a .keras file. Received: model={args.model!r}")
    from kerascnn.data.carried import resolve
    from kerascnn.evaluation.loading import load_keras_model
    from kerascnn.export import serving_config
    from kerascnn.export.saved_model import export_model

    new_mean, mean = _given_mean(args)
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
    prep, names, _ = resolve(args.model, model=model, prog="kerascnn export")
    if new_mean:
        prep = prep.replace(mean=mean)
    path = export_model(model, name, base_dir=args.export_dir, version=args.version,
                        preprocessing=prep, class_names=names,
                        serving_base_path=args.serving_base_path)
    print(f"TF Serving config: {os.path.join(args.export_dir, 'models.config')}")
    return 0 if path else 1


def _check_version(args, name):
    if args.version is not None:
        if args.version < 0:
            raise ValueError(f"`--version` must be >= 0. Received: version={args.version}")
        final = os.path.join(args.export_dir, name, str(args.version))
        if os.path.exists(final):
            raise FileExistsError(f"{final} exists; an export is never overwritten: leave "
                                  f"--version out for the next one. Received: version={args.version}")


def _export_pretrained(args, arch, weights) -> int:
    from kerascnn.applications.registry import get_model_info
    from kerascnn.export import serving_config
    from kerascnn.export.saved_model import export_model
    from kerascnn.applications.pretrained import load_pretrained

    name = args.name or get_model_info(arch).name
    serving_config.check_name(name)
    _check_version(args, name)
    net = load_pretrained(arch, weights)
    ws = net.weight_set
    metadata = {"arch": get_model_info(arch).name,
                "weights": weights if ws else os.path.abspath(weights)}
    if ws is not None:
        metadata["weight_set"] = {"publisher": ws.publisher, "file": ws.file.file_name,
                                  "provenance": ws.provenance, "licence": ws.licence,
                                  "top1": ws.top1, "top5": ws.top5, "setting": ws.setting}
    path = export_model(net.model, name, base_dir=args.export_dir, version=args.version,
                        preprocessing=net.preprocessing, class_names=net.class_names,
                        serving_base_path=args.serving_base_path, metadata=metadata)
    print(f"TF Serving config: {os.path.join(args.export_dir, 'models.config')}")
    return 0 if path else 1


def run_predict(args) -> int:
    if args.k < 1:
        raise ValueError(f"`-k` must be >= 1. Received: k={args.k}")
    from kerascnn.export.predict import predict_files, predict_pretrained

    # --model keeps its default when --arch is given: "given" is only a changed value.
    model_given = args.model != os.path.join("saved_models", "fashion_mnist")
    pretrained = _pretrained_args(args, model_given)
    new_mean, mean = _given_mean(args)
    if new_mean and (pretrained or not args.model.endswith(".keras")):
        raise ValueError("--mean changes a .keras model's mean (an export subtracts its "
                         f"own, --weights brings its set's). Received: --mean {args.mean}")
    if pretrained:
        answers = predict_pretrained(*pretrained, args.images, k=args.k)
    else:
        answers = predict_files(args.model, args.images, k=args.k,
                                adjust=(lambda p: p.replace(mean=mean)) if new_mean else None)
    failed = 0
    for pred in answers:
        if pred.error:
            failed += 1
            print(f"kerascnn predict: error: {pred.error}", file=sys.stderr)
            continue
        print(pred.path)
        for rank, (cid, name, prob) in enumerate(pred.top, 1):
            print(f"  {rank}. {name:<24} (class {cid:>4})  {prob:8.4f}")
        sys.stdout.flush()
    return 1 if failed else 0
