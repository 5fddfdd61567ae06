"""``kerascnn evaluate``: the papers' test protocols from the command line.

    kerascnn evaluate --model runs/resnet20/model.keras --source fashion_mnist --pad 2 \\
        --protocol center,10crop --out reports/resnet20
    kerascnn evaluate --models a.keras b.keras --source tfds:imagenet2012 --split validation \\
        --protocol 10crop          # fusion: softmax posteriors averaged over the networks
    kerascnn evaluate --arch googlenet --weights imagenet --source tfds:imagenet2012 \
        --split validation --protocol 144crop   # pretrained: the set's preprocessing,
                                                # its publisher's figure beside the paper's
    kerascnn evaluate --model runs/fashion_mnist_boxes_cam/model.keras \
        --source fashion_mnist_boxes --protocol localization --method cam
                          # ILSVRC's top-1/top-5 localization error of CAM (or Grad-CAM)
                          # boxes, beside two baselines; ground truth from the source's
                          # boxes or PASCAL-VOC .xml files beside a folder's images
"""

from __future__ import annotations

import argparse
import os
import sys

# Module level and register() import the standard library only: `kerascnn --help`
# must not load TensorFlow (see kerascnn.cli).


def _ints(text):
    return tuple(int(v) for v in str(text).replace(" ", "").split(",") if v)


# Not a view protocol (not in protocols.TABLE): boxes from explanation maps, scored by
# ILSVRC's localization rule (kerascnn.explain.localization).
LOCALIZATION = "localization"


def _protocols(text):
    from kerascnn._protocols import PROTOCOLS

    names = [p.strip() for p in text.split(",") if p.strip()]
    bad = [p for p in names if p not in PROTOCOLS and p != LOCALIZATION]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"unknown protocol {bad or text!r}; choose from {', '.join(PROTOCOLS + (LOCALIZATION,))}")
    return names


