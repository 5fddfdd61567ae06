"""Cost of Grad-CAM over plain ``predict`` on the same images.

Grad-CAM (``kerascnn.explain.grad_cam``) of a batch is one forward pass to the last
feature map, the head above it, and one backward pass of the head (the gradient with
respect to the map, not the weights), compiled once per model and layer; a backward
pass costs about two forward passes, so the ratio should be about 2-3x predict when the
backward pass reaches deep (``--layer`` low in the network) and less when only the head
is differentiated (the default last feature map). Baseline: ``model.predict`` on the
same images, same batch size, measured in the same run, and ``predict_on_batch`` per
batch (the same compiled forward pass without ``predict``'s input pipeline); all traced
before timing, best of ``--repeats``.

    .venv/bin/python benchmarks/explain.py [--model resnet20] [--images 512] [--batch-size 64]
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet20", help="registry name (default resnet20)")
    parser.add_argument("--image-size", type=int, help="input size (default: the network's)")
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--layer", action="append", default=None,
                        help="Grad-CAM at this layer too (repeatable; default: the last "
                        "feature map and the first block's output of a ResNet)")
    args = parser.parse_args()

    import keras
    import numpy as np

    from kerascnn.applications import get_model, get_model_info
    from kerascnn.explain import grad_cam, last_conv_layer

    info = get_model_info(args.model)
    size = args.image_size or info.input_shape[0]
    keras.utils.set_random_seed(0)
    model = get_model(args.model, input_shape=(size, size, 3), classes=info.classes)
    x = np.random.default_rng(0).normal(0, 60, (args.images, size, size, 3)).astype(np.float32)
    layers = [last_conv_layer(model)]
    if args.layer:
        layers += args.layer
    elif "conv2_block1_out" in [layer.name for layer in model.layers]:
        layers.append("conv2_block1_out")  # the backward pass through nearly all the net
    b = args.batch_size

    def predict():
        model.predict(x, batch_size=b, verbose=0)

    def forward():  # the same compiled forward pass, without predict's input pipeline
        for start in range(0, len(x), b):
            model.predict_on_batch(x[start:start + b])

    def explain(layer):
        for start in range(0, len(x), b):
            grad_cam(model, x[start:start + b], layer=layer)

    runs = {"predict": predict, "predict_on_batch": forward, **{f"grad_cam@{name}": (lambda n=name: explain(n)) for name in layers}}
    for fn in runs.values():  # trace / compile
        fn()
    times = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    best = {name: min(t) for name, t in times.items()}
    print(f"model {args.model} ({size}x{size}), {args.images} images, batch {b}, best of "
          f"{args.repeats}, backend {keras.backend.backend()}")
    for name, seconds in best.items():
        print(f"{name:<32}: {seconds:8.3f} s  ({args.images / seconds:8.1f} images/s)")
    for name in layers:
        for base in ("predict", "predict_on_batch"):
            ratio = best[f"grad_cam@{name}"] / best[base]
            print(f"ratio grad_cam@{name} / {base} = {ratio:.2f}x")
    print("(target: about 2-3x: one forward and one backward pass; less when the backward "
          "pass is only the head's)")


if __name__ == "__main__":
    main()
