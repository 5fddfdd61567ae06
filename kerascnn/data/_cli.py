"""``kerascnn show-augmentations`` and ``kerascnn dataset-stats``.

A recipe is read by ``kerascnn.training.recipe.load_recipe`` (the one recipe reader of
every command): a ``.toml`` path, or a name under the package's ``pipelines/`` folder
(``$KERASCNN_PIPELINES``), from any working folder. Module level and ``register()``
import the standard library only (``kerascnn --help`` imports no TensorFlow).
"""

from __future__ import annotations

import json
import os


def _policy_and_data(name):
    """``(Policy, DataConfig or None)``: a policy name, or a recipe's ``[data]``
    policy with its options (the recipe parsed strictly, as ``kerascnn train`` does)."""
    from kerascnn.data.policies import get_policy, list_policies

    if name in list_policies():
        return get_policy(name), None
    from kerascnn.training.recipe import load_recipe, policy_options

    try:
        data = load_recipe(name).data
    except ValueError as err:
        raise ValueError(f"not a policy ({', '.join(list_policies())}) and {err}") from None
    return get_policy(data.policy, **policy_options(data)), data


def _load(spec, split, data_dir, data):
    """``load_source`` of the command line's or the recipe's source."""
    from kerascnn.data.sources import load_source

    kwargs = {}
    data_dir = data_dir or (data.data_dir if data is not None else None)
    if data_dir:
        kwargs["data_dir"] = data_dir
    if data is not None and data.manual_dir:  # ignored by files on disk
        kwargs["manual_dir"] = os.path.expanduser(data.manual_dir)
    return load_source(spec, split=split, **kwargs)


def _grid(images, rows, cols, titles, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kerascnn._io import atomic_path

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
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=100, format=os.path.splitext(out)[1][1:] or "png")
    plt.close(fig)


