"""The study machinery on a tiny budget: real (small) networks, a few steps on 8x8
images, every output written, resume skips finished networks, the responses study
measures the degradation study's networks."""

import dataclasses
import json
import os

import numpy as np
import pytest

from kerascnn.data import from_arrays
from kerascnn.reproduce import studies
from kerascnn.reproduce.runner import Settings, run_study

# depth 20 and 32 instead of 20 and 56: the same machinery at a third of the cost
NETS = (studies.Network("plain20", "plain20", "plain-20", "plain", 20),
        studies.Network("plain32", "plain32", "plain-32", "plain", 32),
        studies.Network("resnet20", "resnet20", "ResNet-20", "resnet", 20,
                        (("shortcut", "A"),)),
        studies.Network("resnet32", "resnet32", "ResNet-32", "resnet", 32,
                        (("shortcut", "A"),)))
ROLES = (("plain_shallow", "plain20"), ("plain_deep", "plain32"),
         ("resnet_shallow", "resnet20"), ("resnet_deep", "resnet32"))
DEGRADATION = dataclasses.replace(studies.get_study("degradation"), networks=NETS,
                                  roles=ROLES)
RESPONSES = dataclasses.replace(studies.get_study("responses"), networks=NETS,
                                roles=ROLES)
SETTINGS = Settings(iterations=4, points=2, batch_size=8, test_examples=16,
                    eval_batch_size=16, precision="float32", run_eagerly=True)


