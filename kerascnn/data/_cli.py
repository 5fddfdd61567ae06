"""``kerascnn show-augmentations`` and ``kerascnn dataset-stats``."""

from __future__ import annotations

import json
import os
import sys


def _source_kwargs(args):
    kwargs = {}
    if args.data_dir:
        kwargs["data_dir"] = args.data_dir
    return kwargs


def policy_of(name, pipelines_dir="pipelines"):
    """A policy name, or the ``[data] policy`` of ``pipelines/<name>.toml``
    (or of a ``.toml`` path). Returns ``(policy_name, data_table)``."""
    from kerascnn.data.policies import list_policies

    if name in list_policies():
        return name, {}
    path = name if name.endswith(".toml") else os.path.join(pipelines_dir, name + ".toml")
    if not os.path.exists(path):
        raise ValueError(
            f"Not a policy ({', '.join(list_policies())}) and no recipe file {path}. "
            f"Received: {name!r}"
        )
    import tomllib

    with open(path, "rb") as f:
        data = tomllib.load(f).get("data", {})
    if "policy" not in data:
        raise ValueError(f"{path} has no [data] policy = \"...\" entry.")
    return data["policy"], data


def _grid(images, rows, cols, titles, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.6 * rows),
                             squeeze=False)
    for r in range(rows):
        for c in range(cols):
            ax = axes[r][c]
            img = images[r][c]
            ax.imshow(img[..., 0] if img.shape[-1] == 1 else img,
                      cmap="gray" if img.shape[-1] == 1 else None, vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(titles[c], fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def show_augmentations(policy, source, *, out, rows=4, cols=6, seed=0,
                       image_size=None):
    """Writes a PNG grid: each row one image, its centre view then ``cols - 1``
    augmented samples (mean added back, clipped to 0-255 for display)."""
    import numpy as np
    import tensorflow as tf

    from kerascnn.data.pipeline import eval_dataset, train_dataset
    from kerascnn.data.policies import get_policy
    from kerascnn.data.sources import Source

    policy = get_policy(policy)
    size = tuple(image_size or policy.image_size)
    base = source.dataset.take(rows)
    few = Source(dataset=base.cache(), encoded=source.encoded,
                 class_names=source.class_names, num_examples=rows,
                 channels=source.channels, name=source.name)
    if source.images is not None:
        few.images, few.labels = source.images[:rows], source.labels[:rows]
    resize = {"none": None, "center": policy.resize}.get(
        policy.example, max(size) * 256 // 224)  # 256 for a 224 crop
    centre = next(iter(eval_dataset(few, batch_size=rows, image_size=size,
                                    resize=resize, mean=False)))[0]
    reps = Source(dataset=few.dataset.repeat(cols - 1), encoded=few.encoded,
                  class_names=few.class_names, num_examples=rows * (cols - 1),
                  channels=few.channels, name=few.name)
    if few.images is not None:
        reps.images = np.concatenate([few.images] * (cols - 1))
        reps.labels = np.concatenate([few.labels] * (cols - 1))
    batch = next(iter(train_dataset(reps, policy, batch_size=rows * (cols - 1),
                                    seed=seed, image_size=size, mean=False,
                                    shuffle_buffer=1)))[0]
    aug = tf.reshape(batch, (cols - 1, rows, *batch.shape[1:]))
    aug = tf.transpose(aug, [1, 0, 2, 3, 4])
    images = tf.concat([centre[:, None], aug], axis=1)
    images = np.clip(np.round(images.numpy()), 0, 255).astype(np.uint8)
    titles = ["centre view"] + [f"{policy.name} #{i}" for i in range(1, cols)]
    _grid(images, rows, cols, titles, out)
    return out


def _fail(command, err):
    print(f"kerascnn {command}: error: {err}", file=sys.stderr)
    return 2


def _show(args) -> int:
    try:
        return _show_impl(args)
    except (ValueError, FileNotFoundError) as err:
        return _fail("show-augmentations", err)


def _stats(args) -> int:
    try:
        return _stats_impl(args)
    except (ValueError, FileNotFoundError) as err:
        return _fail("dataset-stats", err)


def _show_impl(args) -> int:
    from kerascnn.data.sources import load_source

    from kerascnn.data.policies import get_policy

    name, data = policy_of(args.policy, args.pipelines_dir)
    policy = get_policy(name, **data.get("policy_options", {}))
    spec = args.source or data.get("source") or "fashion_mnist"
    kwargs = _source_kwargs(args)
    if not args.source and data.get("manual_dir"):
        kwargs["manual_dir"] = os.path.expanduser(data["manual_dir"])
    source = load_source(spec, split=args.split, **kwargs)
    size = args.image_size or data.get("image_size")
    if isinstance(size, int):
        size = (size, size)
    if size is None and name == "cifar":
        size = (32, 32)
    show_augmentations(policy, source, out=args.out, rows=args.rows, cols=args.cols,
                       seed=args.seed, image_size=size)
    print(f"wrote {args.out} ({name} policy on {source.name})")
    return 0


def _stats_impl(args) -> int:
    import numpy as np

    from kerascnn.data.sources import load_source
    from kerascnn.data.stats import compute_stats

    source = load_source(args.source, split=args.split, **_source_kwargs(args))
    size = tuple(args.image_size) if args.image_size else None
    result = compute_stats(source, per_pixel=args.per_pixel, image_size=size,
                           max_examples=args.max_examples)
    result.update(source=args.source, split=args.split, channels=source.channels)
    if args.per_pixel:
        npy = os.path.splitext(args.out)[0] + "_per_pixel_mean.npy"
        np.save(npy, result.pop("per_pixel_mean"))
        result["per_pixel_mean_file"] = npy
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps({k: v for k, v in result.items() if k != "eigvec"}))
    print(f"wrote {args.out}")
    return 0


def register(subparsers) -> None:
    show = subparsers.add_parser(
        "show-augmentations",
        help="write a PNG grid of a policy's augmented samples",
        description="Draw a few images of a source with a training policy's "
        "augmentation (first column: the centre view). POLICY is a policy name "
        "(alexnet, vgg, googlenet, resnet, cifar) or a recipe under pipelines/ "
        "whose [data] table names one.",
    )
    show.add_argument("policy", metavar="POLICY|RECIPE")
    show.add_argument("--source", help="fashion_mnist, tfds:<name>, a folder, "
                      "tfrecord:<glob> (default: the recipe's, else fashion_mnist)")
    show.add_argument("--split", default="train")
    show.add_argument("--data-dir")
    show.add_argument("--out", default="augmentations.png")
    show.add_argument("--rows", type=int, default=4)
    show.add_argument("--cols", type=int, default=6)
    show.add_argument("--seed", type=int, default=0)
    show.add_argument("--image-size", type=int, nargs=2, metavar=("H", "W"))
    show.add_argument("--pipelines-dir", default="pipelines")
    show.set_defaults(func=_show)

    stats = subparsers.add_parser(
        "dataset-stats",
        help="mean RGB, per-pixel mean and RGB PCA of a source, as JSON",
        description="One pass over a source: mean RGB, optional per-pixel mean "
        "(saved next to the JSON as .npy), eigenvalues/vectors of the RGB "
        "covariance for PCA lighting (scaled like kerascnn.data.stats' ImageNet "
        "defaults).",
    )
    stats.add_argument("--source", required=True)
    stats.add_argument("--split", default="train")
    stats.add_argument("--data-dir")
    stats.add_argument("--out", default="dataset_stats.json")
    stats.add_argument("--per-pixel", action="store_true")
    stats.add_argument("--image-size", type=int, nargs=2, metavar=("H", "W"))
    stats.add_argument("--max-examples", type=int)
    stats.set_defaults(func=_stats)
