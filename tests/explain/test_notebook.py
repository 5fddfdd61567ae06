"""docs/notebooks/explain.ipynb executes from top to bottom (nbclient), offline, in a
fresh folder (so it trains its own small model), and shows its pictures."""

import json
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NOTEBOOK = os.path.join(ROOT, "docs", "notebooks", "explain.ipynb")

pytestmark = pytest.mark.tf_only


def test_explain_notebook_runs(tmp_path, monkeypatch):
    import ipykernel  # noqa: F401  (dev dependencies: ./dev installs them)
    import nbclient
    import nbformat

    from kerascnn.data._fashion_mnist import load_arrays

    # ./dev installs Debian's dataset-fashion-mnist; without it the notebook cannot run
    assert load_arrays("test") is not None, \
        "Fashion-MNIST is not installed: run ./dev once (it installs dataset-fashion-mnist)"
    # a kernel spec of this very interpreter, so that the notebook runs in the
    # environment under test (not whatever `python3` kernel the machine has)
    spec = tmp_path / "jupyter" / "kernels" / "kerascnn-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "kerascnn test", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    work = tmp_path / "work"
    work.mkdir()
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, kernel_name="kerascnn-test", timeout=300,
                                     resources={"metadata": {"path": str(work)}})
    client.execute()  # raises CellExecutionError, with the cell and its traceback
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    pictures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(pictures) == 2  # the overlays and the filters
    text = "".join(o.get("text", "") for o in outputs)
    assert "mosaic (45, 750, 3)" in text  # 16 kernels of 3x3 enlarged 15x, in one row
    gap = float(text.split("max |Grad-CAM - ReLU(CAM)/(h*w)| =")[1].split()[0])
    assert gap < 1e-4
