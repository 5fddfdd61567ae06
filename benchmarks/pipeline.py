"""Input-pipeline throughput: kerascnn.data's policies vs two baselines.

    python benchmarks/pipeline.py [--images 512] [--batch-size 64] [--rounds 5]

Over a folder of >= 500 ImageNet-sized JPEGs (generated from scikit-learn's sample
photographs, see ``_images.py``), measures images/s of

* ``decode-only``: ``read_file`` + ``decode_jpeg`` in a parallel map, nothing else —
  the practical limit of a CPU pipeline (target: ours >= 0.9x);
* ``model-garden``: a per-example reference in the style of TF Model Garden's
  ``imagenet_preprocessing`` (``sample_distorted_bounding_box`` +
  ``decode_and_crop_jpeg`` + flip + resize + mean subtraction in one per-example
  ``map``, then ``batch``) — target for ``resnet``: >= 1.5x;
* our ``resnet`` and ``alexnet`` policies (``kerascnn.data.train_dataset``),

all measured in the same run at steady state, as training runs them (one repeating
iterator: each round drops 8 batches, while tf.data's autotuning settles, and times
the next 16; the median of rounds taken in turn across the pipelines), and prints
the ratios by wall clock and by CPU time.
Also prints the in-memory Fashion-MNIST ``cifar`` pipeline's rate for reference.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tensorflow as tf  # noqa: E402

from _images import make_jpeg_folder  # noqa: E402
from kerascnn.data import Preprocessing, load_source, stats, train_dataset  # noqa: E402

AUTOTUNE = tf.data.AUTOTUNE
MEAN = tf.constant(stats.IMAGENET_MEAN_RGB, tf.float32)


def _files(source, seed):
    ds = tf.data.Dataset.from_tensor_slices(
        (list(source.paths), tf.constant(source.labels, tf.int64)))
    return ds.shuffle(len(source.paths), seed=seed).repeat()


def decode_only(source, batch_size):
    ds = _files(source, 0).map(
        # one pixel out: forces the full decode, batches without resizing
        lambda p, y: (tf.io.decode_jpeg(tf.io.read_file(p), channels=3)[0, 0], y),
        num_parallel_calls=AUTOTUNE)
    return ds.batch(batch_size, drop_remainder=True).prefetch(AUTOTUNE)


def model_garden_example(contents):
    """tensorflow/models official/legacy/image_classification/resnet/
    imagenet_preprocessing.py, ``preprocess_image(is_training=True)`` in spirit:
    JPEG bytes -> float32 (224, 224, 3)."""
    shape = tf.io.extract_jpeg_shape(contents)
    begin, size, _ = tf.image.sample_distorted_bounding_box(
        shape, bounding_boxes=tf.constant([0.0, 0.0, 1.0, 1.0], shape=[1, 1, 4]),
        min_object_covered=0.1, aspect_ratio_range=[0.75, 1.33],
        area_range=[0.05, 1.0], max_attempts=100,
        use_image_if_no_bounding_boxes=True)
    y, x, _ = tf.unstack(begin)
    h, w, _ = tf.unstack(size)
    image = tf.io.decode_and_crop_jpeg(contents, tf.stack([y, x, h, w]), channels=3)
    image = tf.image.random_flip_left_right(image)
    image = tf.image.resize(image, [224, 224], method="bilinear")
    image.set_shape([224, 224, 3])
    return image - MEAN


def model_garden(source, batch_size):
    """The Model Garden example step in one per-example map, then ``batch``."""
    ds = _files(source, 0).map(
        lambda path, label: (model_garden_example(tf.io.read_file(path)), label),
        num_parallel_calls=AUTOTUNE)
    return ds.batch(batch_size, drop_remainder=True).prefetch(AUTOTUNE)


def rate(ds, batch_size, epochs):
    """images/s of ``epochs`` passes over ``ds`` (one untimed warm-up pass)."""
    for _ in ds:  # warm-up: tracing, XLA compilation, file cache
        pass
    start = time.perf_counter()
    batches = 0
    for _ in range(epochs):
        for _ in ds:
            batches += 1
    return batches * batch_size / (time.perf_counter() - start)


def measure(pipelines, batch_size, rounds, warmup=8, timed=16):
    """Median steady-state images/s (wall clock) and images per CPU-second (this
    process's CPU time, all threads) of each (repeating) pipeline.

    Training keeps one iterator for many epochs, and tf.data's autotuning needs a few
    batches to settle the parallelism of a fresh one, so each round opens a new
    iterator per pipeline, drops ``warmup`` batches untimed and times the next
    ``timed``. The pipelines take turns round by round, so that load from other
    processes on a shared machine hits them all alike; each iterator is closed
    before the next pipeline's round starts. On a busy machine the CPU-time figure
    is the stable one; on an idle one, images/s ~= cores x images/CPU-s."""
    import statistics

    wall = {name: [] for name in pipelines}
    cpu = {name: [] for name in pipelines}
    for _ in range(rounds):
        for name, ds in pipelines.items():
            it = iter(ds)
            for _ in range(warmup):  # tracing / XLA compilation on the first round
                next(it)
            start, start_cpu = time.perf_counter(), time.process_time()
            for _ in range(timed):
                next(it)
            wall[name].append(timed * batch_size / (time.perf_counter() - start))
            cpu[name].append(timed * batch_size / (time.process_time() - start_cpu))
            del it
    return ({name: statistics.median(v) for name, v in wall.items()},
            {name: statistics.median(v) for name, v in cpu.items()})


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5,
                        help="timed rounds per pipeline, taken in turn (median)")
    parser.add_argument("--dir", default=os.path.join(tempfile.gettempdir(),
                                                      "kerascnn-bench-jpegs"))
    args = parser.parse_args(argv)
    if args.images < 500:
        parser.error("--images must be >= 500 (the issue's benchmark size)")
    make_jpeg_folder(args.dir, count=args.images)
    source = load_source(args.dir)
    b = args.batch_size
    print(f"{source.num_examples} JPEGs (~400x350) in {args.dir}; batch {b}; median "
          f"of {args.rounds} rounds of 16 batches (after 8 untimed) taken in turn; "
          f"{os.cpu_count()} CPU cores; load average {os.getloadavg()[0]:.1f}")
    results = measure({
        "decode-only": decode_only(source, b),
        "model-garden": model_garden(source, b),
        # the ImageNet mean subtracted, as model-garden does
        "resnet": train_dataset(source, "resnet", batch_size=b, seed=0, repeat=True,
                                preprocessing=Preprocessing(224, mean=stats.IMAGENET_MEAN_RGB)),
        "alexnet": train_dataset(source, "alexnet", batch_size=b, seed=0, repeat=True,
                                 preprocessing=Preprocessing(227, mean=stats.IMAGENET_MEAN_RGB)),
    }, b, args.rounds)
    wall, cpu = results
    for name in wall:
        print(f"{name:>14s}: {wall[name]:7.0f} images/s   {cpu[name]:7.0f} images/CPU-s")
    for label, r in (("images/s", wall), ("images/CPU-s", cpu)):
        for policy in ("resnet", "alexnet"):
            print(f"{policy:>8s} ({label}): {r[policy] / r['model-garden']:.2f}x "
                  f"model-garden (target for resnet >= 1.5x), "
                  f"{r[policy] / r['decode-only']:.2f}x decode-only (target >= 0.9x)")
    try:
        fm = load_source("fashion_mnist")
        fm_rate = rate(train_dataset(fm, "cifar", batch_size=128, seed=0,
                                     image_size=(32, 32)), 128, 1)
        print(f"fashion_mnist cifar policy (in memory, 32x32): {fm_rate:.0f} images/s")
    except FileNotFoundError as err:
        print(f"(fashion_mnist skipped: {err})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
