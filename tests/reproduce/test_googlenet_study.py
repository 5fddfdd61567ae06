"""The ``googlenet`` study (Szegedy et al. 2015, §5 and Table 3, scaled): its claims
decided on constructed curves and per-image results whose verdicts are known, its
protocols at the scaled size, and one tiny run through ``run_study``, SIGKILLed after
its first curve point and resumed (every output, the crops measured on the trained
network and kept for a rerun)."""

import dataclasses
import json
import os

import numpy as np
import pytest

from kerascnn.reproduce import claims as rules
from kerascnn.reproduce import googlenet_studies as g
from kerascnn.reproduce import studies
from kerascnn.reproduce.runner import Settings, run_study

LABELS = {"aux": "scaled GoogLeNet, aux 0.3", "noaux": "scaled GoogLeNet, aux 0"}


def _curve(final, wiggle=0.1, n=6):
    return [final + 5.0 - i + (wiggle if i % 2 else 0.0) for i in range(n - 1)] + [final]


# -- §5: the auxiliary losses -------------------------------------------------------
def test_aux_claim_holds_beyond_the_seed_spread():
    c = g.aux_claim({"aux": [[20, 12.0], [20, 12.4]], "noaux": [[20, 13.5], [20, 13.2]]},
                    LABELS)
    assert c.outcome == rules.HOLDS
    # 13.35 - 12.2 = 1.15 points, noise = the larger spread 0.4
    assert c.numbers["difference"] == pytest.approx(1.15)
    assert c.numbers["noise"] == pytest.approx(0.4)
    assert "about -0.5 %" in c.detail and "-1.15 points" in c.detail


def test_aux_claim_does_not_hold_when_the_heads_hurt():
    c = g.aux_claim({"aux": [[20, 14.0], [20, 14.1]], "noaux": [[20, 12.0], [20, 12.2]]},
                    LABELS)
    assert c.outcome == rules.DOES_NOT_HOLD


def test_aux_claim_within_the_spread_or_one_point_is_inconclusive():
    c = g.aux_claim({"aux": [[20, 12.0], [20, 13.0]], "noaux": [[20, 12.6], [20, 12.9]]},
                    LABELS)
    assert c.outcome == rules.INCONCLUSIVE  # 0.25 points, spread 1.0
    # one seed: the curve's last-interval fluctuation is the noise
    c = g.aux_claim({"aux": [_curve(10.0, wiggle=0.0)], "noaux": [_curve(10.5, wiggle=0.0)]},
                    LABELS)
    assert c.outcome == rules.INCONCLUSIVE  # 0.5 < the last step of 1 point
    c = g.aux_claim({"aux": [[12.0]], "noaux": [[15.0]]}, LABELS)
    assert c.outcome == rules.INCONCLUSIVE and "not measurable" in c.detail


# -- Table 3: crops ----------------------------------------------------------------
def _correct(n, wrong):
    c = np.ones(n, bool)
    c[list(wrong)] = False
    return c


def test_crop_claims_hold_not_hold_and_inconclusive():
    n = 200
    one = _correct(n, range(40))  # 20 % error
    ten = _correct(n, range(20))  # 10 %: 20 images gained, none lost
    many = _correct(n, list(range(18)) + list(range(100, 103)))  # 2 gained, 3 lost
    b, c = g.crop_claims({0: {"center": one, "10crop": ten, "144crop": many}})
    assert b.outcome == rules.HOLDS and c.outcome == rules.INCONCLUSIVE
    t = b.numbers["tests"]["0"]
    assert (t["gained"], t["lost"]) == (20, 0)
    assert t["p_lower"] == pytest.approx(0.5 ** 20)  # binomial, typed here
    assert "20.00 % -> 10.00 %" in b.detail
    # 144 crops much worse than 10 for both seeds: does not hold
    worse = _correct(n, range(60))
    both = {s: {"center": one, "10crop": ten, "144crop": worse} for s in (0, 1)}
    b, c = g.crop_claims(both)
    assert c.outcome == rules.DOES_NOT_HOLD
    # seeds disagree: inconclusive
    mixed = {0: {"center": one, "10crop": ten, "144crop": worse},
             1: {"center": one, "10crop": ten, "144crop": _correct(n, range(5))}}
    assert g.crop_claims(mixed)[1].outcome == rules.INCONCLUSIVE


