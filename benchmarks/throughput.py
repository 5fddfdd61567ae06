"""Training throughput of the papers' ImageNet networks: images/s, FLOP/s, share of peak.

Measures Keras' own training step, ``model.train_on_batch`` (forward, loss, backward
and the optimizer update, as one jitted function under JAX and one ``tf.function``
under TensorFlow, exactly what ``fit`` runs per step) on one synthetic batch of
random images and labels that is already on the device, for

* ``alexnet`` (227x227), ``vgg16``, ``googlenet`` with its two auxiliary heads
  (``aux_logits=True``: the step trains main + 0.3 * (aux1 + aux2)), ``resnet50``
  (the paper's, stride in the 1x1 conv) and ``resnet50_v1.5`` (``stride_in_1x1=False``,
  torchvision's and NVIDIA's), all 224x224 unless ``--image-size`` says otherwise;
* ``fp32`` (float32 policy) and ``bf16`` (``mixed_bfloat16``: bfloat16 compute,
  float32 variables and softmax),

compiled with ``L2SGD`` (momentum 0.9, the papers' coupled L2 decay) and sparse
categorical cross-entropy, under the Keras backend that ``--backend`` or
``KERAS_BACKEND`` selects (``jax`` or ``tensorflow``). Under JAX nothing imports
TensorFlow, so it runs on a machine that has JAX alone.

Timing: ``--warmup`` untimed steps (the first one compiles), then ``--steps`` timed
steps. ``train_on_batch`` returns the loss as a Python float, so every step ends with
the device synchronised; after the last step a weight is read back as well. The rate
is the batch over the median step time (robust to other work on a shared machine;
the mean over the whole window is in ``--json``). The Python work of one
``train_on_batch`` call is inside the step; ``fit`` can overlap part of it with the
device's work.

FLOPs: ``kerascnn.applications.count_macs`` of the graph being trained, at its input
size, x 2 (a multiply-add is two FLOPs) x 3 (the backward pass counted as twice the
forward, the usual convention). At the default input that is the registry's
``get_model_info(name).macs`` for ``alexnet``, ``vgg16`` and ``resnet50``; the
registry counts GoogLeNet's inference graph, and the step also runs its auxiliary
heads (+8.4 M, +0.5 %); ``resnet50_v1.5`` does 4.09 G (torchvision's figure) against
the paper's 3.86 G. An exact count also holds at other sizes, where the
(size/default)^2 rule is off by the classifier's constant share.
AlexNet and VGG-16 keep their classifiers, so they build at 227 and 224 only.

Share of peak, on a GPU: against ``--peak-tflops`` or the table ``PEAK_TFLOPS``
(dense rates; sources next to each figure). fp32 runs in TF32 on the tensor cores of
an A100/H100/H200 under both backends' defaults, so its peak is TF32's.

    python benchmarks/throughput.py [--backend jax] [--networks resnet50,vgg16]
        [--precisions fp32,bf16] [--batch-size 256 | resnet50=256,vgg16=128]
        [--image-size 160 | resnet50=160,googlenet=192] [--steps 30] [--warmup 5]
        [--peak-tflops 790 | bf16=790,fp32=494.7] [--json results.json]

    # on a CPU with both backends: each backend in its own process, ratio JAX/TF
    python benchmarks/throughput.py --compare-backends [--image-size 96 --batch-size 4]

    # scaling over N devices (JAX): --batch-size per device; one device, then N devices
    # with keras.distribution.DataParallel (global batch N x batch), and
    # scaling = img/s on N / (N x img/s on one)
    python benchmarks/throughput.py --backend jax --devices 8 --networks resnet50

Scaling (``--devices N``) runs Keras' ``keras.distribution.DataParallel`` over the
first N local devices (the variables replicated, the batch split; XLA inserts the
gradient all-reduce), the batch placed split across them before the timing, as
kerascnn's ``--strategy mirrored`` trains under JAX. Under TensorFlow it is refused:
``train_on_batch`` of a ``MirroredStrategy`` model is not measured here.

See benchmarks/README.md for the one command to run on the lent GPU machine.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # runs from a plain checkout (the GPU machine installs nothing)
    sys.path.insert(0, ROOT)

# name: (registry name, builder keyword arguments, default batch on a GPU)
# (ResNet-50's 256 came with the throughput target; the others are ours: AlexNet does a fifth of
# ResNet-50's work per image, VGG-16 four times as much)
NETWORKS = {
    "alexnet": ("alexnet", {}, 512),
    "vgg16": ("vgg16", {}, 128),
    "googlenet": ("googlenet", {"aux_logits": True}, 256),
    "resnet50": ("resnet50", {}, 256),
    "resnet50_v1.5": ("resnet50", {"stride_in_1x1": False}, 256),
}
# fc6 of AlexNet and VGG is sized for the map of the default input: with their
# classifier (which the benchmark keeps) they build at 227 and 224 only.
FIXED_SIZE = {"alexnet": 227, "vgg16": 224}
PRECISIONS = {"fp32": "float32", "bf16": "mixed_bfloat16"}
L2 = 1e-4  # the decay's value does not change the step's cost

# Dense (no sparsity) peak TFLOP/s by device name (first match, in this order).
# fp32 is the TF32 tensor-core rate: TensorFlow (since 2.4) and XLA under JAX run
# float32 convolutions and matmuls in TF32 on these chips by default (JAX issue
# jax-ml/jax#12008: "defaulting to TF32 math on A100").
# - bf16 on H100/H200, 790: the figure the throughput target came with, the rate
#   measured on an H200 for an 8192^3 bf16 matmul (769-798 TFLOP/s);
#   the datasheets' dense figure is 989.4 (1,979 "with sparsity" / 2).
# - the others: NVIDIA's datasheets, "with sparsity" figures halved: H100 SXM5 and
#   H200 SXM TF32 494.7; H100 PCIe bf16 756, TF32 378; A100 bf16 312, TF32 156.
PEAK_TFLOPS = (
    ("H100 PCIe", {"bf16": 756.0, "fp32": 378.0}),
    ("H200", {"bf16": 790.0, "fp32": 494.7}),
    ("H100", {"bf16": 790.0, "fp32": 494.7}),
    ("A100", {"bf16": 312.0, "fp32": 156.0}),
)

# --compare-backends defaults: small enough for a 2-core CPU (GoogLeNet's auxiliary
# heads need >= 65; AlexNet and VGG-16 stay at 227 and 224, FIXED_SIZE).
COMPARE_DEFAULTS = {"image_size": "96", "batch_size": "4", "steps": 5, "warmup": 2}


# -- arguments ------------------------------------------------------------------------
def _names(value, choices, flag):
    names = [n.strip() for n in value.split(",") if n.strip()]
    bad = [n for n in names if n not in choices]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"{flag} takes a comma-separated list of {', '.join(choices)}. "
            f"Received: {flag}={value}")
    return names


def _per_name(value, flag, keys, cast=int):
    """``"256"`` (every key) or ``"resnet50=256,vgg16=128"`` -> {key: value}."""
    out = {}
    try:
        if "=" not in value:
            number = cast(value)
            out = {k: number for k in keys}
        else:
            for item in value.split(","):
                key, _, number = item.partition("=")
                key = key.strip()
                if key not in keys:
                    raise ValueError
                out[key] = cast(number)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{flag} takes a number or name=number pairs ({', '.join(keys)}). "
            f"Received: {flag}={value}") from None
    if any(not v > 0 for v in out.values()):
        raise argparse.ArgumentTypeError(f"{flag} must be > 0. Received: {flag}={value}")
    return out


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("jax", "tensorflow"),
                        default=os.environ.get("KERAS_BACKEND") or None,
                        help="Keras backend (default: KERAS_BACKEND, else Keras' own)")
    parser.add_argument("--networks", default=",".join(NETWORKS))
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--batch-size", help="one number, or name=number pairs; default "
                        + ", ".join(f"{n}={b}" for n, (_, _, b) in NETWORKS.items()))
    parser.add_argument("--image-size", help="one number (the networks that take any "
                        "size: AlexNet and VGG-16 stay at 227 and 224), or name=number "
                        "pairs; default each network's registry input (227 AlexNet, 224 "
                        "the others)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default 30)")
    parser.add_argument("--warmup", type=int, default=None,
                        help="untimed steps first, the first compiles (default 5)")
    parser.add_argument("--jit-compile", choices=("auto", "true", "false"), default="auto",
                        help="model.compile(jit_compile=...); JAX always compiles")
    parser.add_argument("--peak-tflops", help="peak TFLOP/s for the share of peak: one "
                        "number, or bf16=..,fp32=..; default: the table, on a GPU")
    parser.add_argument("--json", help="also write every result to this file (with "
                        "--compare-backends: {backend: results})")
    parser.add_argument("--devices", type=int, default=None,
                        help="JAX: also measure on N local devices (DataParallel, "
                        "--batch-size per device) and print the scaling against one")
    parser.add_argument("--compare-backends", action="store_true",
                        help="run under jax and tensorflow (a process each) and print "
                        "the ratio JAX/TF; small sizes by default")
    args = parser.parse_args(argv)
    try:
        args.networks = _names(args.networks, list(NETWORKS), "--networks")
        args.precisions = _names(args.precisions, list(PRECISIONS), "--precisions")
        defaults = COMPARE_DEFAULTS if args.compare_backends else {}
        batch = args.batch_size or defaults.get("batch_size")
        size = args.image_size or defaults.get("image_size")
        args.batch_sizes = {n: b for n, (_, _, b) in NETWORKS.items()}
        args.batch_sizes.update(_per_name(batch, "--batch-size", list(NETWORKS)) if batch else {})
        args.image_sizes = {}
        if size:
            args.image_sizes = _per_name(size, "--image-size", list(NETWORKS))
            for name, fixed in FIXED_SIZE.items():
                if "=" not in size:  # one number: the networks that take any size
                    args.image_sizes.pop(name)
                elif args.image_sizes.get(name, fixed) != fixed:
                    raise argparse.ArgumentTypeError(
                        f"--image-size: {name}'s fc6 is sized for {fixed}x{fixed} inputs "
                        f"(its classifier fixes the size). Received: --image-size={size}")
        args.peak = (_per_name(args.peak_tflops, "--peak-tflops", list(PRECISIONS), float)
                     if args.peak_tflops else None)
    except argparse.ArgumentTypeError as e:
        parser.error(str(e))
    args.steps = args.steps if args.steps is not None else defaults.get("steps", 30)
    args.warmup = args.warmup if args.warmup is not None else defaults.get("warmup", 5)
    if args.devices is not None and (args.devices < 2 or args.compare_backends):
        parser.error("--devices takes a number of devices >= 2 (one device is always "
                     f"measured), without --compare-backends. Received: --devices={args.devices}")
    if args.devices is not None and args.backend and args.backend != "jax":
        parser.error(_devices_problem(args.backend, args.devices))  # before Keras loads
    if args.steps < 1 or args.warmup < 1:
        parser.error(f"--steps and --warmup must be >= 1 (the first warm-up step "
                     f"compiles). Received: --steps={args.steps} --warmup={args.warmup}")
    return args


# -- one measurement ------------------------------------------------------------------
def device_info(backend):
    """(platform, device name): 'gpu'/'cpu' and e.g. 'NVIDIA H200'."""
    kind = "cpu"
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform == "gpu":
            return "gpu", device.device_kind
    elif backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            details = tf.config.experimental.get_device_details(gpus[0])
            return "gpu", details.get("device_name", "GPU")
    try:
        with open("/proc/cpuinfo") as f:
            kind = next((line.split(":", 1)[1].strip() for line in f
                         if line.startswith("model name")), kind)
    except OSError:
        pass
    return "cpu", f"{kind} ({os.cpu_count()} CPUs)"


def peak_for(device, platform, precision, override):
    """(peak TFLOP/s, where it came from) or (None, None)."""
    if override and precision in override:
        return override[precision], "--peak-tflops"
    if platform != "gpu":
        return None, None
    for key, peaks in PEAK_TFLOPS:
        if key.lower() in device.lower():
            return peaks[precision], f"table ({key})"
    return None, None


def _sync(model):
    """Waits for the device: reads the last weight back (the update ends the step)."""
    import keras

    keras.ops.convert_to_numpy(model.trainable_variables[-1].value)


def _data_parallel(devices):
    """A context for ``devices`` local devices: Keras' ``DataParallel`` scope, or
    nothing for one device; and a function placing a batch (split across them)."""
    import contextlib

    import keras

    if devices == 1:
        return contextlib.nullcontext(), keras.ops.convert_to_tensor
    import jax

    distribution = keras.distribution.DataParallel(
        devices=[f"{d.platform}:{d.id}" for d in jax.local_devices()[:devices]])

    def place(array):
        layout = distribution.get_data_layout(array.shape).backend_layout
        return jax.device_put(array, layout)

    return distribution.scope(), place


def measure(network, precision, batch, size, steps, warmup, jit_compile, devices=1):
    """One (network, precision) run; a dict of the figures. ``devices`` > 1: on that
    many devices with ``keras.distribution.DataParallel``, ``batch`` per device."""
    import keras
    import numpy as np

    from kerascnn.applications import count_macs, get_model
    from kerascnn.training.optimizers import L2SGD

    registry_name, kwargs, _ = NETWORKS[network]
    per_device, batch = batch, batch * devices
    scope, place = _data_parallel(devices)
    keras.mixed_precision.set_global_policy(PRECISIONS[precision])
    try:
        with scope:
            model = get_model(registry_name, input_shape=(size, size, 3), **kwargs)
            # the step runs GoogLeNet's auxiliary heads too: count the graph that has them
            macs = count_macs(model.with_aux_outputs() if hasattr(model, "with_aux_outputs")
                              else model)
            model.compile(optimizer=L2SGD(learning_rate=0.01, momentum=0.9, l2=L2),
                          loss=keras.losses.SparseCategoricalCrossentropy(),
                          jit_compile=jit_compile)
            rng = np.random.default_rng(0)
            classes = model.outputs[0].shape[-1]
            x = place(rng.normal(size=(batch, size, size, 3)).astype("float32"))
            y = place(rng.integers(0, classes, size=(batch,)).astype("int32"))

            start = time.perf_counter()
            model.train_on_batch(x, y)
            _sync(model)
            first = time.perf_counter() - start  # trace + compile + one step
            for _ in range(warmup - 1):
                model.train_on_batch(x, y)
            _sync(model)
            times = []
            window = time.perf_counter()
            for _ in range(steps):
                t0 = time.perf_counter()
                loss = model.train_on_batch(x, y)
                times.append(time.perf_counter() - t0)
            _sync(model)
            window = time.perf_counter() - window
            resolved_jit = getattr(model, "jit_compile", None)
    finally:
        keras.mixed_precision.set_global_policy("float32")
        model = x = y = None
        keras.backend.clear_session()
        gc.collect()
    images_per_s = batch / statistics.median(times)
    return {
        "network": network, "precision": precision, "batch": batch, "image_size": size,
        "devices": devices, "batch_per_device": per_device,
        "steps": steps, "warmup": warmup, "images_per_s": images_per_s,
        "images_per_s_mean": batch * steps / window, "first_step_s": first,
        "macs_per_image": macs, "flops_per_image_step": 6 * macs,
        "tflops": images_per_s * 6 * macs / 1e12, "loss": float(loss),
        "jit_compile": bool(resolved_jit),
    }


def _line(r):
    peak = (f"{100 * r['tflops'] / r['peak_tflops']:5.1f} % of {r['peak_tflops']:g} TFLOP/s"
            if r.get("peak_tflops") else "")
    note = "" if math.isfinite(r["loss"]) else "  (loss not finite)"
    devices = f"{r['devices']} devices " if r.get("devices", 1) > 1 else ""
    return (f"{r['backend']:<10} {devices}{r['network']:<14} {r['precision']:<4} "
            f"batch {r['batch']:>4} {r['image_size']:>3}px {r['images_per_s']:10.5g} img/s "
            f"{r['tflops']:10.4g} TFLOP/s ({r['macs_per_image'] / 1e9:.3f} GMAC/img) "
            f"{peak}  first step {r['first_step_s']:.1f} s{note}")


def run_all(args):
    if args.backend:
        os.environ["KERAS_BACKEND"] = args.backend
    import keras

    backend = keras.backend.backend()
    platform, device = device_info(backend)
    jit = {"auto": "auto", "true": True, "false": False}[args.jit_compile]
    print(f"keras {keras.__version__}, backend {backend}, {platform}: {device}; "
          f"{args.warmup} warm-up + {args.steps} timed steps; img/s = batch / median step; "
          f"TFLOP/s = img/s x 6 x MACs (count_macs of the trained model)", flush=True)
    if args.devices:
        problem = _devices_problem(backend, args.devices)
        if problem:
            print(f"throughput.py: error: {problem}", file=sys.stderr)
            return 2
    results, failed, scaling = [], [], []
    for network in args.networks:
        size = args.image_sizes.get(network)
        if size is None:
            from kerascnn.applications import get_model_info

            size = get_model_info(NETWORKS[network][0]).input_shape[0]
        for precision in args.precisions:
            pair = []
            for devices in (1, args.devices) if args.devices else (1,):
                try:
                    r = measure(network, precision, args.batch_sizes[network], size,
                                args.steps, args.warmup, jit, devices=devices)
                except Exception as e:  # one failure (e.g. out of memory) ends that run only
                    failed.append(network)
                    message = str(e).strip().splitlines()[0][:300] if str(e).strip() else ""
                    print(f"{backend:<10} {network:<14} {precision:<4} FAILED: "
                          f"{type(e).__name__}: {message}", flush=True)
                    break
                r["backend"], r["device"], r["platform"] = backend, device, platform
                r["peak_tflops"], r["peak_source"] = peak_for(device, platform, precision,
                                                              args.peak)
                if devices > 1:
                    r["peak_tflops"] = r["peak_tflops"] and r["peak_tflops"] * devices
                results.append(r)
                pair.append(r)
                print(_line(r), flush=True)
                if args.json:  # after every run: a run cut short keeps what finished
                    from kerascnn._io import write_json

                    write_json(args.json, results)
            if len(pair) == 2:
                scaling.append(pair)
    if args.devices:
        print_scaling(scaling, backend, device)
    else:
        print_summary(results, backend, device)
    return 1 if failed else 0


def _devices_problem(backend, devices):
    """Why ``--devices`` cannot be measured here (one line), or None."""
    if backend != "jax":
        return (f"--devices measures keras.distribution.DataParallel under jax; under "
                f"{backend} it is not measured: use --backend jax")
    import jax

    have = jax.local_device_count()
    if devices > have:
        return (f"--devices {devices}: this process sees {have} device(s) "
                f"({jax.devices()[0].platform}); on a CPU, XLA_FLAGS="
                f"--xla_force_host_platform_device_count={devices} shows {devices}")
    return None


def print_scaling(pairs, backend, device):
    """img/s on N devices over N x img/s on one, same per-device batch."""
    print(f"\nscaling ({backend}, {device}): img/s on N devices / (N x img/s on one), "
          "same batch per device:")
    print(f"{'network':<14} {'prec':<4} {'batch/dev':>9} {'size':>4} {'1 dev img/s':>11} "
          f"{'N':>2} {'N dev img/s':>11} {'scaling':>7}")
    for one, many in pairs:
        n = many["devices"]
        ratio = many["images_per_s"] / (n * one["images_per_s"])
        print(f"{one['network']:<14} {one['precision']:<4} {one['batch']:>9} "
              f"{one['image_size']:>4} {one['images_per_s']:>11.5g} {n:>2} "
              f"{many['images_per_s']:>11.5g} {ratio:>7.2f}")


def print_summary(results, backend, device):
    by = {(r["network"], r["precision"]): r for r in results}
    networks = list(dict.fromkeys(r["network"] for r in results))
    sources = sorted({r["peak_source"] for r in results if r.get("peak_source")})
    print(f"\nsummary ({backend}, {device}); img/s and % of peak"
          + (f" ({', '.join(sources)})" if sources else "") + ":")
    print(f"{'network':<14} {'batch':>5} {'size':>4} {'fp32 img/s':>11} {'bf16 img/s':>11} "
          f"{'bf16/fp32':>9} {'fp32 TFLOP/s':>12} {'bf16 TFLOP/s':>12} {'fp32 %pk':>8} "
          f"{'bf16 %pk':>8}")
    for n in networks:
        f, b = by.get((n, "fp32")), by.get((n, "bf16"))
        any_r = f or b

        def col(r, key, fmt, scale=1.0):
            return format(r[key] * scale, fmt) if r and r.get(key) is not None else "-"

        def pk(r):
            return (format(100 * r["tflops"] / r["peak_tflops"], ".1f")
                    if r and r.get("peak_tflops") else "-")

        ratio = format(b["images_per_s"] / f["images_per_s"], ".2f") if f and b else "-"
        print(f"{n:<14} {any_r['batch']:>5} {any_r['image_size']:>4} "
              f"{col(f, 'images_per_s', '.5g'):>11} {col(b, 'images_per_s', '.5g'):>11} "
              f"{ratio:>9} {col(f, 'tflops', '.4g'):>12} {col(b, 'tflops', '.4g'):>12} "
              f"{pk(f):>8} {pk(b):>8}")


# -- both backends, a process each ------------------------------------------------------
def compare_backends(args):
    """Each backend in its own process (Keras fixes it at import), same settings."""
    missing = [m for m in ("jax", "tensorflow") if importlib.util.find_spec(m) is None]
    if missing:
        print(f"--compare-backends needs jax and tensorflow installed; missing: "
              f"{', '.join(missing)}", file=sys.stderr)
        return 2
    passthrough = ["--networks", ",".join(args.networks),
                   "--precisions", ",".join(args.precisions),
                   "--batch-size", ",".join(f"{n}={args.batch_sizes[n]}" for n in args.networks),
                   "--steps", str(args.steps), "--warmup", str(args.warmup),
                   "--jit-compile", args.jit_compile]
    if args.image_sizes:
        passthrough += ["--image-size",
                        ",".join(f"{n}={s}" for n, s in args.image_sizes.items())]
    results, status = {}, 0
    with tempfile.TemporaryDirectory() as tmp:
        for backend in ("jax", "tensorflow"):
            path = os.path.join(tmp, f"{backend}.json")
            env = {**os.environ, "KERAS_BACKEND": backend}
            rc = subprocess.run([sys.executable, os.path.abspath(__file__), "--backend",
                                 backend, "--json", path, *passthrough], env=env).returncode
            status = status or rc
            try:
                with open(path) as f:
                    results[backend] = json.load(f)
            except OSError:
                results[backend] = []
    print("\nJAX / TensorFlow, same networks, precisions, batches and sizes, this machine:")
    print(f"{'network':<14} {'prec':<4} {'batch':>5} {'size':>4} {'jax img/s':>10} "
          f"{'tf img/s':>10} {'jax/tf':>7}")
    tf_by = {(r["network"], r["precision"]): r for r in results["tensorflow"]}
    for r in results["jax"]:
        t = tf_by.get((r["network"], r["precision"]))
        ratio = format(r["images_per_s"] / t["images_per_s"], ".2f") if t else "-"
        t_rate = format(t["images_per_s"], ".5g") if t else "-"
        print(f"{r['network']:<14} {r['precision']:<4} {r['batch']:>5} {r['image_size']:>4} "
              f"{r['images_per_s']:>10.5g} {t_rate:>10} {ratio:>7}")
    if tf_by:
        t = next(iter(tf_by.values()))
        print(f"(TensorFlow jit_compile resolved to {t['jit_compile']}; JAX always compiles)")
    if args.json:
        from kerascnn._io import write_json

        write_json(args.json, results)
    return status


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.compare_backends:
        return compare_backends(args)
    return run_all(args)


if __name__ == "__main__":
    sys.exit(main())
