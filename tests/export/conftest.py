"""``tf_serving``: one TensorFlow-only process that serves the export tests' SavedModels,
as a TF Serving client sees them.

The process imports TensorFlow and numpy, never kerascnn (each answer says whether it got
imported) and answers one request a line: a SavedModel folder, a signature
and its inputs (image files for ``serving_default``'s ``image_bytes``, a ``.npy`` of
pixels for ``serving_images``' ``images``). Started once per test session (importing
TensorFlow costs ~6 CPU-s a process), on first use.
"""

import json
import os
import subprocess
import sys

import pytest

SERVER = r"""
import json, sys
import numpy as np
import tensorflow as tf

loaded = {}
for line in sys.stdin:
    request = json.loads(line)
    path = request["path"]
    if path not in loaded:
        loaded[path] = tf.saved_model.load(path)
    signature = loaded[path].signatures[request["signature"]]
    if "image_files" in request:
        blobs = [open(p, "rb").read() for p in request["image_files"]]
        result = signature(image_bytes=tf.constant(blobs, tf.string))
    else:
        result = signature(images=tf.constant(np.load(request["images_npy"]), tf.float32))
    out = {k: v.numpy().tolist() if v.dtype != tf.string else
           [[s.decode() for s in row] for row in v.numpy()] for k, v in result.items()}
    out["shapes"] = {k: list(v.shape) for k, v in result.items()}
    out["kerascnn_imported"] = any(m.startswith("kerascnn") for m in sys.modules)
    print(json.dumps(out), flush=True)
"""


class Server:
    def __init__(self, folder):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        self._stderr = open(os.path.join(folder, "server.err"), "w+")
        self._proc = subprocess.Popen([sys.executable, "-c", SERVER], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=self._stderr, text=True,
                                      env=env, cwd=folder)

    def __call__(self, path, signature="serving_default", *, image_files=None, images_npy=None):
        """The signature's outputs as lists, their ``shapes``, and ``kerascnn_imported``."""
        request = {"path": str(path), "signature": signature}
        if image_files is not None:
            request["image_files"] = [str(p) for p in image_files]
        else:
            request["images_npy"] = str(images_npy)
        self._proc.stdin.write(json.dumps(request) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            self._proc.wait(timeout=60)
            self._stderr.seek(0)
            raise AssertionError(f"the serving process ended ({self._proc.returncode}): "
                                 f"{self._stderr.read()[-3000:]}")
        return json.loads(line)

    def close(self):
        self._proc.stdin.close()
        try:
            self._proc.wait(timeout=60)
        finally:
            if self._proc.poll() is None:
                self._proc.kill()
            self._stderr.close()


@pytest.fixture(scope="session")
def tf_serving(tmp_path_factory):
    server = Server(str(tmp_path_factory.mktemp("tf_serving")))
    yield server
    server.close()
