"""The AlexNet paper's studies (``relu``, ``alexnet-ablations``): their claim rules on
constructed curves whose verdicts are known (holds, does not hold, inconclusive), the
crossing and threshold rules with numbers computed here, the command's settings, and
each study at a tiny size on Fashion-MNIST (every output, a SIGKILL and a resume)."""

import dataclasses
import json
import math
import os

import numpy as np
import pytest

from kerascnn.reproduce import alexnet_studies as A
from kerascnn.reproduce import claims as rules
from kerascnn.reproduce import studies
from kerascnn.reproduce.runner import run_study

from test_reproduce_cli import _settings

HOLDS, NOT, INC = rules.HOLDS, rules.DOES_NOT_HOLD, rules.INCONCLUSIVE


# -- relu's rules ---------------------------------------------------------------------
def test_crossing_is_interpolated_between_points():
    # from 50 % at 10 to 30 % at 20: 40 % is reached half-way, at 15
    assert A.crossing([10, 20, 30], [50, 30, 10], 40) == (15.0, True)
    assert A.crossing([10, 20, 30], [50, 30, 10], 30) == (20.0, True)
    assert A.crossing([10, 20, 30], [50, 30, 20], 10) == (30.0, False)  # never: its run
    assert A.crossing([10, 20], [5, 3], 10) == (10.0, True)  # already at the first point
    with pytest.raises(ValueError, match="one length"):
        A.crossing([1, 2], [3], 1)


def test_common_threshold_is_the_largest_minimum_rounded_up():
    assert A.common_threshold([[40, 20, 12.3], [50, 30, 17.2, 18]]) == 18.0
    assert A.common_threshold([[40, 15.0], [30, 12]]) == 15.0


def _curve(start, rate, points=10, step=100):
    """Error falling geometrically: start * rate**i at iterations 50, 150, ..."""
    x = [step / 2 + step * i for i in range(points)]
    return x, [start * rate ** i for i in range(points)]


FAMILIES = {"relu": ["relu_a", "relu_b"], "tanh": ["tanh_a", "tanh_b"]}


def _relu_case(relu_rates, tanh_rates):
    """Curves per key and seed; the "_b" rates train worse (higher curves)."""
    out = {}
    for key, rates in (("relu", relu_rates), ("tanh", tanh_rates)):
        for suffix, worse in (("a", 0.0), ("b", 5.0)):
            out[f"{key}_{suffix}"] = {s: (x, [e + worse for e in errors])
                                      for s, (x, errors) in enumerate(
                                          _curve(90, r) for r in rates)}
    return out


def test_relu_holds_when_relu_reaches_the_threshold_sooner():
    curves = _relu_case([0.5, 0.52], [0.8, 0.81])
    [claim] = A.relu_claims(curves, FAMILIES)
    assert claim.outcome == HOLDS
    n = claim.numbers
    assert (n["relu"], n["tanh"]) == ("relu_a", "tanh_a")  # the lower curves
    # threshold: the largest minimum of the two chosen nets' curves, rounded up
    expected_t = math.ceil(max(90 * r ** 9 for r in (0.5, 0.52, 0.8, 0.81)))
    assert n["threshold"] == expected_t
    # tanh seed 0: 90 * 0.8**i crosses between points i and i+1, interpolated here
    e = [90 * 0.8 ** i for i in range(10)]
    i = next(i for i, v in enumerate(e) if v <= expected_t)
    x0, x1 = 50 + 100 * (i - 1), 50 + 100 * i
    tanh0 = x0 + (e[i - 1] - expected_t) * (x1 - x0) / (e[i - 1] - e[i])
    assert n["tanh_iterations"][0] == pytest.approx(tanh0)
    assert n["factors"][0] == pytest.approx(tanh0 / n["relu_iterations"][0])
    assert n["factor_mean"] > 1 and "factor tanh/ReLU" in claim.detail


def test_relu_does_not_hold_when_tanh_is_faster():
    [claim] = A.relu_claims(_relu_case([0.8, 0.81], [0.5, 0.52]), FAMILIES)
    assert claim.outcome == NOT and claim.numbers["factor_mean"] < 1


def test_relu_is_inconclusive_within_the_spread_between_seeds():
    # tanh's two seeds bracket relu's: the difference is below their spread
    [claim] = A.relu_claims(_relu_case([0.7, 0.7], [0.6, 0.8]), FAMILIES)
    assert claim.outcome == INC
    assert abs(claim.numbers["difference"]) <= claim.numbers["noise"]


