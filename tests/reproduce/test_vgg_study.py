"""The vgg study (kerascnn.reproduce.vgg_studies): a tiny run on Fashion-MNIST killed
after its first curve point and resumed (every output, the protocols measured once), and
its claims decided on constructed curves and protocol counts whose verdicts are known."""

import dataclasses
import json
import os

import pytest

from kerascnn.reproduce import claims, studies, vgg_studies
from kerascnn.reproduce.runner import Settings, run_study

STUDY = studies.get_study("vgg")
# the scale-jittered D playing every role (the shared path: other networks, finished
# runs skipped, is test_reproduce_runner's)
NETS = tuple(n for n in STUDY.networks if n.key == "vgg_d_jitter")
ROLES = tuple((role, "vgg_d_jitter") for role, _ in STUDY.roles)
TINY = dataclasses.replace(STUDY, networks=NETS, roles=ROLES)
# two points: the fewest that leave one to resume after the kill at the first
SETTINGS = Settings(iterations=2, points=2, batch_size=8, train_examples=32,
                    test_examples=8, eval_batch_size=8, precision="float32",
                    run_eagerly=True)

KILLED = r'''
import sys
sys.path.insert(0, {tests!r})
from test_vgg_study import TINY, SETTINGS
from kerascnn.reproduce.runner import run_study
run_study(TINY, SETTINGS, {out!r})
'''


class Log(list):
    def __call__(self, msg):
        self.append(msg)


@pytest.fixture(scope="module")
def resumed(tmp_path_factory, forks):
    """Killed once vgg_d_jitter has written its first backup, then resumed."""
    tmp = tmp_path_factory.mktemp("vgg")
    out = tmp / "vgg"
    folder = out / "nets" / "vgg_d_jitter-s0"
    script = KILLED.format(tests=os.path.dirname(__file__), out=str(out))
    code, printed = forks.kill_when(script, os.getcwd(),
                                    str(folder / "backup" / "training_metadata.json"),
                                    str(tmp / "log.txt"), timeout=600)
    killed = {"code": code, "completed": (folder / "completed.json").exists(),
              "protocols": (out / "protocols.json").exists(), "printed": printed}
    log = Log()
    report = run_study(TINY, SETTINGS, str(out), log=log)
    return out, report, log, killed


def test_a_killed_study_resumes_and_writes_everything(resumed, capfd):
    out, report, log, killed = resumed
    assert killed["code"] != 0, killed["printed"]
    assert not killed["completed"] and not killed["protocols"]
    for name in ("plan.json", "results.json", "results.md", "claims.txt", "table3.png",
                 "protocols.json"):
        assert os.path.getsize(out / name) > 0, name
    history = (out / "nets" / "vgg_d_jitter-s0" / "history.csv").read_text().splitlines()
    assert len(history) == 1 + 2  # the two points once each: resumed, not restarted
    stored = json.loads((out / "results.json").read_text())
    assert [c["key"] for c in stored["claims"]] == ["a", "b", "c", "d", "e"]
    protocols = stored["networks"]["vgg_d_jitter"]["seeds"]["0"]["protocols"]
    assert protocols["examples"] == 8 and protocols["scales"] == [32, 48, 64]
    assert set(protocols["errors"]) == set(vgg_studies.PROTOCOLS)
    for single in ("dense", "multicrop"):  # the counts the sign test reads
        won, lost = protocols["wins"][single]
        delta = protocols["errors"][single] - protocols["errors"]["dense+multicrop"]
        assert 100.0 * (won - lost) / 8 == pytest.approx(delta)
    md = (out / "results.md").read_text()
    assert "VGG-D scaled, S in [32, 64] (239.4k params; paper D 138.4M)" in md
    assert "paper ImageNet top-1 error Table 3 (%)" in md and "| 25.6 |" in md
    lines = (out / "claims.txt").read_text().splitlines()
    assert len(lines) == 5 and lines[4].startswith("(e) ")
    # the jittered net's recipe: S ~ U[32, 64], the others S = 32, all tested at Q = 32
    recipe = json.loads((out / "nets" / "vgg_d_jitter-s0" / "recipe.json").read_text())
    assert recipe["data"]["policy_options"]["scale"] == [32, 64]
    assert recipe["data"]["eval_resize"] == 32 and recipe["model"]["options"] == {"config": "D"}
    from kerascnn.reproduce.recipes import variant_recipe

    plan = json.loads((out / "plan.json").read_text())
    fixed = variant_recipe(STUDY, STUDY.network("vgg_a"), SETTINGS, plan, 0)
    assert fixed.data.policy_options["scale"] == [32, 32] and fixed.data.eval_resize == 32
    assert "VGG-A scaled (153.4k params; paper A 132.9M)" == STUDY.network("vgg_a").label
    # once more: nothing trained, the protocols read back, not measured again
    before = (out / "protocols.json").stat().st_mtime_ns
    log2 = Log()
    again = run_study(TINY, SETTINGS, str(out), log=log2)
    assert (out / "protocols.json").stat().st_mtime_ns == before
    assert any("read back" in m for m in log2)
    assert again["claim_lines"] == report["claim_lines"]


