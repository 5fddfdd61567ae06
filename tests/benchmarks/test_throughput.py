"""benchmarks/throughput.py runs on the CPU at tiny sizes under both backends, so it
cannot rot before a GPU is lent: exit 0, one line per network, the JAX run with
TensorFlow made unimportable (the GPU machine has none), and the FLOP rate it prints
equal to images/s x 6 x the multiply-adds, which the test derives from the
registry's table and the architectures (never from the script's own count).

What runs where (batch 1, one warm-up and one timed step; under JAX on a CPU, building
a deep network (every initialiser compiles) and compiling its step cost tens of
seconds each, full-size GoogLeNet about 80 s, ResNet-50 at 32 px about 40 s, AlexNet 12;
VGG-16's steps at 224 px take seconds each):

- every network's own path (its registry entry and builder arguments, size, MACs and
  FLOP rate, its train step) runs at least once: AlexNet through ``--compare-backends``
  (the comparison's full path: a JAX child without TensorFlow, a TensorFlow child, the
  ratio table; the network whose XLA compile is the shortest), and under JAX on one and
  two devices (``--devices 2``); VGG-16, GoogLeNet (auxiliary heads: its own train step
  and count, in fp32 and bf16), the paper's ResNet-50 and ResNet-50 v1.5 (the stride
  moved) under TensorFlow, in this process (``throughput.main``: the TensorFlow runs
  need no process of their own, the pytest worker runs TensorFlow);
- the networks' code under JAX: tests/applications/test_zoo_jax.py (the builders'
  layers, forward and gradients; GoogLeNet's own builder at 1/8 width, the same layers
  as the full one, with its auxiliary heads' training loss; ResNet-50 v1.5's bottleneck
  with the stride on the 3x3 conv, with one block per stage).

The numbers are not checked against any speed: tests never time things.
"""
import importlib.util
import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

from kerascnn.applications import get_model_info

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "throughput.py"
NETWORKS = ("alexnet", "vgg16", "googlenet", "resnet50", "resnet50_v1.5")
COMPARED = ("alexnet",)  # under both backends (--compare-backends)
TF_ONLY = ("vgg16", "googlenet", "resnet50", "resnet50_v1.5")  # the others, TensorFlow
# the smallest inputs whose maps all halve exactly (multiples of 32), so that the
# multiply-adds below follow from the registry's counts at 224; GoogLeNet's auxiliary
# heads need >= 65; AlexNet and VGG-16 build at their default size only.
SIZES = {"alexnet": 227, "vgg16": 224, "googlenet": 96, "resnet50": 32, "resnet50_v1.5": 32}

# Makes `import tensorflow` fail in a process started with KERAS_BACKEND=jax, and
# writes every attempt to $TF_IMPORT_LOG.
BLOCKER = '''
import os, sys
if os.environ.get("KERAS_BACKEND") == "jax":
    class _NoTensorFlow:
        def find_spec(self, name, path=None, target=None):
            if name == "tensorflow" or name.startswith("tensorflow."):
                with open(os.environ["TF_IMPORT_LOG"], "a") as f:
                    f.write(name + "\\n")
                raise ImportError(name + " is blocked: the GPU machine has no TensorFlow")
            return None
    sys.meta_path.insert(0, _NoTensorFlow())
'''