def test_protocols_at_the_scaled_size_keep_the_imagenet_defaults():
    from kerascnn.evaluation.protocols import make_protocol

    p = make_protocol("144crop", crop_size=28, family="googlenet")
    # the paper's 256, 288, 320, 352 for 224 crops, times 28/224
    assert p.scales == (32, 36, 40, 44) and p.num_views == 144
    assert make_protocol("10crop", crop_size=28, family="googlenet").resize == 32
    full = make_protocol("144crop", family="googlenet")
    assert full.scales == (256, 288, 320, 352)
    assert make_protocol("10crop", family="googlenet").resize == 256
    assert g.EVAL_RESIZE == round(28 * 256 / 224)


def test_posteriors_average_the_views_per_image():
    import keras
    import tensorflow as tf

    from kerascnn.data.preprocessing import Preprocessing
    from kerascnn.evaluation.evaluate import Member, posteriors

    # a "network" whose posterior is the mean brightness of its view: exact by hand
    inp = keras.Input((8, 8, 1))
    x = keras.layers.GlobalAveragePooling2D()(inp)
    out = keras.layers.Concatenate()([x / 255.0, 1.0 - x / 255.0])
    model = Member(keras.Model(inp, out), from_logits=False)
    images = np.zeros((3, 8, 8, 1), np.uint8)
    images[1, :4] = 255  # top half white
    images[2] = 255
    prep = Preprocessing(image_size=(8, 8), channels=1, resize=None, mean=None)
    data = tf.data.Dataset.from_tensor_slices((images, np.zeros(3, np.int64)))
    probs, _ = posteriors(model, data, "center", preprocessing=prep, batch_size=2)
    np.testing.assert_allclose(probs[:, 0], [0.0, 0.5, 1.0], atol=1e-6)
    # 10 crops of a 10x10 resize: the top-left corner of image 1 is whiter than half
    ten, _ = posteriors(model, data, "10crop", preprocessing=prep, resize=10)
    assert ten.shape == (3, 2) and ten[0, 0] == pytest.approx(0.0, abs=1e-6)
    assert ten[2, 0] == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="protocol='twelve'"):
        posteriors(model, data, "twelve", preprocessing=prep)


def test_the_command_line_defaults_and_paper_setting():
    import argparse

    from kerascnn.reproduce import _cli

    def settings(*argv):
        parser = argparse.ArgumentParser()
        _cli.register(parser.add_subparsers())
        return _cli.settings_from_args(parser.parse_args(["reproduce", *argv]))

    s = settings("googlenet")
    assert (s.data, s.lr, s.points, s.budget_minutes) == ("fashion_mnist", 0.01, 6, None)
    assert settings("googlenet", "--lr", "0.02").lr == 0.02  # the command line wins
    assert settings("degradation").lr == 0.1  # other studies keep theirs
    s = settings("googlenet", "--paper")
    assert (s.data, s.image_size, s.iterations, s.lr, s.test_examples) == (
        "tfds:cifar10", 28, 64000, 0.01, 10000)


# -- a tiny run ----------------------------------------------------------------------
SETTINGS = Settings(iterations=2, points=2, batch_size=8, train_examples=32,
                    test_examples=6, eval_batch_size=6, precision="float32",
                    run_eagerly=True)


