"""The layer tests and a representative subset of the builder tests again under
KERAS_BACKEND=jax, in a subprocess (a backend is chosen once per process).

The subset: every layer test that is not ``tf_only`` (LRN against numpy, the option-A
shortcut, AuxiliaryLossModel's fit loss = main + w * aux and its serialisation), and
for the networks AlexNet (grouped convs, LRN, the fc head) and ResNet-20 (batch norm,
option-A shortcuts): forward, a gradient for every weight, pooling and the
``.keras`` round trip; and the reproduce studies' scaled networks (AlexNet's Figure 1
net, the scaled AlexNet, VGG and GoogLeNet): forward and gradients; then
jax_only_checks.py: GoogLeNet's auxiliary heads' fit loss (``googlenet_scaled``, whose
initialisers the test before compiled in this process) and ResNet-50 v1.5's bottleneck
(the stride on the 3x3 conv) with one block per stage. Building a network under JAX on
CPU is slow (every initialiser compiles: GoogLeNet's layers about 50 s), which is why
the subset is small; GoogLeNet and the rest were run under jax by hand (see the issue
report).
"""

import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
JAX_TESTS = [
    "tests/layers",
    "tests/applications/test_zoo_builders.py::test_forward_and_gradients[alexnet]",
    "tests/applications/test_zoo_builders.py::test_forward_and_gradients[resnet20]",
    "tests/applications/test_zoo_builders.py::test_include_top_false_and_pooling[AlexNet]",
    "tests/applications/test_zoo_builders.py::test_include_top_false_and_pooling[ResNet20]",
    "tests/applications/test_zoo_serialization.py::test_json_and_keras_file_round_trip[resnet20]",
    # the studies' scaled networks (kerascnn reproduce relu / alexnet-ablations / vgg /
    # googlenet run under either backend)
    *(f"tests/applications/test_zoo_builders.py::test_forward_and_gradients[{name}]"
      for name in ("alexnet_fig1", "alexnet_small", "scaled_vgg", "googlenet_scaled")),
    # after googlenet_scaled's build (the same layers, compiled once in this process)
    "tests/applications/jax_only_checks.py",
]


@pytest.mark.jax
def test_builders_and_layers_under_jax():
    pytest.importorskip("jax")
    env = {**os.environ, "KERAS_BACKEND": "jax", "KERASCNN_EXPECT_BACKEND": "jax",
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
        "-m", "not tf_only and not slow and not jax", "-W", "ignore",
        *JAX_TESTS,
    ]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=600)
    tail = result.stdout[-6000:] + result.stderr[-3000:]
    assert result.returncode == 0, tail
    summary = result.stdout.strip().splitlines()[-1]
    assert "passed" in summary and "failed" not in summary and "error" not in summary, tail
