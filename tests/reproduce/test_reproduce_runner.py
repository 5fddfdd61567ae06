"""The studies on Fashion-MNIST at a tiny size: each network a `kerascnn train` run in
its own run folder, every output written, a rerun skips finished runs, a killed study
resumes at its first unfinished point, the budget's calibration, and the responses
study measuring the degradation study's networks."""

import csv
import dataclasses
import json
import os
import shutil

import numpy as np
import pytest

from kerascnn.reproduce import studies
from kerascnn.reproduce.runner import Settings, run_study

# the two smallest CIFAR nets, each playing the shallow and the deep role
NETS = (studies.Network("plain20", "plain20", "plain-20", "plain", 20),
        studies.Network("resnet20", "resnet20", "ResNet-20", "resnet", 20,
                        (("shortcut", "A"),)))
ROLES = (("plain_shallow", "plain20"), ("plain_deep", "plain20"),
         ("resnet_shallow", "resnet20"), ("resnet_deep", "resnet20"))
DEGRADATION = dataclasses.replace(studies.get_study("degradation"), networks=NETS,
                                  roles=ROLES)
RESPONSES = dataclasses.replace(studies.get_study("responses"), networks=NETS,
                                roles=ROLES)
ONE = dataclasses.replace(DEGRADATION, networks=NETS[:1],
                          roles=tuple((role, "plain20") for role, _ in ROLES))
SETTINGS = Settings(iterations=2, points=2, batch_size=8, train_examples=64,
                    test_examples=16, eval_batch_size=16, precision="float32",
                    run_eagerly=True)


class Log(list):
    def __call__(self, msg):
        self.append(msg)


