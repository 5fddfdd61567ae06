"""``kerascnn explain`` and ``kerascnn show-filters``: what the network sees.

    kerascnn explain photo.jpg --model runs/fashion_mnist/checkpoints/best.keras
    kerascnn explain a.jpg b.png --arch resnet50 --weights imagenet --method cam --out maps/
    kerascnn explain dog.jpg --arch vgg16 --weights imagenet --method score_map --class "golden retriever"
    kerascnn show-filters --arch alexnet --weights imagenet --out filters.png
    kerascnn show-filters --model best.keras --feature-maps photo.jpg --layer conv1_conv --out maps.png

Imports nothing heavy at module level (``kerascnn --help`` must not load TensorFlow);
a user's mistake is raised as ``ValueError``/``OSError`` naming the file or argument,
and ``kerascnn.cli.main`` prints it as one line. Everything checkable (the method
against the network's head, the layer, the class) is checked before an image is read.
"""

from __future__ import annotations

import argparse
import os
import sys

METHODS = ("gradcam", "cam", "score_map")  # kerascnn.explain.images.METHODS


def register(subparsers):
    p = subparsers.add_parser(
        "explain", help="heatmaps of where a network looks (Grad-CAM, CAM, score map)",
        description="Writes, per image, <out>/<stem>_<method>.png (the image with the "
        "heatmap blended in, the box around its largest region above 20 % of its maximum, "
        "the class explained and the top-5 classes) and <stem>_<method>.npy (the map in "
        "the image's pixels), and <out>/explain.json (per image: top-5, box, class, method, "
        "layer). Images of any size go through the model's own preprocessing (stored in "
        "its .keras file, else the preprocessing.json of its run, or the weight set's). A file that cannot be read "
        "or decoded is named on stderr and the others are still explained (exit status 1 "
        "when any failed). Methods: gradcam (any network; --layer), cam (global average "
        "pooling heads: GoogLeNet, ResNets, the CIFAR nets), score_map (AlexNet and VGG: "
        "the dense evaluation's class score map over the whole image).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("images", nargs="+", help="JPEG/PNG/GIF/BMP files")
    _add_model_args(p)
    p.add_argument("--method", choices=METHODS, default="gradcam", help="how the map is made")
    p.add_argument("--class", dest="class_", metavar="NAME|ID",
                   help="the class explained (default: each image's top-1)")
    p.add_argument("--layer", help="gradcam's feature map (default: the last convolutional one)")
    p.add_argument("--out", default="explain", help="output folder")
    p.add_argument("-k", type=int, default=5, help="how many classes to list")
    p.add_argument("--threshold", type=float, default=0.2,
                   help="the box: fraction of the map's maximum (the CAM paper's 20%%)")
    p.add_argument("--margin", type=float, default=0.0,
                   help="the box: pixels of the network's input taken off each side, the map's halo "
                        "(default 0, the CAM paper's rule)")
    p.set_defaults(func=run_explain)

    q = subparsers.add_parser(
        "show-filters", help="picture of the first convolution's kernels, or of one layer's "
        "activations for an image",
        description="Writes the kernels of the first convolution (or --layer) as a mosaic, "
        "one tile per filter scaled on its own; AlexNet with groups=2 as its two towers, "
        "48 + 48, as the paper's Figure 3. With --feature-maps IMAGE: that layer's "
        "activations for the image (through the model's preprocessing) as a grid.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    _add_model_args(q)
    q.add_argument("--layer", help="the convolution (default: the first one)")
    q.add_argument("--feature-maps", metavar="IMAGE", help="draw this image's activations "
                   "at --layer instead of the kernels")
    q.add_argument("--out", required=True, help="the PNG file to write")
    q.set_defaults(func=run_show_filters)


def _add_model_args(parser):
    parser.add_argument("--model", help="a .keras file (e.g. runs/fashion_mnist/checkpoints/best.keras)")
    parser.add_argument("--arch", help="a registry network (kerascnn models) to build with "
                        "--weights instead of a model file")
    parser.add_argument("--weights", help="with --arch: a weight set (e.g. imagenet) or the "
                        "path of a weights file (keras, PyTorch, safetensors, Caffe)")
    parser.add_argument("--mean", help="a .keras model's mean instead of its own: "
                        "'imagenet', 'none', R,G,B or a .npy file")


def _load(args):
    """``(model, Preprocessing, class names or None)`` from --model or --arch/--weights."""
    arch, weights = args.arch, args.weights
    if arch is None and weights is None:
        if args.model is None:
            raise ValueError("give a .keras file with --model, or --arch and --weights.")
        if not args.model.endswith(".keras"):
            raise ValueError("expected a .keras file (an export has no gradients to explain "
                             f"with). Received: model={args.model!r}")
        from kerascnn.data.carried import parse_mean, resolve
        from kerascnn.evaluation.loading import load_keras_model

        given = getattr(args, "mean", None)
        mean = None if given is None else parse_mean(given)  # before the model is read
        model = load_keras_model(args.model)
        prog = f"kerascnn {getattr(args, 'command', None) or 'explain'}"
        prep, names, _ = resolve(args.model, model=model, prog=prog)
        return model, prep if given is None else prep.replace(mean=mean), names
    if arch is None or weights is None:
        missing = "--weights" if weights is None else "--arch"
        raise ValueError(f"--arch and --weights go together: add {missing}. "
                         f"Received: arch={arch!r}, weights={weights!r}")
    if args.model is not None:
        raise ValueError(f"give --model or --arch/--weights, not both. Received: arch={arch!r}")
    if getattr(args, "mean", None) is not None:
        raise ValueError("--mean changes a .keras model's mean; --weights brings its "
                         f"set's. Received: --mean {args.mean}")
    from kerascnn.applications.pretrained import load_pretrained

    net = load_pretrained(arch, weights)
    return net.model, net.preprocessing, net.class_names


def _read(path, channels):
    """The decoded uint8 image of ``path`` (numpy), or ValueError naming it."""
    import numpy as np

    from kerascnn.export.predict import _load_image

    return np.asarray(_load_image(path, channels)[1])


def _outputs(paths, method, out):
    """``<out>/<stem>_<method>`` per image; a stem seen before gets ``-2``, ``-3``..."""
    seen, stems = {}, []
    for path in paths:
        stem = os.path.splitext(os.path.basename(path))[0] or "image"
        seen[stem] = seen.get(stem, 0) + 1
        stems.append(os.path.join(out, f"{stem}{'' if seen[stem] == 1 else '-%d' % seen[stem]}_{method}"))
    return stems


def run_explain(args) -> int:
    if args.k < 1:
        raise ValueError(f"`-k` must be >= 1. Received: k={args.k}")
    if not 0.0 <= args.threshold <= 1.0:
        raise ValueError(f"`--threshold` must be in [0, 1]. Received: threshold={args.threshold}")
    if not (args.margin >= 0.0 and args.margin < float("inf")):
        raise ValueError(f"`--margin` must be a number of pixels >= 0. Received: margin={args.margin}")
    model, prep, names = _load(args)
    import io

    import numpy as np

    from kerascnn._io import atomic_path, write_json
    from kerascnn.explain.images import check_request, explain_images
    from kerascnn.explain.overlay import overlay

    names, layer = check_request(model, args.method, args.class_, args.layer, names)
    images, paths, failed = [], [], 0
    for path in args.images:
        try:
            images.append(_read(path, prep.channels))
            paths.append(path)
        except ValueError as err:
            failed += 1
            print(f"kerascnn explain: error: {err}", file=sys.stderr)
    entries = []
    if images:
        os.makedirs(args.out, exist_ok=True)
        found = []
        for start in range(0, len(images), 16):  # batches of 16 views
            found += explain_images(model, images[start:start + 16], prep, method=args.method,
                                    class_index=args.class_, layer=args.layer,
                                    class_names=names, k=args.k, threshold=args.threshold,
                                    margin=args.margin)
        for path, stem, image, e in zip(paths, _outputs(paths, args.method, args.out), images, found):
            overlay(stem + ".png", image, e)
            with atomic_path(stem + ".npy") as tmp:
                buffer = io.BytesIO()
                np.save(buffer, e.map)
                with open(tmp, "wb") as f:
                    f.write(buffer.getvalue())
            entries.append({
                "image": path, "overlay": stem + ".png", "map": stem + ".npy",
                "size": [int(image.shape[1]), int(image.shape[0])],
                "class": {"id": e.class_id, "name": e.class_name},
                "top5": [{"id": c, "name": n, "probability": round(p, 6)} for c, n, p in e.top],
                "box": list(e.box), "method": e.method, "layer": e.layer})
            top = e.top[0]
            print(f"{path}: {e.method} of {e.class_name!r} (class {e.class_id}); top-1 "
                  f"{top[1]!r} {top[2]:.4f}; box {tuple(e.box)} -> {stem}.png")
    if entries or failed:
        os.makedirs(args.out, exist_ok=True)
        write_json(os.path.join(args.out, "explain.json"), {
            "model": args.model or f"{args.arch} ({args.weights})", "method": args.method,
            "layer": layer, "box_threshold": args.threshold,
            "box_margin": args.margin, "images": entries,
            "failed": [p for p in args.images if p not in paths]})
    return 1 if failed else 0


def run_show_filters(args) -> int:
    if not args.out.lower().endswith(".png"):
        raise ValueError(f"`--out` must be a .png file. Received: out={args.out!r}")
    model, prep, _ = _load(args)
    from kerascnn.explain.filters import feature_maps, first_layer_filters
    from kerascnn.explain.overlay import save_png

    if args.feature_maps:
        if args.layer is not None:
            from kerascnn.explain.maps import _feature_tensor

            _feature_tensor(model, args.layer)  # a bad name fails before the image is read
        image = _read(args.feature_maps, prep.channels)
        picture = feature_maps(model, prep(image), args.layer)
    else:
        picture = first_layer_filters(model, args.layer)
    save_png(args.out, picture)
    print(f"{args.out}: {picture.shape[1]}x{picture.shape[0]}")
    return 0
