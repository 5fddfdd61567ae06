"""``kerascnn evaluate`` end to end on saved files: .keras, fusion, a SavedModel export,
and the paper's figure from the registry."""

import json

import keras
import numpy as np
import pytest

from kerascnn.cli import main

from evalnets import MEAN, small_cnn


@pytest.fixture(scope="module")
def keras_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    a, b = small_cnn(seed=1, name="net_a"), small_cnn(seed=2, name="net_b")
    a.save(d / "a.keras")
    b.save(d / "b.keras")
    return d, a, b


def _run(argv, capsys):
    assert main(argv) == 0
    return capsys.readouterr().out


def test_evaluate_keras_file_writes_json_and_markdown(keras_files, tmp_path, capsys):
    d, _, _ = keras_files
    out = tmp_path / "report"
    text = _run(
        ["evaluate", "--model", str(d / "a.keras"), "--protocol", "center,10crop,dense", "--limit", "24",
         "--resize", "36", "--dense-scales", "32,40", "--mean", str(MEAN), "--batch-size", "8",
         "--out", str(out), "--quiet"],
        capsys,
    )
    report = json.loads((tmp_path / "report.json").read_text())
    assert [r["protocol"] for r in report["results"]] == ["center", "10crop", "dense"]
    assert all(r["examples"] == 24 and 0 <= r["top5"] <= r["top1"] <= 100 for r in report["results"])
    md = (tmp_path / "report.md").read_text()
    assert "| 10crop | 10 | 24 |" in md
    assert "net_a on fashion_mnist [test]" in text


def test_fusion_of_two_files(keras_files, tmp_path, capsys):
    d, _, _ = keras_files
    _run(["evaluate", "--models", str(d / "a.keras"), str(d / "b.keras"), "--limit", "16", "--resize", "none",
          "--mean", str(MEAN), "--out", str(tmp_path / "fused"), "--quiet"], capsys)
    report = json.loads((tmp_path / "fused.json").read_text())
    assert report["models"] == ["net_a", "net_b"]
    assert 0 <= report["results"][0]["top1"] <= 100


def test_paper_figure_beside_ours_for_a_registry_model(tmp_path, capsys):
    from kerascnn.applications import ResNet20, get_model_info

    model = ResNet20(input_shape=(32, 32, 1))
    path = tmp_path / "resnet20.keras"
    model.save(path)
    _run(["evaluate", "--model", str(path), "--limit", "8", "--mean", str(MEAN),
          "--out", str(tmp_path / "r20"), "--quiet"], capsys)
    row = json.loads((tmp_path / "r20.json").read_text())["results"][0]
    paper = get_model_info("resnet20").paper_results
    paper = paper.get("center") or paper["test"]
    assert row["paper_top1"] == paper["top1"] and row["paper_dataset"] == paper["dataset"]
    assert row["examples"] == 8


@pytest.mark.parametrize("resize", [None, 28])  # 28: a Fashion-MNIST run's export (resize, pad 2)
def test_saved_model_export_gives_the_keras_numbers(keras_files, tmp_path, capsys, resize):
    from kerascnn import export

    d, a, _ = keras_files
    path = export.export_model(
        a, "net_a", base_dir=str(tmp_path / "saved_models"), verbose=False,
        preprocessing=dict(image_size=(32, 32), channels=1, pad=2, resize=resize,
                           mean=np.array([MEAN], np.float32)),
        class_names=[str(i) for i in range(10)],
    )
    common = ["--limit", "40", "--protocol", "center,10crop", "--resize", "none", "--quiet"]
    _run(["evaluate", "--model", str(path), "--out", str(tmp_path / "sm"), *common], capsys)
    _run(["evaluate", "--model", str(d / "a.keras"), "--mean", str(MEAN), "--pad", "2",
          "--out", str(tmp_path / "k"), *common], capsys)
    sm = json.loads((tmp_path / "sm.json").read_text())["results"]
    kf = json.loads((tmp_path / "k.json").read_text())["results"]
    # Without resizing the crops are whole pixels, which the export's uint8 rounding keeps.
    assert [v for s in sm for v in (s["top1"], s["top5"])] == pytest.approx([v for k in kf for v in (k["top1"], k["top5"])], abs=1e-4)


def test_bad_protocol_name_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "--model", "x.keras", "--protocol", "center,7crop"])
    assert "7crop" in capsys.readouterr().err
