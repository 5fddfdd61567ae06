"""``kerascnn models``: the table of the zoo (no model is built), with the weight sets
each network has; ``--weights`` lists the sets themselves."""

from __future__ import annotations


def _error(value):
    return "-" if value is None else f"{value:g}"


def format_results(paper_results) -> str:
    """``"10crop 22.85/6.71"`` per protocol (top-1/top-5 error, %)."""
    if not paper_results:
        return "-"
    return ", ".join(
        f"{protocol} {_error(r['top1'])}/{_error(r['top5'])}"
        for protocol, r in paper_results.items()
    )


def format_table(infos) -> str:
    header = ("name", "input", "params", "GMACs", "paper err top-1/top-5 (protocol)", "recipe",
              "weights")
    rows = [header]
    for info in infos:
        rows.append((
            info.name,
            "x".join(map(str, info.input_shape)),
            f"{info.params / 1e6:.2f}M",
            f"{info.macs / 1e9:.2f}",
            format_results(info.paper_results),
            info.recipe,
            ", ".join(info.weight_sets) or "-",
        ))
    return _columns(rows)


def format_weight_sets(infos) -> str:
    """One row per weight set: the builder's ``weights=`` value, publisher, file, the
    publisher's reported accuracy and how it was measured, the mean."""
    header = ("name", "weights=", "needs", "publisher", "file", "acc top-1/top-5 (%)",
              "mean RGB")
    rows = [header]
    for info in infos:
        for ws in info.weight_sets.values():
            rows.append((
                info.name,
                ws.name,
                ", ".join(f"{k}={v!r}" for k, v in ws.requires.items()) or "-",
                ws.publisher,
                ws.file.file_name,
                f"{ws.protocol} {ws.top1:g}/{ws.top5:g}",
                "(" + ", ".join(f"{m:g}" for m in ws.mean_rgb) + ")",
            ))
    return _columns(rows)


def _columns(rows) -> str:
    header = rows[0]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _run(args) -> int:
    from kerascnn.applications import get_model_info, list_models

    infos = [get_model_info(n) for n in list_models(args.family)]
    if args.weights:
        print(format_weight_sets(infos))
        print(
            "\nweights=: the builders' `weights` value (e.g. ResNet50(weights='imagenet')); "
            "accuracy in % as the publisher reports it; inputs are RGB, 0-255, minus the "
            "mean RGB (`kerascnn.applications.preprocess_input`)."
        )
        return 0
    print(format_table(infos))
    print(
        "\nparams: trainable weights at the default input and classes; GMACs: "
        "multiply-adds of conv/fc layers per image; errors in % as the paper "
        "reports them (see `get_model_info(name).paper_results`); weights: the "
        "pretrained sets (`weights=<name>`; `kerascnn models --weights` lists them)."
    )
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list the networks of the zoo",
        description="List the networks: input, parameters, multiply-adds, the "
        "paper's reported error and protocol, and the training recipe.",
    )
    parser.add_argument(
        "--family",
        choices=("alexnet", "vgg", "googlenet", "resnet", "plain", "resnet_cifar",
                 "plain_cifar"),
        help="only this family",
    )
    parser.add_argument(
        "--weights",
        action="store_true",
        help="list the pretrained weight sets (publisher, file, reported accuracy, mean)",
    )
    parser.set_defaults(func=_run)
