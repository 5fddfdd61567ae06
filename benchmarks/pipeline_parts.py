"""Where an image's time goes in the ``resnet`` policy: CPU time per image of each stage.

``pipeline.py`` compares whole pipelines; this splits the per-image work of the
``resnet`` policy into its parts, each measured as a single-threaded ``tf.data`` map over
the same in-memory JPEGs (CPU time of this process, best of ``--repeats``), and prints
each as a ratio against a full ``decode_jpeg`` of the same files measured in the same
run. It shows the floor of any pipeline that decodes the crop window and resizes it
bilinearly to 224x224, whatever surrounds them.

    .venv/bin/python benchmarks/pipeline_parts.py [--images 512] [--repeats 5]
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
from kerascnn.data import get_policy, load_source  # noqa: E402
from kerascnn.data.pipeline import compiled_batch_fn  # noqa: E402


def per_image_cpu(files, fn, repeats, post=None, batch=64):
    """Best CPU seconds per image of ``files.map(fn).batch(batch)`` [+ ``post`` on each
    batch], one thread. Every stage is batched so that the Python loop that drains the
    dataset costs the same, and little, per image."""
    ds = files.map(fn, num_parallel_calls=1).batch(batch, drop_remainder=True)
    if post:
        ds = ds.map(post)
    options = tf.data.Options()
    options.threading.private_threadpool_size = 1
    options.autotune.enabled = False
    ds = ds.with_options(options)
    n = int(files.cardinality()) // batch * batch
    for _ in ds:  # warm-up: tracing, XLA compilation
        pass
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        for _ in ds:
            pass
        best = min(best, (time.process_time() - start) / n)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dir", default=os.path.join(tempfile.gettempdir(),
                                                      "kerascnn-bench-jpegs"))
    args = parser.parse_args(argv)
    make_jpeg_folder(args.dir, count=max(args.images, 500))
    source = load_source(args.dir)
    paths = source.info["paths"][:args.images]
    files = tf.data.Dataset.from_tensor_slices(
        tf.stack([tf.io.read_file(p) for p in paths])).cache()
    policy = get_policy("resnet")
    seed = tf.constant([1, 2], tf.int64)
    size = (224, 224)

    def window(contents):  # the policy's mean window: S = 368 of U[256, 480]
        shape = tf.cast(tf.io.extract_jpeg_shape(contents)[:2], tf.float32)
        side = tf.round(224.0 * tf.reduce_min(shape) / 368.0)
        return tf.cast(tf.stack([(shape[0] - side) // 2, (shape[1] - side) // 2,
                                 side, side]), tf.int32)

    def crop(contents):
        return tf.io.decode_and_crop_jpeg(contents, window(contents), channels=3)

    def resize(image):
        return tf.cast(tf.image.resize(image, size) + 0.5, tf.uint8)

    def example(contents, dct_scaling):
        return policy.example_fn(contents, seed, encoded=True, channels=3,
                                 image_size=size, jpeg_only=True, dct_scaling=dct_scaling)

    augment = compiled_batch_fn(policy, image_size=size)
    parts = [
        ("full decode_jpeg (baseline)", lambda c: tf.io.decode_jpeg(c, channels=3)[0, 0], {}),
        ("decode_and_crop of the window", lambda c: crop(c)[0, 0], {}),
        ("  + bilinear resize to 224, uint8", lambda c: resize(crop(c))[0, 0], {}),
        ("policy example step, no DCT branch", lambda c: example(c, False)[0, 0], {}),
        ("policy example step, DCT branch", lambda c: example(c, True)[0, 0], {}),
        ("  + the XLA batch step (flip, lighting)", lambda c: example(c, False),
         dict(post=lambda x: augment(x, seed))),
    ]
    print(f"{len(paths)} JPEGs (~400x350) in {args.dir}; one thread; CPU ms per image, "
          f"best of {args.repeats}; ratio against the full decode measured in this run")
    base = None
    for name, fn, kw in parts:
        t = per_image_cpu(files, fn, args.repeats, **kw)
        base = base or t
        print(f"{name:<40s} {1000 * t:6.3f} ms   {t / base:5.2f}x", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
