"""Cost of the ``10crop`` protocol over ``center`` on the same images.

The network does 10x the work for 10 crops; the views are built by one gather per image
and the 10 views of B images go through the network as one batch of 10B, so the ratio
should stay within 11x (overhead <= 10 %). Baseline: ``center`` measured in the same run,
same model, same images, same batch of images.

    .venv/bin/python benchmarks/evaluation.py [--model resnet20] [--images 2000] [--batch-size 50]
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet20", help="registry name (default resnet20, 32x32 input)")
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import numpy as np
    import tensorflow as tf

    from kerascnn.applications import get_model, get_model_info
    from kerascnn.data import Preprocessing, from_arrays, load_source
    from kerascnn.evaluation import evaluate

    test = load_source("fashion_mnist", "test")
    n = args.images
    images = test.images[:n]
    info = get_model_info(args.model)
    size = info.input_shape[0]
    if size != 32:
        images = tf.image.resize(np.repeat(images, 3, -1), (size, size)).numpy().astype(np.uint8)
        channels = 3
    else:
        images = np.pad(images, [(0, 0), (2, 2), (2, 2), (0, 0)])
        channels = 1
    model = get_model(args.model, input_shape=(size, size, channels), classes=10)
    source = from_arrays(images, test.labels[:n], test.class_names, name="fashion_mnist")
    resize = round(size * 256 / 224)
    common = dict(batch_size=args.batch_size, resize=resize, verbose=0,
                  preprocessing=Preprocessing((size, size), channels))  # no mean
    evaluate(model, source, ["center", "10crop"], max_examples=args.batch_size, **common)  # trace

    times = {"center": [], "10crop": []}
    for _ in range(args.repeats):
        for protocol in times:
            start = time.perf_counter()
            evaluate(model, source, protocol, **common)
            times[protocol].append(time.perf_counter() - start)
    center, ten = min(times["center"]), min(times["10crop"])
    print(f"model {args.model} ({size}x{size}), {n} images, batch {args.batch_size}, best of {args.repeats}, device {tf.config.list_logical_devices()[-1].device_type}")
    print(f"center : {center:8.3f} s  ({n / center:8.1f} images/s)")
    print(f"10crop : {ten:8.3f} s  ({n / ten:8.1f} images/s)")
    print(f"ratio 10crop / center = {ten / center:.2f}x  (target <= 11x; 10x is the network's own work)")


if __name__ == "__main__":
    main()