def test_relu_with_the_papers_threshold_counts_a_curve_that_never_reaches_it():
    curves = _relu_case([0.5, 0.52], [0.95, 0.95])  # tanh stays above 25 %
    [claim] = A.relu_claims(curves, FAMILIES, threshold=25.0)
    assert claim.outcome == HOLDS and claim.numbers["threshold"] == 25.0
    assert not claim.numbers["tanh_reached"] and "lower bound" in claim.detail
    assert claim.numbers["tanh_iterations"] == [950.0, 950.0]  # the whole run
    # one seed: the noise is one curve interval
    one = {k: {0: v[0]} for k, v in curves.items()}
    [claim] = A.relu_claims(one, FAMILIES, threshold=25.0)
    assert claim.numbers["noise"] == 100.0 and "one curve interval" in claim.rule


# -- the ablations' rules --------------------------------------------------------------
ROLES = {"full": "full", "no_lrn": "no_lrn", "no_overlap": "no_overlap",
         "no_dropout": "no_dropout"}


def _ablation_case(test_finals, train_finals, spread=0.2):
    test = {k: [[50.0, 40.0, v - spread / 2], [50.0, 40.0, v + spread / 2]]
            for k, v in test_finals.items()}
    train = {k: [v, v] for k, v in train_finals.items()}
    return test, train


def test_ablations_hold_as_the_paper_says():
    test, train = _ablation_case(
        {"full": 20.0, "no_lrn": 21.4, "no_overlap": 20.4, "no_dropout": 22.0},
        {"full": 15.0, "no_lrn": 15.0, "no_overlap": 14.0, "no_dropout": 5.0})
    found = A.ablation_claims(test, train, ROLES)
    assert [c.key for c in found] == ["a", "b", "c", "d"]
    assert [c.outcome for c in found] == [HOLDS] * 4
    # the gap: final test minus training error, computed here
    assert found[3].numbers["no_dropout"] == pytest.approx(22.0 - 5.0)
    assert found[3].numbers["full"] == pytest.approx(20.0 - 15.0)
    assert found[0].numbers["difference"] == pytest.approx(1.4)


def test_ablations_do_not_hold_when_reversed():
    test, train = _ablation_case(
        {"full": 22.0, "no_lrn": 20.0, "no_overlap": 20.0, "no_dropout": 19.0},
        {"full": 5.0, "no_lrn": 5.0, "no_overlap": 10.0, "no_dropout": 15.0})
    assert [c.outcome for c in A.ablation_claims(test, train, ROLES)] == [NOT] * 4


def test_ablations_are_inconclusive_within_the_noise():
    test, train = _ablation_case(
        {"full": 20.0, "no_lrn": 20.1, "no_overlap": 19.9, "no_dropout": 20.0},
        {"full": 10.0, "no_lrn": 10.0, "no_overlap": 10.0, "no_dropout": 10.05}, spread=1.0)
    assert [c.outcome for c in A.ablation_claims(test, train, ROLES)] == [INC] * 4
    # one seed, one point: no noise can be measured
    one = {k: [[v[0][-1]]] for k, v in test.items()}
    assert {c.outcome for c in A.ablation_claims(one, {k: v[:1] for k, v in train.items()},
                                                 ROLES)} == {INC}


# -- the command's settings ------------------------------------------------------------
def test_the_studies_defaults_and_paper_settings():
    s = _settings("relu")
    # Figure 1: no regularisation, a constant rate (the study's), no augmentation
    assert (s.data, s.weight_decay, s.points, s.augment) == ("fashion_mnist", 0.0, 20, "none")
    assert s.lr == A.RELU_RATE and _settings("relu", "--lr", "0.1").lr == 0.1
    s = _settings("alexnet-ablations", "--lr", "0.02")
    # AlexNet's recipe (§5): weight decay 5e-4; the flag beats the study's default rate
    assert (s.lr, s.weight_decay, s.momentum, s.batch_size) == (0.02, 5e-4, 0.9, 128)
    assert _settings("alexnet-ablations").lr == 0.01
    s = _settings("relu", "--paper")
    assert (s.data, s.weight_decay, s.augment, s.train_examples) == \
        ("tfds:cifar10", 0.0, "none", None)
    s = _settings("alexnet-ablations", "--paper")
    assert (s.data, s.epochs, s.lr, s.weight_decay) == ("tfds:cifar10", 90, 0.01, 5e-4)
    assert _settings("degradation").weight_decay == 1e-4  # the others keep theirs
    for name in ("relu", "alexnet-ablations"):
        assert name in studies.list_studies()
    relu = studies.get_study("relu")
    assert [n.kwargs()["activation"] for n in relu.networks] == ["relu", "tanh"]
    assert {n.model for n in relu.networks} == {"alexnet_fig1"}