def register(subparsers):
    p = subparsers.add_parser(
        "evaluate",
        help="top-1/top-5 error with the papers' test protocols (10crop, 144crop, dense, fusion)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    group = p.add_mutually_exclusive_group(required=False)
    group.add_argument("--model", help=".keras file, .weights.h5 / TF checkpoint (with --arch), or SavedModel folder")
    group.add_argument("--models", nargs="+", help="several networks: their softmax posteriors are averaged (fusion)")
    p.add_argument("--arch", help="registry name (architecture for weights files; the paper's figures)")
    p.add_argument("--classes", type=int, help="number of classes of the --arch model (weights files)")
    p.add_argument("--weights", help="instead of --model: with --arch, a weight set (e.g. imagenet) or a "
                   "publisher's weights file; evaluated with the set's preprocessing, its publisher's figure shown")
    p.add_argument("--source", default="fashion_mnist", help="fashion_mnist | tfds:<name> | <folder> | tfrecord:<glob>")
    p.add_argument("--split", default="test")
    p.add_argument("--data-dir", help="data directory of the source")
    p.add_argument("--protocol", type=_protocols, default=["center"],
                   help="comma-separated, e.g. center,10crop (an unknown name lists them all)")
    p.add_argument("--method", choices=("cam", "gradcam"), default="cam",
                   help="localization: the maps boxed (default cam; gradcam for any network)")
    p.add_argument("--threshold", type=float, default=0.2,
                   help="localization: the box rule's fraction of the map's maximum (default 0.2, the CAM paper's)")
    p.add_argument("--margin", type=float, default=0.0,
                   help="localization: pixels of the network's input taken off each side of the box, "
                        "the map's halo (default 0, the CAM paper's rule)")
    p.add_argument("--batch-size", type=int, default=32, help="images per step (default 32)")
    p.add_argument("--crop-size", type=int, help="network input size (default: the model's)")
    p.add_argument("--resize", help="shorter side before center/10crop; 'none' for no resize (default: the model's own resize)")
    p.add_argument("--scales", type=_ints, help="scales of 144crop/multicrop, e.g. 256,384,512")
    p.add_argument("--dense-scales", type=_ints, help="scales Q of dense, e.g. 224,256,384,480,640")
    p.add_argument("--train-scale", type=_ints, help="VGG's training scale S (256) or range (256,512): sets Q")
    p.add_argument("--mean", default=None, help="'imagenet', 'none', R,G,B, or a .npy file (default: the model's own: stored in its .keras file, else its run's preprocessing.json, else none, said on stderr; an export subtracts its own)")
    p.add_argument("--pad", default="auto", help="zero pixels around each image (default auto: the model's own)")
    p.add_argument("--limit", type=int, help="evaluate the first N images only")
    p.add_argument("--out", help="report path stem: writes <out>.json and <out>.md (default reports/<model>_<source>_<split>)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--strategy", choices=("auto", "default", "one_device", "mirrored"),
                   default="auto", help="jax: mirrored (auto: on several devices) evaluates "
                   "with keras.distribution.DataParallel over the local devices; tensorflow "
                   "evaluates on one device")
    p.set_defaults(func=run)
    return p


def _member_preprocessing(path, model, args, given_mean):
    """The :class:`~kerascnn.data.preprocessing.Preprocessing` a network is evaluated
    with: a SavedModel's own (its signature subtracts the mean); else the one resolver's
    (:func:`kerascnn.data.carried.resolve`: stored in the ``.keras`` file, else the
    training run's ``preprocessing.json`` beside it, else its one fallback, said on
    stderr). ``--mean``, ``--pad`` and ``--crop-size`` then override; ``--resize``
    applies to every network (a protocol option)."""
    from kerascnn.data.carried import resolve
    from kerascnn.evaluation.loading import SavedModelNet

    if isinstance(model, SavedModelNet):
        return model.evaluation_preprocessing(args.crop_size)
    prep, _, where = resolve(path, model=model, prog="kerascnn evaluate")
    if where != "fallback":
        print(f"kerascnn evaluate: {path}: preprocessing "
              f"{'stored in it' if where == path else 'from ' + where}", file=sys.stderr)
    if args.mean is not None:
        prep = prep.replace(mean=given_mean)
    if args.pad != "auto":
        prep = prep.replace(pad=int(args.pad))
    if args.crop_size:
        prep = prep.replace(image_size=args.crop_size)
    return prep


def _pretrained_member(args, given_mean):
    """The --arch network built with --weights, with the set's preprocessing (a file:
    its publisher's mean) and the set's publisher's figure as errors."""
    from kerascnn.evaluation.evaluate import Member
    from kerascnn.applications.pretrained import load_pretrained

    size = (args.crop_size, args.crop_size) if args.crop_size else None
    net = load_pretrained(args.arch, args.weights, image_size=size)
    prep = net.preprocessing
    if args.mean is not None:
        prep = prep.replace(mean=given_mean)
    if args.pad != "auto":
        prep = prep.replace(pad=int(args.pad))
    print(f"kerascnn evaluate: {args.arch} weights={args.weights!r}: input {prep.image_size}, "
          f"{'warp to' if prep.resize_rule == 'warp' else 'shorter side'} {prep.resize}, mean "
          f"{None if prep.mean is None else [round(float(m), 3) for m in prep.mean]}", file=sys.stderr)
    ws = net.weight_set
    publisher = None
    if ws is not None:
        publisher = {"publisher": ws.publisher, "top1": round(100.0 - ws.top1, 3),
                     "top5": round(100.0 - ws.top5, 3), "protocol": ws.protocol,
                     "setting": ws.setting}
    return [Member(net.model, preprocessing=prep, name=args.arch)], publisher


def _as_imagenet_classes(source):
    """A source scored by a network with ImageNet's 1000 outputs (``--weights``): as it
    is when its classes are ImageNet's own order (WordNet ids, or class numbers); a
    subset named by WordNet id (``n01440764``) or by name (``tench``, ``great white
    shark``) relabelled with the ImageNet class ids, said in one line; anything else is
    refused, naming the classes that are not ImageNet's (scoring them against
    unrelated outputs would report 100 % error without a word)."""
    import dataclasses

    import numpy as np
    import tensorflow as tf

    from kerascnn.weights.classes import imagenet_classes

    classes = imagenet_classes()
    names = list(source.class_names)
    wnids = [wnid for wnid, _ in classes]
    if names == wnids[:len(names)] or all(n == str(i) for i, n in enumerate(names)):
        return source
    by_name = {}
    for i, (wnid, label) in enumerate(classes):
        by_name[wnid.lower()] = i
        key = label.lower().replace("_", " ")
        by_name[key] = None if key in by_name else i  # a name ImageNet uses twice: ambiguous
    ids = [by_name.get(n.strip().lower().replace("_", " ").replace("-", " ")) for n in names]
    missing = [n for n, i in zip(names, ids) if i is None]
    if missing or len(set(ids)) != len(ids):
        raise ValueError(
            f"--source {source.name}: its classes are not the weights' classes (ImageNet's "
            "1000, by WordNet id such as n01440764 or by name such as 'tench'): "
            f"{len(missing)} of {len(names)} are not ImageNet classes, e.g. {missing[:5]}. "
            "Evaluate a network trained on these classes (--model), e.g. one from "
            "`kerascnn train finetune_folder`.")
    print(f"kerascnn evaluate: --source {source.name}: its {len(names)} classes are "
          f"ImageNet classes, scored as ImageNet's class ids by name ("
          + ", ".join(f"{n} -> {i}" for n, i in list(zip(names, ids))[:5])
          + (", ..." if len(names) > 5 else "") + ")", file=sys.stderr)
    from kerascnn.data._graph import plain

    table = np.asarray(ids, np.int64)
    lookup = tf.constant(table)
    return dataclasses.replace(
        source, class_names=[label for _, label in classes],
        dataset=source.dataset.map(plain(lambda x, y: (x, tf.gather(lookup, y)))),
        labels=None if source.labels is None else table[np.asarray(source.labels)],
        files=None, read_files=None)


def _select_strategy(name):
    """Under JAX, Keras' distribution for ``--strategy`` (set before the models are
    built: their variables are placed on its devices); TensorFlow evaluates with one
    ``tf.function`` on one device."""
    import keras

    if keras.backend.backend() == "jax":
        from kerascnn.training.strategy import select_strategy

        select_strategy(name)
    elif name == "mirrored":
        raise ValueError("--strategy mirrored: evaluate runs on one device under tensorflow; "
                         "under --backend jax it uses keras.distribution.DataParallel")


def run(args) -> int:
    from kerascnn.data import load_source
    from kerascnn.evaluation.evaluate import Member, evaluate
    from kerascnn.evaluation.loading import load_for_evaluation

    if args.weights is not None:
        if args.model or args.models or not args.arch:
            raise ValueError("--weights builds the --arch network: give --arch and no --model/--models. "
                             f"Received: arch={args.arch!r}, weights={args.weights!r}")
    elif not (args.model or args.models):
        raise ValueError("give --model, --models, or --arch with --weights. Received: none of them")
    paths = [args.model] if args.model else list(args.models or [])
    if args.batch_size < 1:
        raise ValueError(f"`--batch-size` must be >= 1. Received: batch_size={args.batch_size}")
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"`--limit` must be >= 1. Received: limit={args.limit}")
    if args.pad != "auto" and not args.pad.isdigit():
        raise ValueError(f"`--pad` must be 'auto' or an int >= 0. Received: --pad {args.pad}")
    if args.resize is not None and args.resize.lower() != "none" and not args.resize.isdigit():
        raise ValueError(f"`--resize` must be 'none' or a positive int. Received: --resize {args.resize}")
    options = {}
    if args.resize is not None:
        options["resize"] = None if args.resize.lower() == "none" else int(args.resize)
    for key in ("scales", "dense_scales"):
        if getattr(args, key):
            options[key] = getattr(args, key)
    if args.train_scale:
        options["train_scale"] = args.train_scale[0] if len(args.train_scale) == 1 else args.train_scale
    localize = LOCALIZATION in args.protocol
    if localize and len(paths) + (args.weights is not None) > 1:
        raise ValueError("the localization protocol explains one network: give --model or "
                         f"--arch --weights, not --models. Received: {len(paths)} models")
    if not 0.0 <= args.threshold <= 1.0:
        raise ValueError(f"`--threshold` must be in [0, 1]. Received: --threshold {args.threshold}")
    if not (args.margin >= 0.0 and args.margin < float("inf")):
        raise ValueError(f"`--margin` must be a number of pixels >= 0. Received: --margin {args.margin}")
    from kerascnn.data.carried import parse_mean

    given_mean = None if args.mean is None else parse_mean(args.mean)
    from kerascnn.data.sources import folder_split

    folder_split(args.source, args.split)  # a missing split folder: before any file
    _select_strategy(args.strategy)  # before the models are built
    models = [load_for_evaluation(path, arch=args.arch, classes=args.classes) for path in paths]
    members, publisher = [], None
    if args.weights is not None:  # before the data: an offline download fails at once
        members, publisher = _pretrained_member(args, given_mean)
    source = load_source(args.source, args.split, data_dir=args.data_dir)
    if args.weights is not None:
        source = _as_imagenet_classes(source)
    for path, model in zip(paths, models):
        prep = _member_preprocessing(path, model, args, given_mean)
        members.append(Member(model, preprocessing=prep, name=args.arch or None))
    views = [p for p in args.protocol if p != LOCALIZATION]
    localization = None
    if localize:
        localization = _localization_check(members[0], source, args, options)  # before any image
    if views:
        report = evaluate(
            members if len(members) > 1 else members[0],
            source,
            views,
            split=args.split,
            batch_size=args.batch_size,
            max_examples=args.limit,
            verbose=0 if args.quiet else 1,
            **options,
        )
    else:
        from kerascnn.evaluation.report import EvaluationReport

        report = EvaluationReport(models=[args.arch or getattr(members[0].model, "name", "model")],
                                  source=source.name, split=args.split, results=[])
    if localization is not None:
        report.results.extend(localization())
    report.publisher = publisher
    if args.quiet:
        print(report.to_text())
    elif publisher:
        print(report.publisher_text())
    out = args.out
    if out is None:
        stem = "+".join(str(m) for m in report.models).replace(os.sep, "_")
        out = os.path.join("reports", f"{stem}_{source.name}_{args.split}".replace(":", "_"))
    json_path, md_path = report.save(out)
    print(f"wrote {json_path} and {md_path}")
    return 0


def _localization_check(member, source, args, options):
    """Checks the localization request (the method fits the network, the source has
    ground truth) and returns the function that runs it: ``() -> [ProtocolResult]``.
    The view is the ``center`` protocol's (``--resize`` applies to it too)."""
    from kerascnn.explain.images import check_request
    from kerascnn.explain.localization import evaluate_localization, ground_truth

    check_request(member.model, args.method)
    ground_truth(source, args.limit)

    def run():
        from kerascnn.evaluation.report import ProtocolResult

        prep = member.resolved_preprocessing()
        if "resize" in options:
            prep = prep.replace(resize=options["resize"])
        found = evaluate_localization(
            member.model, source, prep, method=args.method,
            batch_size=args.batch_size, max_examples=args.limit, threshold=args.threshold,
            margin=args.margin, verbose=0 if args.quiet else 1)
        return [ProtocolResult(protocol=r["protocol"], top1=r["top1"], top5=r["top5"],
                               examples=found.examples, views=1, settings=r["settings"])
                for r in found.rows()]

    return run