def _run(errors, key):
    return {"history": [{"iteration": 10 * (i + 1), "train_error": e, "test_error": e}
                        for i, e in enumerate(errors)],
            "final_test_error": errors[-1], "diverged": False, "run_dir": key}


def _curve(final):
    return [60.0, final + 0.5, final, final + 0.5, final]  # noise: 0.5 (one seed)


def _runs(finals, wins):
    runs = {k: {0: _run(_curve(v), k)} for k, v in finals.items()}
    if wins is not None:
        runs["vgg_d_jitter"][0]["protocols"] = {
            "examples": 200, "scales": [32, 48, 64], "wins": wins,
            "errors": {"dense": 20.0, "multicrop": 19.5, "dense+multicrop": 19.0}}
    return runs


def _verdicts(runs):
    return {c.key: c.outcome for c in STUDY.decide(STUDY, runs)}


HOLDS = dict(vgg_a=30.0, vgg_a_lrn=30.2, vgg_b=28.0, vgg_c=27.0, vgg_d=25.0, vgg_e=23.0,
             vgg_d_jitter=22.0)


def test_claims_hold_on_curves_that_show_them():
    wins = {"dense": [30, 5], "multicrop": [25, 4]}
    assert set(_verdicts(_runs(HOLDS, wins)).values()) == {claims.HOLDS}


def test_claims_do_not_hold_on_reversed_curves():
    finals = dict(HOLDS, vgg_a_lrn=28.0, vgg_e=27.0, vgg_c=24.0, vgg_d_jitter=26.0)
    wins = {"dense": [30, 5], "multicrop": [3, 25]}
    assert _verdicts(_runs(finals, wins)) == dict.fromkeys("abcde", claims.DOES_NOT_HOLD)


def test_claims_within_the_noise_or_unmeasured_are_inconclusive():
    # within the 0.5-point noise: (b) to (d); LRN within it holds (it does not help)
    finals = dict(HOLDS, vgg_b=29.8, vgg_c=25.3, vgg_d_jitter=24.8)
    verdicts = _verdicts(_runs(finals, {"dense": [6, 4], "multicrop": [9, 1]}))
    assert verdicts == {"a": claims.HOLDS, "b": claims.INCONCLUSIVE,
                        "c": claims.INCONCLUSIVE, "d": claims.INCONCLUSIVE,
                        "e": claims.INCONCLUSIVE}
    # one curve point, no protocols measured: nothing can be decided
    runs = {k: {0: _run([v], k)} for k, v in HOLDS.items()}
    assert set(_verdicts(runs).values()) == {claims.INCONCLUSIVE}


def test_the_sign_test_of_claim_e():
    # 9 wins of 10 discordant images: p = 11/1024 < 0.025; 8 of 10: p = 56/1024 > 0.025
    record = {"examples": 100, "scales": [32], "errors": dict.fromkeys(vgg_studies.PROTOCOLS, 1.0)}
    held = vgg_studies.protocols_claim("e", dict(record, wins={"dense": [9, 1],
                                                              "multicrop": [10, 0]}), "D")
    assert held.outcome == claims.HOLDS and "p = 0.0107" in held.detail
    within = vgg_studies.protocols_claim("e", dict(record, wins={"dense": [9, 1],
                                                                "multicrop": [8, 2]}), "D")
    assert within.outcome == claims.INCONCLUSIVE


def test_cli_lists_the_study_and_its_paper_settings():
    import argparse

    from kerascnn.reproduce import _cli

    parser = argparse.ArgumentParser()
    _cli.register(parser.add_subparsers())
    args = parser.parse_args(["reproduce", "vgg", "--paper"])
    settings = _cli.settings_from_args(args)
    assert settings.data == "tfds:cifar10" and settings.epochs == 74
    assert settings.batch_size == 256 and settings.precision == "float32"
    for flag in (["--lr", "0.1"], ["--augment", "flip"]):  # the study sets them itself
        with pytest.raises(ValueError, match=f"{flag[0]} does not apply to the vgg study"):
            _cli.settings_from_args(parser.parse_args(["reproduce", "vgg", *flag]))
    assert _cli.settings_from_args(parser.parse_args(
        ["reproduce", "shortcuts", "--lr", "0.05"])).lr == 0.05