# -- tiny runs -------------------------------------------------------------------------
def tiny(study, iterations=2):
    """The command's settings of ``study`` (its defaults), at a tiny size (two points:
    the fewest that leave one to resume after a kill at the first)."""
    s = _settings(study, "--iterations", str(iterations), "--points", str(iterations),
                  "--batch-size", "8", "--train-examples", "48", "--test-examples", "16",
                  "--precision", "float32")
    return dataclasses.replace(s, eval_batch_size=16, run_eagerly=True)


def _tiny_relu():
    study = studies.get_study("relu")
    nets = tuple(dataclasses.replace(n, options=n.options + (("width", 4),))
                 for n in study.networks)
    return dataclasses.replace(study, networks=nets, seeds=1)


def _tiny_ablations():
    study = studies.get_study("alexnet-ablations")
    nets = tuple(dataclasses.replace(n, options=n.options + (("fc_width", 8), ("width", 0.05)))
                 for n in study.networks)
    return dataclasses.replace(study, networks=nets, seeds=1)


KILLED = r'''
import sys
sys.path.insert(0, {tests!r})
from test_alexnet_studies import tiny, _tiny_relu
from kerascnn.reproduce.runner import run_study

from test_reproduce_cli import _settings
run_study(_tiny_relu(), tiny("relu"), {out!r})
'''


def _outputs(out, figure):
    for name in ("plan.json", "results.json", "results.md", "claims.txt", figure):
        assert os.path.getsize(os.path.join(out, name)) > 0, name
    return json.load(open(os.path.join(out, "results.json")))


def test_relu_runs_resumes_after_a_kill_and_reports(tmp_path, capfd, forks):
    out = tmp_path / "relu"
    study = _tiny_relu()
    second = out / "nets" / f"{study.networks[1].key}-s0"
    script = KILLED.format(tests=os.path.dirname(__file__), out=str(out))
    code, printed = forks.kill_when(script, os.getcwd(),
                                    str(second / "backup" / "training_metadata.json"),
                                    str(tmp_path / "log.txt"), timeout=600)
    assert code != 0 and not (second / "completed.json").exists(), printed
    first = out / "nets" / f"{study.networks[0].key}-s0"
    assert (first / "completed.json").exists()
    capfd.readouterr()
    report = run_study(study, tiny("relu"), str(out), log=lambda m: None)
    printed = capfd.readouterr().out
    assert f"resuming relu-{study.networks[1].key}-s0" in printed
    saved = _outputs(str(out), "figure1.png")
    assert saved["claims"][0]["key"] == "a" and report["figures"] == ["figure1.png"]
    n = saved["claims"][0]["numbers"]
    # the offline threshold from the runs' own curves (both seeds of both nets)
    curves = [[p["train_error"] for p in saved["networks"][k]["seeds"][s]["history"]]
              for k in (n["relu"], n["tanh"]) for s in saved["networks"][k]["seeds"]]
    assert n["threshold"] == math.ceil(max(min(c) for c in curves))
    assert "ReLU" in open(os.path.join(out, "claims.txt")).read()


def test_ablations_run_and_measure_the_training_error_without_dropout(tmp_path):
    out = str(tmp_path / "ablations")
    study = _tiny_ablations()
    report = run_study(study, tiny("alexnet-ablations", 2), out, log=lambda m: None)
    saved = _outputs(out, "figure_ablations.png")
    assert [c["key"] for c in saved["claims"]] == ["a", "b", "c", "d"]
    assert "scaled AlexNet" in open(os.path.join(out, "results.md")).read()
    gaps = {}
    for net in study.networks:
        folder = os.path.join(out, "nets", f"{net.key}-s0")
        measured = json.load(open(os.path.join(folder, A.TRAIN_METRICS)))
        assert measured["num_examples"] == 48 and measured["mode"].startswith("inference")
        recipe = json.load(open(os.path.join(folder, "recipe.json")))
        assert recipe["model"]["options"]["dropout"] == (0.0 if net.key == "no_dropout" else 0.5)
        assert recipe["optimizer"]["weight_decay"] == 5e-4  # AlexNet's (study default)
        last = saved["networks"][net.key]["seeds"]["0"]["history"][-1]["test_error"]
        gaps[net.key] = last - measured["top1_error"]
    d = saved["claims"][3]["numbers"]
    assert d["no_dropout"] == pytest.approx(gaps["no_dropout"])
    assert d["full"] == pytest.approx(gaps["full"])
    # a second report reads the measurement back (nothing is trained or measured again)
    os.utime(out)
    again = run_study(study, tiny("alexnet-ablations", 2), out, log=lambda m: None)
    assert again["claim_lines"] == report["claim_lines"]