def show_augmentations(policy, source, *, out, rows=4, cols=6, seed=0,
                       image_size=None):
    """Writes a PNG grid: each row one image, its centre view then ``cols - 1``
    augmented samples (no mean subtracted, clipped to 0-255 for display)."""
    import numpy as np
    import tensorflow as tf

    from kerascnn.data.pipeline import eval_dataset, train_dataset
    from kerascnn.data.policies import get_policy
    from kerascnn.data.preprocessing import Preprocessing
    from kerascnn.data.sizes import hw
    from kerascnn.data.sources import Source, from_arrays

    policy = get_policy(policy)
    size = hw(image_size or policy.image_size)
    # the first `rows` examples, labelled by their row: each batch is sorted back
    examples = [x for x, _ in source.take(rows).dataset]
    n = len(examples)
    if n == 0:
        raise ValueError(f"{source.name} gave no images. Received: source={source!r}")
    ids = np.arange(n, dtype=np.int64)
    names = [str(i) for i in ids]
    if source.images is not None:
        few = from_arrays(source.images[:n], ids, names, name=source.name)
    else:
        few = Source(dataset=tf.data.Dataset.from_tensor_slices((tf.stack(examples), ids)),
                     encoded=source.encoded, class_names=names, num_examples=n,
                     channels=source.channels, name=source.name, all_jpeg=source.all_jpeg)
    resize = {"none": None, "center": policy.resize}.get(
        policy.example, max(size) * 256 // 224)  # 256 for a 224 crop
    shown = Preprocessing(size, source.channels)  # mean None: nothing subtracted
    centre = next(iter(eval_dataset(few, batch_size=n,
                                    preprocessing=shown.replace(resize=resize))))[0]
    ds = train_dataset(few, policy, batch_size=n, seed=seed, preprocessing=shown,
                       image_size=size, shuffle_buffer=1, repeat=True)
    samples = []
    for x, y in ds.take(cols - 1):
        samples.append(tf.gather(x, tf.argsort(y)))
    images = tf.concat([centre[:, None], tf.stack(samples, 1)], axis=1)
    images = np.clip(np.round(images.numpy()), 0, 255).astype(np.uint8)
    titles = ["centre view"] + [f"{policy.name} #{i}" for i in range(1, cols)]
    _grid(images, n, cols, titles, out)
    return out


def _writable_folder(path, arg):
    """Creates the folder of ``path`` and checks that it can be written, before any
    work whose result would land there."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as err:
        raise ValueError(f"cannot create the folder {folder} ({err.strerror}). "
                         f"Received: {arg}={path!r}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"the folder {folder} is not writable. Received: {arg}={path!r}")


def _show(args) -> int:
    policy, data = _policy_and_data(args.policy)
    spec = args.source or (data.source if data is not None else "fashion_mnist")
    _writable_folder(args.out, "--out")
    source = _load(spec, args.split, args.data_dir, None if args.source else data)
    size = args.image_size or (data.image_size if data is not None else None)
    show_augmentations(policy, source, out=args.out, rows=args.rows, cols=args.cols,
                       seed=args.seed, image_size=size)
    print(f"wrote {args.out} ({policy.name} policy on {source.name})")
    return 0


def _stats(args) -> int:
    import numpy as np

    from kerascnn._io import atomic_path, write_json
    from kerascnn.data.stats import compute_stats

    data = _policy_and_data(args.recipe)[1] if args.recipe else None
    if args.recipe and data is None:
        raise ValueError(f"a policy name is not a recipe. Received: recipe={args.recipe!r}")
    spec = args.source or (data.source if data is not None else None)
    if spec is None:
        raise ValueError("give a RECIPE or --source. Received: neither")
    split = args.split or (data.train_split if data is not None else "train")
    _writable_folder(args.out, "--out")  # before the pass: its result is never lost
    source = _load(spec, split, args.data_dir, None if args.source else data)
    size = tuple(args.image_size) if args.image_size else None
    result = compute_stats(source, per_pixel=args.per_pixel, image_size=size,
                           max_examples=args.max_examples)
    result.update(source=spec, split=split, channels=source.channels)
    if args.per_pixel:
        npy = os.path.splitext(args.out)[0] + "_per_pixel_mean.npy"
        with atomic_path(npy) as tmp:
            np.save(tmp, result.pop("per_pixel_mean"))
        result["per_pixel_mean_file"] = npy
    write_json(args.out, result, indent=2)
    print(json.dumps({k: v for k, v in result.items() if k != "eigvec"}))
    print(f"wrote {args.out}")
    return 0


def register(subparsers) -> None:
    show = subparsers.add_parser(
        "show-augmentations",
        help="write a PNG grid of a policy's augmented samples",
        description="Draw a few images of a source with a training policy's "
        "augmentation (first column: the centre view). POLICY is a policy name "
        "(alexnet, vgg, googlenet, resnet, cifar) or a recipe (a .toml path, or a "
        "name under pipelines/) whose [data] table names one; the recipe's source, "
        "image size and policy options are used.",
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
    show.set_defaults(func=_show)

    stats = subparsers.add_parser(
        "dataset-stats",
        help="mean RGB, per-pixel mean and RGB PCA of a source, as JSON",
        description="One pass over a source (--source, or a RECIPE's training "
        "split): mean RGB, optional per-pixel mean (saved next to the JSON as .npy), "
        "eigenvalues/vectors of the RGB covariance for PCA lighting (scaled like "
        "kerascnn.data.stats' ImageNet defaults). The --out folder is created and "
        "checked before the pass.",
    )
    stats.add_argument("recipe", nargs="?", metavar="RECIPE",
                       help="a recipe (.toml path or name under pipelines/): its source")
    stats.add_argument("--source")
    stats.add_argument("--split", help="default: the recipe's train_split, else train")
    stats.add_argument("--data-dir")
    stats.add_argument("--out", default="dataset_stats.json")
    stats.add_argument("--per-pixel", action="store_true")
    stats.add_argument("--image-size", type=int, nargs=2, metavar=("H", "W"))
    stats.add_argument("--max-examples", type=int)
    stats.set_defaults(func=_stats)
