"""Training throughput of the default recipe's network: precision, XLA, batch norm.

The default recipe (``pipelines/fashion_mnist.toml``) has 10 minutes on 2 CPU cores, so
its images per second decide how far it trains. This measures ``model.fit`` steps of
CIFAR ResNet-20 (option A) on 28x28x1 inputs with the recipe's optimizer (``L2SGD``) and
metrics, for each variant ``precision:jit:bn`` (``bn``: ``fused`` is
``kerascnn.layers.BatchNormalization`` with TensorFlow's fused kernel, ``keras`` is Keras'
own implementation), each in a fresh subprocess (the precision policy is global), and
prints images/s (from the median step time, timed per step by a callback) and the
ratio against the first variant at the first batch size, measured in the same run.

    .venv/bin/python benchmarks/train_step.py [--steps 60] [--batch-sizes 128]
        [--variants float32:false:keras,mixed_bfloat16:false:keras,...]
"""

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def measure(precision, jit, bn, batch, steps, model_name, size):
    import keras
    import numpy as np
    import tensorflow as tf

    from kerascnn.layers.batch_norm import BatchNormalization

    if bn == "keras":  # Keras' own implementation: never take the fused path
        BatchNormalization._fusable = lambda self, inputs, mask: False

    from kerascnn.applications import get_model
    from kerascnn.training.metrics import default_metrics
    from kerascnn.training.optimizers import L2SGD

    keras.mixed_precision.set_global_policy(precision)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch * 8, size, size, 1)).astype("float32")
    y = rng.integers(0, 10, size=(batch * 8,)).astype("int32")
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch, drop_remainder=True)
    ds = ds.repeat().prefetch(2)
    model = get_model(model_name, input_shape=(size, size, 1), classes=10, shortcut="A")
    model.compile(optimizer=L2SGD(learning_rate=0.05, momentum=0.9, l2=1e-4),
                  loss=keras.losses.SparseCategoricalCrossentropy(),
                  metrics=default_metrics(), jit_compile=jit)
    times = []

    class StepTimes(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            times.append(time.perf_counter())

    # the first 10 steps trace and warm up; the median step ignores stalls from
    # other work on a shared machine (and fit's own start and end)
    model.fit(ds, steps_per_epoch=steps + 10, epochs=1, verbose=0, callbacks=[StepTimes()])
    return batch / float(np.median(np.diff(times[10:])))


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch-sizes", default="128")
    parser.add_argument("--variants", default="float32:false:keras,mixed_bfloat16:false:keras,"
                        "mixed_bfloat16:true:keras,float32:false:fused,"
                        "mixed_bfloat16:false:fused")
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        precision, jit, bn, batch = args.child.split(":")
        rate = measure(precision, jit == "true", bn, int(batch), args.steps, args.model,
                       args.size)
        print(json.dumps({"rate": rate}))
        return

    batches = [int(b) for b in args.batch_sizes.split(",")]
    variants = [v.split(":") for v in args.variants.split(",")]
    results = {}
    for batch in batches:
        for precision, jit, bn in variants:
            key = f"{precision}:{jit}:{bn}:{batch}"
            out = subprocess.run(
                [sys.executable, __file__, "--child", key, "--steps", str(args.steps),
                 "--model", args.model, "--size", str(args.size)],
                capture_output=True, text=True, check=True)
            results[key] = json.loads(out.stdout.strip().splitlines()[-1])["rate"]
            print(f"{precision:>15} jit={jit:<5} bn={bn:<5} batch {batch:>4}: "
                  f"{results[key]:8.1f} images/s", flush=True)
    base_key = ":".join(variants[0]) + f":{batches[0]}"
    print(f"\n{args.model} {args.size}x{args.size}x1, {args.steps} steps per variant, "
          f"{os.cpu_count()} CPUs; ratio against {base_key}:")
    for key, rate in results.items():
        print(f"  {key:<34} {rate / results[base_key]:5.2f}x")


if __name__ == "__main__":
    main()