def expected_macs(network, size):
    """Multiply-adds of one training image, from the registry's table at the default
    input and the architectures' own arithmetic."""
    registry = get_model_info("resnet50" if network.startswith("resnet50") else network).macs
    if network in ("alexnet", "vgg16"):
        assert size == get_model_info(network).input_shape[0]
        return registry
    scale = lambda macs: macs * size * size // (224 * 224)  # noqa: E731
    if network.startswith("resnet50"):
        fc = 2048 * 1000  # the classifier does not scale with the input
        macs = scale(registry - fc) + fc
        if network == "resnet50_v1.5":
            # the stride moves from the 1x1 to the 3x3 conv of conv3_1, conv4_1, conv5_1:
            # the 1x1 runs on the H x H input map instead of (H/2)^2, +3/4 H^2 C_in w.
            macs += sum(3 * (size // d) ** 2 * c_in * w // 4
                        for d, c_in, w in ((4, 256, 128), (8, 512, 256), (16, 1024, 512)))
        return macs
    # googlenet with both auxiliary heads (on 4a: 512 channels, 4d: 528), each on an
    # a x a map after its 5x5/3 average pool of the 1/16 map: 1x1x128 conv, fc 1024,
    # fc 1000
    fc = 1024 * 1000
    a = (size // 16 - 5) // 3 + 1
    aux = sum(a * a * c * 128 + a * a * 128 * 1024 + 1024 * 1000 for c in (512, 528))
    return scale(registry - fc) + fc + aux


def test_expected_macs_match_published_figures():
    # the formulas above against figures published independently of our registry:
    # torchvision's ResNet-50 (v1.5) "GFLOPS 4.09" (multiply-adds) at 224.
    assert expected_macs("resnet50_v1.5", 224) / 1e9 == pytest.approx(4.09, abs=0.005)
    assert expected_macs("resnet50", 224) == get_model_info("resnet50").macs
    assert expected_macs("googlenet", 224) - get_model_info("googlenet").macs == 8_372_224


def _lines(stdout, backend):
    """{(network, precision): (img/s, TFLOP/s)} from the script's per-run lines."""
    pattern = re.compile(rf"^{backend}\s+(\S+)\s+(fp32|bf16)\s+batch\s+\d+\s+\d+px\s+(\S+) img/s"
                         r"\s+(\S+) TFLOP/s", re.M)
    return {(m[1], m[2]): (float(m[3]), float(m[4])) for m in pattern.finditer(stdout)}


def _check_flops(records, printed, networks, precisions):
    assert {(r["network"], r["precision"]) for r in records} == {
        (n, p) for n in networks for p in precisions}
    for r in records:
        macs = expected_macs(r["network"], r["image_size"])
        assert r["macs_per_image"] == macs, r["network"]
        assert r["images_per_s"] > 0
        assert r["tflops"] == pytest.approx(r["images_per_s"] * 6 * macs / 1e12, rel=1e-9)
        # the printed figures (5 and 4 significant digits) agree with each other
        images_per_s, tflops = printed[(r["network"], r["precision"])]
        assert images_per_s == pytest.approx(r["images_per_s"], rel=1e-4)
        assert tflops == pytest.approx(images_per_s * 6 * macs / 1e12, rel=1.5e-3)


def _env(tmp_path, **extra):
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(BLOCKER)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1",
           "TF_IMPORT_LOG": str(tmp_path / "tf_imports.log"),
           "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]), **extra}
    return env


def _run(args, env, timeout):
    result = subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result.stdout


def _sizes(networks):
    return ",".join(f"{n}={SIZES[n]}" for n in networks)


def test_every_network_is_measured_once():
    # the two runs below (and --devices 2 under JAX: alexnet) cover every network
    assert sorted(COMPARED + TF_ONLY) == sorted(NETWORKS)


@pytest.mark.slow
@pytest.mark.jax
def test_compare_backends_jax_without_tensorflow(tmp_path):
    pytest.importorskip("jax")
    out = tmp_path / "both.json"
    # the parent picks no backend; its JAX child runs with tensorflow unimportable
    stdout = _run(["--compare-backends", "--networks", ",".join(COMPARED), "--precisions",
                   "fp32", "--batch-size", "1", "--steps", "1", "--warmup", "1",
                   "--image-size", _sizes(COMPARED), "--json", str(out)],
                  _env(tmp_path, KERAS_BACKEND="tensorflow"), timeout=1800)
    assert not (tmp_path / "tf_imports.log").exists(), (tmp_path / "tf_imports.log").read_text()
    results = json.loads(out.read_text())
    for backend in ("jax", "tensorflow"):
        printed = _lines(stdout, backend)
        assert len(printed) == len(COMPARED)  # one line per network
        _check_flops(results[backend], printed, COMPARED, ["fp32"])
        assert all(r["backend"] == backend and r["platform"] == "cpu" for r in results[backend])
        assert all(r["image_size"] == SIZES[r["network"]] and r["batch"] == 1
                   for r in results[backend])
    assert all(r["jit_compile"] for r in results["jax"])
    # the comparison table: one row per network, ratio = JAX img/s / TF img/s
    table = stdout[stdout.index("JAX / TensorFlow"):]
    tf_rates = {r["network"]: r["images_per_s"] for r in results["tensorflow"]}
    for r in results["jax"]:
        row = re.search(rf"^{re.escape(r['network'])}\s+fp32\s+1\s+\d+\s+(\S+)\s+(\S+)\s+(\S+)$",
                        table, re.M)
        assert row, (r["network"], table)
        assert float(row[3]) == pytest.approx(r["images_per_s"] / tf_rates[r["network"]],
                                              abs=0.006)


def _run_here(throughput, capsys, args):
    """``throughput.py ARGS`` under TensorFlow in this process: exit status 0; its stdout."""
    capsys.readouterr()
    status = throughput.main(["--backend", "tensorflow", *args])
    captured = capsys.readouterr()
    assert status == 0, captured.out[-4000:] + captured.err[-4000:]
    return captured.out


def test_tensorflow_every_other_network(tmp_path, throughput, capsys):
    out = tmp_path / "tf.json"
    stdout = _run_here(throughput, capsys, [
        "--networks", ",".join(TF_ONLY), "--precisions", "fp32", "--batch-size", "1",
        "--steps", "1", "--warmup", "1", "--image-size", _sizes(TF_ONLY), "--json", str(out)])
    records = json.loads(out.read_text())
    printed = _lines(stdout, "tensorflow")
    assert len(printed) == len(TF_ONLY)  # one line per network
    _check_flops(records, printed, TF_ONLY, ["fp32"])
    assert all(r["image_size"] == SIZES[r["network"]] and r["batch"] == 1 for r in records)


def test_tensorflow_bf16_with_peak_and_summary(tmp_path, throughput, capsys):
    networks = ["googlenet"]  # the auxiliary heads, in bf16 (every network: the test above)
    out = tmp_path / "tf.json"
    stdout = _run_here(throughput, capsys, [
        "--networks", ",".join(networks), "--precisions", "bf16", "--batch-size", "2",
        "--steps", "1", "--warmup", "1", "--image-size", "googlenet=96",
        "--peak-tflops", "0.001", "--json", str(out)])
    records = json.loads(out.read_text())
    _check_flops(records, _lines(stdout, "tensorflow"), networks, ["bf16"])
    summary = stdout[stdout.index("summary"):]
    for r in records:
        assert r["peak_tflops"] == 0.001 and r["peak_source"] == "--peak-tflops"
        row = re.search(rf"^{re.escape(r['network'])}\s+2\s+{r['image_size']}\s+-\s+(\S+)\s+-"
                        r"\s+-\s+(\S+)\s+-\s+(\S+)$", summary, re.M)
        assert row, summary
        assert float(row[1]) == pytest.approx(r["images_per_s"], rel=1e-4)
        assert float(row[3]) == pytest.approx(100 * r["tflops"] / 0.001, abs=0.06)


@pytest.mark.jax
def test_devices_scaling_under_jax(tmp_path):
    """--devices 2 on two host devices: one device, then keras.distribution.DataParallel
    over two with twice the batch; the scaling row is img/s on 2 / (2 x img/s on 1).
    AlexNet: the network whose XLA compile is the shortest (eight layers; ResNet-50
    at 32 px costs half as much again), twice compiled (one device, two)."""
    pytest.importorskip("jax")
    out = tmp_path / "scaling.json"
    stdout = _run(["--backend", "jax", "--devices", "2", "--networks", "alexnet",
                   "--precisions", "fp32", "--batch-size", "1", "--image-size", "227",
                   "--steps", "1", "--warmup", "1", "--json", str(out)],
                  _env(tmp_path, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu",
                       XLA_FLAGS="--xla_force_host_platform_device_count=2"), timeout=900)
    assert not (tmp_path / "tf_imports.log").exists()
    one, two = json.loads(out.read_text())
    assert (one["devices"], one["batch"]) == (1, 1)
    assert (two["devices"], two["batch"], two["batch_per_device"]) == (2, 2, 1)
    for r in (one, two):
        assert r["macs_per_image"] == expected_macs("alexnet", 227)
    row = re.search(r"^alexnet\s+fp32\s+1\s+227\s+(\S+)\s+2\s+(\S+)\s+(\S+)$", stdout, re.M)
    assert row, stdout
    assert float(row[1]) == pytest.approx(one["images_per_s"], rel=1e-4)
    assert float(row[3]) == pytest.approx(two["images_per_s"] / (2 * one["images_per_s"]),
                                          abs=0.006)


def test_devices_refused_under_tensorflow(throughput, capsys):
    # refused while the arguments are read: before Keras (TensorFlow) is imported
    with pytest.raises(SystemExit) as e:
        throughput.main(["--backend", "tensorflow", "--devices", "2", "--networks", "resnet50"])
    assert e.value.code == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert "--devices" in lines[-1] and "--backend jax" in lines[-1], captured.err
    assert "GMAC/img" not in captured.out  # nothing measured


@pytest.fixture(scope="module")
def throughput():
    spec = importlib.util.spec_from_file_location("throughput_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("argv, words", [
    (["--networks", "resnet51"], ["--networks", "resnet51"]),
    (["--precisions", "fp16"], ["--precisions", "fp16"]),
    (["--batch-size", "0"], ["--batch-size", "> 0"]),
    (["--batch-size", "vgg=8"], ["--batch-size", "vgg=8"]),
    (["--image-size", "vgg16=64"], ["--image-size", "vgg16", "224x224"]),
    (["--peak-tflops", "bf16=x"], ["--peak-tflops", "bf16=x"]),
    (["--steps", "0"], ["--steps", "Received"]),
    (["--devices", "1"], ["--devices", "Received: --devices=1"]),
])
def test_bad_arguments_name_the_flag(throughput, capsys, argv, words):
    with pytest.raises(SystemExit) as e:
        throughput.parse_args(argv)
    assert e.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert all(w in error for w in words), error


def test_sizes_and_batches(throughput):
    args = throughput.parse_args(["--image-size", "64", "--batch-size", "resnet50=8"])
    # one number: the networks that take any size; AlexNet and VGG-16 keep theirs
    assert args.image_sizes == {"googlenet": 64, "resnet50": 64, "resnet50_v1.5": 64}
    assert args.batch_sizes == {"alexnet": 512, "vgg16": 128, "googlenet": 256,
                                "resnet50": 8, "resnet50_v1.5": 256}
    assert throughput.parse_args(["--image-size", "alexnet=227"]).image_sizes == {"alexnet": 227}
    compare = throughput.parse_args(["--compare-backends"])
    assert set(compare.batch_sizes.values()) == {4} and compare.steps == 5


def test_peak_lookup(throughput):
    peak = throughput.peak_for
    assert peak("NVIDIA H200", "gpu", "bf16", None) == (790.0, "table (H200)")
    assert peak("NVIDIA H100 80GB HBM3", "gpu", "fp32", None)[0] == 494.7
    assert peak("NVIDIA H100 PCIe", "gpu", "bf16", None)[0] == 756.0  # not the SXM part's
    assert peak("NVIDIA A100-SXM4-80GB", "gpu", "bf16", None)[0] == 312.0
    assert peak("NVIDIA L4", "gpu", "bf16", None) == (None, None)
    assert peak("AMD EPYC (2 CPUs)", "cpu", "bf16", None) == (None, None)
    assert peak("NVIDIA H200", "gpu", "bf16", {"bf16": 900.0}) == (900.0, "--peak-tflops")
