"""Where an image's time goes in the ``resnet`` policy: CPU time per image of each stage.

``pipeline.py`` compares whole pipelines; this splits the per-image work of the
``resnet`` policy into its parts, each measured as a single-threaded ``tf.data`` map over
the same in-memory JPEGs (CPU time of this process, best of ``--repeats``), and prints
each as a ratio against a full ``decode_jpeg`` of the same files measured in the same
run. Each image draws its own window from the policy (``Policy.window``). The last line
is the floor of any pipeline that decodes those windows and resizes them bilinearly to
224x224 with TensorFlow's kernels, whatever surrounds them, as a bound on the two ratios
that ``pipeline.py`` measures; the Model Garden step is ``pipeline.py``'s baseline, per
image (without its batching of float32 images).

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
from pipeline import model_garden_example  # noqa: E402
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
    paths = list(source.paths[:args.images])
    policy = get_policy("resnet")
    size = (224, 224)
    # each image with its own seed, so the windows follow the policy's S ~ U{256..480}
    files = tf.data.Dataset.from_tensor_slices((
        tf.stack([tf.io.read_file(p) for p in paths]),
        tf.stack([tf.range(len(paths), dtype=tf.int64),
                  tf.fill([len(paths)], tf.constant(7, tf.int64))], axis=1),
    )).cache()

    def crop(contents, seed):  # the policy's own window, decoded alone
        window = policy.window(tf.io.extract_jpeg_shape(contents)[:2], seed, size)
        return tf.io.decode_and_crop_jpeg(contents, window, channels=3)

    def resize(image):
        return tf.cast(tf.image.resize(image, size) + 0.5, tf.uint8)

    def example(contents, seed, dct_scaling):
        return policy.example_fn(contents, seed, encoded=True, channels=3,
                                 image_size=size, jpeg_only=True, dct_scaling=dct_scaling)

    def model_garden_example_step(contents, seed):
        return model_garden_example(contents)

    augment = compiled_batch_fn(policy, image_size=size)
    batch_seed = tf.constant([1, 2], tf.int64)
    parts = [
        ("full decode_jpeg (baseline)", lambda c, s: tf.io.decode_jpeg(c, channels=3)[0, 0],
         {}),
        ("decode_and_crop of the window", lambda c, s: crop(c, s)[0, 0], {}),
        ("  + bilinear resize to 224, uint8", lambda c, s: resize(crop(c, s))[0, 0], {}),
        ("policy example step, no DCT branch", lambda c, s: example(c, s, False)[0, 0], {}),
        ("policy example step, DCT branch", lambda c, s: example(c, s, True)[0, 0], {}),
        ("  + the XLA batch step (flip, lighting)", lambda c, s: example(c, s, False),
         dict(post=lambda x: augment(x, batch_seed))),
        ("model-garden example step (pipeline.py)", model_garden_example_step, {}),
    ]
    print(f"{len(paths)} JPEGs (~400x350) in {args.dir}; one thread; CPU ms per image, "
          f"best of {args.repeats}; ratio against the full decode measured in this run")
    times = []
    for name, fn, kw in parts:
        times.append(per_image_cpu(files, fn, args.repeats, **kw))
        print(f"{name:<40s} {1000 * times[-1]:6.3f} ms   {times[-1] / times[0]:5.2f}x",
              flush=True)
    floor = times[2]  # what no resnet pipeline can avoid
    print(f"floor: decoding the policy's windows (decode_and_crop_jpeg) and resizing them "
          f"(ResizeBilinear) costs {floor / times[0]:.2f}x a full decode and "
          f"{floor / times[-1]:.2f}x the model-garden step, so a resnet pipeline built on "
          f"these kernels reaches at most {times[0] / floor:.2f}x decode-only's and "
          f"{times[-1] / floor:.2f}x model-garden's images per CPU-second (targets: 0.9x, "
          f"1.5x), whatever else it does")
    return 0


if __name__ == "__main__":
    sys.exit(main())