def test_the_two_variants_are_one_network_with_aux_weights_0_3_and_0():
    from kerascnn.reproduce.recipes import variant_recipe

    study = studies.get_study("googlenet")
    plan = {"points": 2, "iterations_per_point": 1, "image_size": 28, "augment": "none"}
    aux, noaux = (variant_recipe(study, study.network(k), SETTINGS, plan, 0)
                  for k in ("aux", "noaux"))
    assert aux.model.name == noaux.model.name == "googlenet_scaled"
    assert aux.model.options == {"aux_logits": True, "aux_loss_weight": 0.3}
    assert noaux.model.options == {"aux_logits": True, "aux_loss_weight": 0.0}
    assert aux.data == noaux.data and aux.optimizer == noaux.optimizer
    assert aux.data.policy == "googlenet" and aux.data.eval_resize == 32
    assert aux.data.policy_options["area"] == [0.35, 1.0]
    assert aux.schedule.name == "steps" and aux.schedule.boundaries == []  # constant rate
    assert "scaled GoogLeNet (0.10M params; the paper's 7.00M)" in study.network("aux").label


def _tiny_study():
    # one tiny network in both roles: one training run
    net = dataclasses.replace(studies.get_study("googlenet").network("aux"),
                              options=(("aux_logits", True), ("aux_loss_weight", 0.3),
                                       ("width", 0.0625)))
    return dataclasses.replace(studies.get_study("googlenet"), networks=(net,),
                               roles=(("aux", "aux"), ("noaux", "aux"), ("crops", "aux")))


KILLED = r'''
import sys
sys.path.insert(0, {tests!r})
from test_googlenet_study import SETTINGS, _tiny_study
from kerascnn.reproduce.runner import run_study
run_study(_tiny_study(), SETTINGS, {out!r})
'''


def test_tiny_study_killed_resumes_writes_everything_and_measures_the_crops(tmp_path,
                                                                            forks):
    study = _tiny_study()
    out = str(tmp_path / "googlenet")
    run = os.path.join(out, "nets", "aux-s0")
    # SIGKILLed once the run has written its first backup (a curve point)
    code, printed = forks.kill_when(
        KILLED.format(tests=os.path.dirname(__file__), out=out), os.getcwd(),
        os.path.join(run, "backup", "training_metadata.json"),
        str(tmp_path / "killed.log"), timeout=600)
    assert code != 0, printed
    assert not os.path.exists(os.path.join(run, "completed.json"))
    assert not os.path.exists(os.path.join(run, "crops.json"))
    logs = []
    report = run_study(study, SETTINGS, out, log=logs.append)
    history = open(os.path.join(run, "history.csv")).read().strip().splitlines()
    assert len(history) == 1 + SETTINGS.points  # header + one row per point, none twice
    for name in ("plan.json", "results.json", "results.md", "claims.txt",
                 "figure_googlenet.png"):
        assert os.path.getsize(os.path.join(out, name)) > 0, name
    saved = json.load(open(os.path.join(out, "results.json")))
    assert [c["key"] for c in saved["claims"]] == ["a", "b", "c"]
    recipe = json.load(open(os.path.join(out, "nets", "aux-s0", "recipe.json")))
    assert recipe["model"]["name"] == "googlenet_scaled"
    assert recipe["model"]["options"]["aux_loss_weight"] == 0.3
    crops = saved["networks"]["aux"]["seeds"]["0"]["crops"]
    assert crops["examples"] == 6
    assert {p: v["crops"] for p, v in crops["protocols"].items()} == \
        {"center": 1, "10crop": 10, "144crop": 144}
    center = crops["protocols"]["center"]
    # the centre crop is the run's own test view: its error is the run's final error
    assert center["error"] == pytest.approx(
        saved["networks"]["aux"]["seeds"]["0"]["final_test_error"], abs=1e-3)
    text = open(os.path.join(out, "claims.txt")).read()
    md = open(os.path.join(out, "results.md")).read()
    assert "scaled GoogLeNet" in md
    # no per-network paper numbers (Table 3's are in the claims): no paper column, and
    # every row of the table has the header's cells
    table = [line for line in md.splitlines() if line.startswith("|")]
    assert "paper" not in table[0] and len({line.count("|") for line in table}) == 1
    assert text.count("\n") == 3 and "(c)" in text
    # a rerun measures nothing again: crops.json is read back
    logs.clear()
    again = run_study(study, SETTINGS, out, log=logs.append)
    assert not any("views) error" in line for line in logs)
    assert again["claim_lines"] == report["claim_lines"]