def _source(n, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    images = rng.integers(0, 60, (n, 8, 8, 1)) + 60 * labels[:, None, None, None]
    return from_arrays(images.astype(np.uint8), labels, ["a", "b", "c"])


TRAIN, TEST = _source(64, 0), _source(24, 1)


class Log(list):
    def __call__(self, msg):
        self.append(msg)


@pytest.fixture(scope="module")
def degradation(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("reproduce") / "degradation")
    log = Log()
    report = run_study(DEGRADATION, SETTINGS, out, train_source=TRAIN, test_source=TEST,
                       log=log)
    return out, report, log


def test_every_output_is_written(degradation):
    out, report, log = degradation
    for name in ("plan.json", "mean.npy", "results.json", "results.md", "claims.txt",
                 "figure6.png"):
        assert os.path.getsize(os.path.join(out, name)) > 0, name
    for net in NETS:
        folder = os.path.join(out, "nets", f"{net.key}-s0")
        assert os.path.exists(os.path.join(folder, "model.keras"))
        assert not os.path.exists(os.path.join(folder, "checkpoint.keras"))
        result = json.load(open(os.path.join(folder, "result.json")))
        assert [r["iteration"] for r in result["history"]] == [2, 4]
        # the final test error is the last curve point's, on the curve's test subset
        assert result["final_test_examples"] == 16
        assert result["final_test_error"] == result["history"][-1]["test_error"]
        # one progress line per curve point
        assert sum(f"{net.key} seed 0: point" in m for m in log) == 2
    with open(os.path.join(out, "results.json")) as f:
        saved = json.load(f)
    assert [c["key"] for c in saved["claims"]] == ["a", "b", "c"]
    assert all(c["outcome"] in ("holds", "does not hold", "inconclusive at this scale")
               for c in saved["claims"])
    claims_txt = open(os.path.join(out, "claims.txt")).read().splitlines()
    assert len(claims_txt) == 3 and all("Rule:" in line for line in claims_txt)
    md = open(os.path.join(out, "results.md")).read()
    for net in NETS:
        assert f"| {net.label} |" in md
    # the mean is the per-pixel mean of the training images
    np.testing.assert_allclose(np.load(os.path.join(out, "mean.npy")),
                               TRAIN.images.mean(axis=0), rtol=1e-5)
    # the schedule: lr 0.1 up to 50 % of the iterations, /100 after 75 %
    assert saved["plan"]["lr_boundaries"] == [2, 3]
    assert saved["networks"]["plain20"]["seeds"]["0"]["history"][-1]["lr"] == \
        pytest.approx(0.001)


def test_rerun_skips_finished_networks(degradation):
    out, _, _ = degradation
    path = os.path.join(out, "nets", "resnet20-s0", "result.json")
    before = {n.key: os.stat(os.path.join(out, "nets", f"{n.key}-s0", "result.json"))
              .st_mtime_ns for n in NETS}
    content = open(path).read()
    # one network lost its result (as if killed before the end): only it is trained
    os.remove(os.path.join(out, "nets", "plain32-s0", "result.json"))
    log = Log()
    run_study(DEGRADATION, SETTINGS, out, train_source=TRAIN, test_source=TEST, log=log)
    trained = [m for m in log if m.startswith("training ")]
    assert len(trained) == 1 and trained[0].startswith("training plain32 seed 0")
    assert sum("not trained again" in m for m in log) == 3
    for key in ("plain20", "resnet20", "resnet32"):
        assert os.stat(os.path.join(out, "nets", f"{key}-s0", "result.json")) \
            .st_mtime_ns == before[key]
    assert open(path).read() == content


def test_other_settings_in_the_same_folder_are_refused(degradation):
    out, _, _ = degradation
    other = dataclasses.replace(SETTINGS, batch_size=4)
    with pytest.raises(ValueError, match="batch_size"):
        run_study(DEGRADATION, other, out, train_source=TRAIN, test_source=TEST,
                  log=Log())


def test_responses_measure_the_degradation_networks(degradation, tmp_path):
    out, _, _ = degradation
    log = Log()
    report = run_study(RESPONSES, SETTINGS, str(tmp_path / "responses"),
                       train_source=TRAIN, test_source=TEST, nets_dir=out, log=log)
    assert not any(m.startswith("training ") for m in log)
    for name in ("results.json", "results.md", "claims.txt", "figure7.png"):
        assert os.path.getsize(tmp_path / "responses" / name) > 0
    assert len(report["networks"]["plain20"]["std"]) == 19
    assert len(report["networks"]["resnet32"]["std"]) == 31
    assert [c["key"] for c in report["claims"]] == ["a", "b"]


def test_responses_train_missing_networks_and_say_so(tmp_path):
    nets = NETS[0:1] + NETS[2:3]  # plain-20 and ResNet-20 only
    roles = (("plain_shallow", "plain20"), ("resnet_shallow", "resnet20"))
    study = dataclasses.replace(RESPONSES, networks=nets, roles=roles)
    nets_study = dataclasses.replace(DEGRADATION, networks=nets, roles=roles)
    log = Log()
    report = run_study(study, SETTINGS, str(tmp_path / "responses"), train_source=TRAIN,
                       test_source=TEST, nets_study=nets_study,
                       nets_dir=str(tmp_path / "degradation"), log=log)
    assert any("are not trained" in m and "training them now" in m for m in log)
    assert sum(m.startswith("training ") for m in log) == 2
    assert (tmp_path / "degradation" / "nets" / "plain20-s0" / "result.json").exists()
    assert len(report["claims"]) == 1


def test_shortcuts_with_two_seeds(tmp_path):
    study = studies.get_study("shortcuts")
    settings = dataclasses.replace(SETTINGS, iterations=2, points=1)
    report = run_study(study, settings, str(tmp_path), train_source=TRAIN,
                       test_source=TEST, log=Log())
    assert sorted(os.listdir(tmp_path / "nets")) == [
        f"resnet20_{o}-s{s}" for o in "ABC" for s in (0, 1)]
    assert report["plan"]["seeds"] == 2
    claim = report["claims"][0]
    assert claim["numbers"]["seeds"] == 2
    # the claim's means are the networks' final test accuracies, averaged over seeds
    for option in "ABC":
        errors = [report["networks"][f"resnet20_{option}"]["seeds"][s]["final_test_error"]
                  for s in ("0", "1")]
        assert claim["numbers"]["means"][f"resnet20_{option}"] == \
            pytest.approx(100 - np.mean(errors))
    assert (tmp_path / "figure6.png").stat().st_size > 0


KILLED = r'''
import sys
sys.path.insert(0, {tests!r})
from test_reproduce_runner import NETS, SETTINGS, TRAIN, TEST
import dataclasses
from kerascnn.reproduce.runner import prepare_data, train_network
settings = dataclasses.replace(SETTINGS, points=10, checkpoint_seconds=0)
data = prepare_data(settings, {out!r}, train_source=TRAIN, test_source=TEST)
train_network(NETS[0], 0, settings, 20, data, {run_dir!r}, log=print)
'''


def test_a_killed_network_resumes_from_its_checkpoint(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    from kerascnn.reproduce.runner import prepare_data, train_network

    run_dir = tmp_path / "nets" / "plain20-s0"
    script = KILLED.format(tests=os.path.dirname(__file__), out=str(tmp_path),
                           run_dir=str(run_dir))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 600
        while not (run_dir / "state.json").exists() and proc.poll() is None:
            assert time.time() < deadline
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)  # killed mid-way, after a checkpoint
    finally:
        proc.wait()
    assert not (run_dir / "result.json").exists()
    done = json.loads((run_dir / "state.json").read_text())["points_done"]
    assert 1 <= done < 10
    settings = dataclasses.replace(SETTINGS, points=10, checkpoint_seconds=0)
    data = prepare_data(settings, str(tmp_path), train_source=TRAIN, test_source=TEST)
    log = Log()
    result = train_network(NETS[0], 0, settings, 20, data, str(run_dir), log=log)
    resumed = [m for m in log if "resuming from its checkpoint" in m]
    assert resumed and f"at point {result['resumed_at_point']}/10" in resumed[0]
    assert result["resumed_at_point"] >= done
    assert [r["iteration"] for r in result["history"]] == list(range(2, 22, 2))
    assert not (run_dir / "checkpoint.keras").exists()
    # the learning-rate steps continue from the restored iteration count
    lrs = [r["lr"] for r in result["history"]]
    # (bounds at iterations 10 and 15; a point reports the rate of its last step)
    assert lrs[4] == pytest.approx(0.1) and lrs[5] == pytest.approx(0.01)
    assert lrs[7] == pytest.approx(0.001) and lrs[-1] == pytest.approx(0.001)


def test_the_budget_is_calibrated_into_iterations(tmp_path):
    from kerascnn.reproduce.runner import plan_study, prepare_data

    study = dataclasses.replace(studies.get_study("shortcuts"), networks=NETS[2:3],
                                seeds=2)
    settings = dataclasses.replace(SETTINGS, iterations=None, budget_minutes=3.0,
                                   points=4)
    data = prepare_data(settings, str(tmp_path), train_source=TRAIN, test_source=TEST)
    log = Log()
    plan = plan_study(study, settings, data, str(tmp_path), log=log)
    cal = plan["calibration"]
    net = cal["networks"]["resnet20"]
    assert net["step_s"] > 0 and net["curve_eval_s"] > 0
    assert cal["budget_s"] == 180.0
    # fixed costs: each seed evaluates the curve's 4 points (+3 s of saving)
    assert cal["fixed_s"] == pytest.approx(2 * (4 * net["curve_eval_s"] + 3.0))
    assert cal["per_iteration_s"] == pytest.approx(2 * net["step_s"])
    assert 0.5 <= cal["safety"] < 1
    room = cal["safety"] * 180.0 - cal["spent_s"] - cal["fixed_s"]
    expected = int(room / cal["per_iteration_s"])
    assert plan["iterations"] == max(4, expected - expected % 4)
    assert plan["iterations"] % plan["points"] == 0
    assert json.load(open(tmp_path / "plan.json"))["iterations"] == plan["iterations"]
    # run again: the plan is read back, not calibrated again
    log = Log()
    assert plan_study(study, settings, data, str(tmp_path), log=log) == \
        json.load(open(tmp_path / "plan.json"))
    assert not any("calibration" in m for m in log)
