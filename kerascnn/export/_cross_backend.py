"""Export from a non-TensorFlow Keras backend (JAX) through TensorFlow.

TF Serving needs a TensorFlow graph. Under JAX, Keras' ``ExportArchive`` converts the
model with ``jax2tf``, which cannot carry ``serving_default``'s string input (the
encoded images) nor the ``tf.map_fn`` decoding around the network. So
:func:`kerascnn.export.saved_model.export_model`, when the backend is not TensorFlow,
comes here instead: the model is saved to a temporary ``.keras`` file (in a private
temporary folder, so no reader sees it half written), and a fresh Python process with
``KERAS_BACKEND=tensorflow`` loads it (our layers registered, safe mode) and runs the
same ``export_model`` with the same arguments. The SavedModel therefore has exactly
the signatures, outputs and ``assets.extra/kerascnn.json`` of a TensorFlow export;
the weights are the same values (Keras' ``.keras`` format is backend-neutral).

The arguments travel as a JSON file (never pickle): ``Preprocessing`` as its JSON
form, ``metadata`` must be JSON-able. ``python -m kerascnn.export._cross_backend
ARGS.json`` is the child's entry point; it writes the export's path to
``result.json`` beside ``ARGS.json``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

RESULT_FILE = "result.json"


def export_via_tensorflow(model, name, *, base_dir, version, preprocessing, class_names,
                          from_logits, serving_base_path, metadata, verbose) -> str:
    """Saves ``model`` to a temporary ``.keras`` file and exports it in a TensorFlow
    subprocess; returns the export's path (as :func:`export_model` does)."""
    from kerascnn.data.carried import save_model
    from kerascnn.export.saved_model import _as_preprocessing

    prep = _as_preprocessing(preprocessing, model)
    try:
        json.dumps(metadata or {})
    except TypeError as err:
        raise ValueError("`metadata` must be JSON-able to export from the "
                         f"{_backend()} backend. Received: metadata={metadata!r}") from err
    with tempfile.TemporaryDirectory(prefix="kerascnn-export-") as tmp:
        model_path = os.path.join(tmp, "model.keras")
        save_model(model, model_path)  # with what the model carries (its class names)
        args = {"model": model_path, "name": name, "base_dir": os.fspath(base_dir),  # the child runs in this folder
                "version": version, "preprocessing": prep.to_json(),
                "class_names": None if class_names is None else [str(c) for c in class_names],
                "from_logits": bool(from_logits), "serving_base_path": serving_base_path,
                "metadata": metadata or {}, "verbose": bool(verbose)}
        args_path = os.path.join(tmp, "args.json")
        with open(args_path, "w") as f:
            json.dump(args, f)
        env = dict(os.environ, KERAS_BACKEND="tensorflow")
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
        proc = subprocess.run([sys.executable, "-m", "kerascnn.export._cross_backend", args_path],
                              env=env, stderr=subprocess.PIPE, text=True)
        result = os.path.join(tmp, RESULT_FILE)
        if proc.returncode != 0 or not os.path.exists(result):
            lines = [l for l in (proc.stderr or "").strip().splitlines() if l.strip()]
            last = lines[-1] if lines else f"exit status {proc.returncode}"
            if proc.returncode == 2 and last.startswith("FileExistsError: "):
                raise FileExistsError(last.split(": ", 1)[1])
            if proc.returncode == 2 and last.startswith("ValueError: "):
                raise ValueError(last.split(": ", 1)[1])
            raise RuntimeError(f"The TensorFlow export of the {_backend()} model failed "
                               f"(python -m kerascnn.export._cross_backend): {last}\n"
                               + (proc.stderr or "")[-4000:])
        with open(result) as f:
            return json.load(f)["path"]


def _backend():
    import keras

    return keras.backend.backend()


def _child(args_path: str) -> int:
    import keras

    if keras.backend.backend() != "tensorflow":
        print(f"ValueError: the export child needs KERAS_BACKEND=tensorflow. Received: "
              f"{keras.backend.backend()}", file=sys.stderr)
        return 2
    from kerascnn.data.preprocessing import Preprocessing
    from kerascnn.evaluation.loading import load_keras_model
    from kerascnn.export.saved_model import export_model

    with open(args_path) as f:
        a = json.load(f)
    model = load_keras_model(a["model"])
    try:
        path = export_model(model, a["name"], base_dir=a["base_dir"], version=a["version"],
                            preprocessing=Preprocessing.from_json(a["preprocessing"]),
                            class_names=a["class_names"], from_logits=a["from_logits"],
                            serving_base_path=a["serving_base_path"], metadata=a["metadata"],
                            verbose=a["verbose"])
    except (FileExistsError, ValueError) as err:  # the parent re-raises it
        print(f"{type(err).__name__}: {err}", file=sys.stderr)
        return 2
    with open(os.path.join(os.path.dirname(args_path), RESULT_FILE), "w") as f:
        json.dump({"path": path}, f)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python -m kerascnn.export._cross_backend ARGS.json", file=sys.stderr)
        sys.exit(2)
    sys.exit(_child(sys.argv[1]))