def _history(folder):
    with open(os.path.join(folder, "history.csv"), newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def degradation(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("reproduce") / "degradation")
    log = Log()
    report = run_study(DEGRADATION, SETTINGS, out, log=log)
    return out, report, log


def test_every_output_is_written(degradation):
    from kerascnn.data import load_source

    out, report, log = degradation
    for name in ("plan.json", "mean.npy", "results.json", "results.md", "claims.txt",
                 "figure6.png"):
        assert os.path.getsize(os.path.join(out, name)) > 0, name
    saved = json.load(open(os.path.join(out, "results.json")))
    for net in NETS:
        folder = os.path.join(out, "nets", f"{net.key}-s0")
        # a training run folder, finished, of the variant's recipe
        for name in ("completed.json", "checkpoints/last.keras", "test_metrics.json"):
            assert os.path.exists(os.path.join(folder, name)), name
        assert not os.path.exists(os.path.join(folder, "backup"))
        recipe = json.load(open(os.path.join(folder, "recipe.json")))
        assert recipe["model"]["name"] == net.model
        assert (recipe["training"]["epochs"], recipe["training"]["steps_per_epoch"]) == (2, 1)
        rows = _history(folder)
        assert [int(r["epoch"]) for r in rows] == [0, 1]
        run = saved["networks"][net.key]["seeds"]["0"]
        assert [p["iteration"] for p in run["history"]] == [1, 2]
        # the curve is the run's history.csv: training error, test error on the subset
        assert [p["test_error"] for p in run["history"]] == \
            [float(r["val_top1_error"]) for r in rows]
        # the final test error is on the same 16 test images as the curve's last point
        assert run["final_test_examples"] == 16
        assert run["final_test_error"] == pytest.approx(run["history"][-1]["test_error"])
        # the paper's schedule: lr 0.1, /10 at 50 % of the iterations (and /100 at
        # 75 %: at the end of this run; the killed study's test sees it)
        assert [p["lr"] for p in run["history"]] == pytest.approx([0.1, 0.01])
        # the study's mean, computed once, is every run's
        np.testing.assert_array_equal(np.load(os.path.join(folder, "mean.npy")),
                                      np.load(os.path.join(out, "mean.npy")))
    assert [c["key"] for c in saved["claims"]] == ["a", "b", "c"]
    assert all(c["outcome"] in ("holds", "does not hold", "inconclusive at this scale")
               for c in saved["claims"])
    claims_txt = open(os.path.join(out, "claims.txt")).read().splitlines()
    assert len(claims_txt) == 3 and all("Rule:" in line for line in claims_txt)
    md = open(os.path.join(out, "results.md")).read()
    for net in NETS:
        assert f"| {net.label} |" in md
    # the paper's number beside ResNet-20's (§4.2: 8.75 %), none beside plain-20's
    assert "| paper CIFAR-10 test error (%) |" in md
    rows = {line.split(" | ")[0]: line for line in md.splitlines() if line.startswith("| ")}
    assert "| 8.75 |" in rows["| ResNet-20"] and "| - |" in rows["| plain-20"]
    # the per-pixel mean of the 64 training images used
    images = load_source("fashion_mnist", "train").images[:64]
    np.testing.assert_allclose(np.load(os.path.join(out, "mean.npy")),
                               images.mean(axis=0), rtol=1e-5)


def test_rerun_skips_finished_networks(degradation, capfd):
    out, _, _ = degradation
    kept = os.path.join(out, "nets", "plain20-s0", "completed.json")
    before = os.stat(kept).st_mtime_ns
    # killed after its training and test, before completed.json: only that is left
    folder = os.path.join(out, "nets", "resnet20-s0")
    history = os.stat(os.path.join(folder, "history.csv")).st_mtime_ns
    os.remove(os.path.join(folder, "completed.json"))
    log = Log()
    capfd.readouterr()
    run_study(DEGRADATION, SETTINGS, out, log=log)
    trained = [m for m in log if m.startswith("training ")]
    assert len(trained) == 1 and trained[0].startswith("training resnet20 seed 0")
    assert "resuming degradation-resnet20-s0" in capfd.readouterr().out
    assert sum("not trained again" in m for m in log) == 1
    assert os.stat(kept).st_mtime_ns == before
    # its training was not repeated; the run is complete again
    assert os.stat(os.path.join(folder, "history.csv")).st_mtime_ns == history
    assert os.path.exists(os.path.join(folder, "completed.json"))


def test_other_settings_in_the_same_folder_are_refused(degradation):
    out, _, _ = degradation
    with pytest.raises(ValueError, match="batch_size"):
        run_study(DEGRADATION, dataclasses.replace(SETTINGS, batch_size=4), out,
                  log=Log())


def test_responses_measure_the_degradation_networks(degradation, tmp_path):
    out, _, _ = degradation
    log = Log()
    report = run_study(RESPONSES, SETTINGS, str(tmp_path / "responses"), nets_dir=out,
                       log=log)
    assert not any(m.startswith("training ") for m in log)
    for name in ("results.json", "results.md", "claims.txt", "figure7.png"):
        assert os.path.getsize(tmp_path / "responses" / name) > 0
    # plain-20 and ResNet-20: a 3x3 conv and 9 blocks of two
    assert len(report["networks"]["plain20"]["std"]) == 19
    assert len(report["networks"]["resnet20"]["std"]) == 19
    assert [c["key"] for c in report["claims"]] == ["a", "b"]


def test_responses_train_missing_networks_and_say_so(degradation, tmp_path):
    nets_dir = tmp_path / "degradation"
    shutil.copytree(degradation[0], nets_dir)
    shutil.rmtree(nets_dir / "nets" / "plain20-s0")
    log = Log()
    report = run_study(RESPONSES, SETTINGS, str(tmp_path / "responses"),
                       nets_study=DEGRADATION, nets_dir=str(nets_dir), log=log)
    assert any("plain20 are not trained" in m and "training them now" in m for m in log)
    assert [m.split(":")[0] for m in log if m.startswith("training ")] == \
        ["training plain20 seed 0"]
    assert (nets_dir / "nets" / "plain20-s0" / "completed.json").exists()
    assert len(report["claims"]) == 2


# shortcuts with two seeds: test_reproduce_sources.py's TFRecord run


KILLED = r'''
import dataclasses, sys
sys.path.insert(0, {tests!r})
from test_reproduce_runner import ONE, SETTINGS
from kerascnn.reproduce.runner import run_study
run_study(ONE, dataclasses.replace(SETTINGS, iterations=4, points=4), {out!r})
'''


def test_a_killed_study_resumes_at_its_first_unfinished_point(tmp_path, capfd, forks):
    out = tmp_path / "degradation"
    folder = out / "nets" / "plain20-s0"
    script = KILLED.format(tests=os.path.dirname(__file__), out=str(out))
    code, printed = forks.kill_when(script, os.getcwd(),
                                    str(folder / "backup" / "training_metadata.json"),
                                    str(tmp_path / "log.txt"), timeout=600)
    assert code != 0 and not (folder / "completed.json").exists(), printed
    done = len(_history(folder))
    assert 1 <= done < 4
    capfd.readouterr()
    run_study(ONE, dataclasses.replace(SETTINGS, iterations=4, points=4), str(out),
              log=Log())
    printed = capfd.readouterr().out
    assert "resuming degradation-plain20-s0" in printed
    epochs = [int(line.split(":")[0].split()[1]) for line in printed.splitlines()
              if line.startswith("Epoch ")]
    assert epochs and epochs[0] > 1 and epochs[-1] == 4  # not from the start
    rows = _history(folder)
    assert [int(r["epoch"]) for r in rows] == list(range(4))
    # the rate steps where the paper's do: /10 at 50 %, /100 at 75 % of the iterations
    assert [float(r["learning_rate"]) for r in rows] == \
        pytest.approx([0.1, 0.1, 0.01, 0.001])


def test_the_budget_is_calibrated_into_iterations(tmp_path):
    from kerascnn.reproduce.plan import plan_study
    from kerascnn.reproduce.runner import study_data

    study = dataclasses.replace(DEGRADATION, networks=NETS[1:], seeds=2)
    settings = dataclasses.replace(SETTINGS, iterations=None, budget_minutes=3.0)
    data = study_data(study, settings, str(tmp_path), Log())
    log = Log()
    plan = plan_study(study, settings, data, str(tmp_path), log=log)
    cal = plan["calibration"]
    net = cal["networks"]["resnet20"]
    assert net["step_s"] > 0 and net["curve_eval_s"] > 0 and net["save_s"] > 0
    assert cal["budget_s"] == 180.0
    # fixed costs per seed: the compilation again, 2 curve points and the final test
    # (the same subset), a checkpoint per point, and 3 s of the run's own files
    assert cal["fixed_s"] == pytest.approx(2 * (net["compile_and_first_steps_s"] + 3.0
                                                + 3 * net["curve_eval_s"]
                                                + 2 * net["save_s"]))
    assert cal["per_iteration_s"] == pytest.approx(2 * net["step_s"])
    assert 0.5 <= cal["safety"] < 1
    room = cal["safety"] * 180.0 - cal["spent_s"] - cal["fixed_s"]
    expected = int(max(0.0, room) / cal["per_iteration_s"])
    assert plan["iterations"] == max(2, expected - expected % 2)
    assert plan["iterations"] % plan["points"] == 0
    assert json.load(open(tmp_path / "plan.json"))["iterations"] == plan["iterations"]
    # run again: the plan is read back, not calibrated again
    log = Log()
    assert plan_study(study, settings, data, str(tmp_path), log=log) == \
        json.load(open(tmp_path / "plan.json"))
    assert not any("calibration" in m for m in log)
