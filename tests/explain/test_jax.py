"""Grad-CAM and CAM under KERAS_BACKEND=jax (jax.grad over stateless_call) give the
numbers TensorFlow's tape gives: the same .keras files and images, the JAX process a
subprocess (a process picks its backend once)."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from explainnets import fc_net, trained_resnet
from kerascnn.explain import class_activation_map, grad_cam

pytestmark = [pytest.mark.jax, pytest.mark.tf_only]
pytest.importorskip("jax")

SCRIPT = textwrap.dedent("""
    import sys
    import keras
    import numpy as np
    assert keras.backend.backend() == "jax", keras.backend.backend()
    from kerascnn.explain import class_activation_map, grad_cam
    folder = sys.argv[1]
    x = np.load(f"{folder}/x.npy")
    gap = keras.saving.load_model(f"{folder}/gap.keras")
    fc = keras.saving.load_model(f"{folder}/fc.keras")
    np.save(f"{folder}/jax_gradcam.npy", grad_cam(gap, x))
    np.save(f"{folder}/jax_block.npy", grad_cam(gap, x, [0, 1, 2, 1], layer="block1_1_conv"))
    np.save(f"{folder}/jax_cam.npy", class_activation_map(gap, x, 2))
    np.save(f"{folder}/jax_fc.npy", grad_cam(fc, np.pad(x, [(0, 0), (8, 8), (8, 8), (0, 0)])))
""")


def test_grad_cam_and_cam_are_the_same_under_jax(tmp_path):
    gap, _ = trained_resnet(steps=10)
    fc = fc_net(32, 5)
    x = np.random.default_rng(0).normal(0, 60, (4, 16, 16, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    gap.save(tmp_path / "gap.keras")
    fc.save(tmp_path / "fc.keras")
    want = {
        "gradcam": grad_cam(gap, x),
        "block": grad_cam(gap, x, [0, 1, 2, 1], layer="block1_1_conv"),
        "cam": class_activation_map(gap, x, 2),
        "fc": grad_cam(fc, np.pad(x, [(0, 0), (8, 8), (8, 8), (0, 0)])),
    }
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env.update(KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="2")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join([root, env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], env=env, cwd=root,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    for name, expected in want.items():
        got = np.load(tmp_path / f"jax_{name}.npy")
        assert got.shape == expected.shape and expected.max() > 0
        assert np.abs(got - expected).max() <= 1e-4 * max(1.0, np.abs(expected).max()), name
